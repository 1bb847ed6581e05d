"""Management portal forms: client projects, engineer assignments, team invitations, deployments."""

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_slug

from apps.accounts.models import PartnerRole, User
from apps.core.exceptions import ApplicationError
from apps.core.forms import StyledForm, mark_invalid
from apps.factory.models import AgentVariant, AgentVersion


class ServiceValidatedForm(StyledForm):
    """A form whose input a service validates further; its errors go on the fields they concern."""

    # Model fields whose errors belong to a form field under another name.
    field_for: dict[str, str] = {}

    def add_service_error(self, error: ValidationError | ApplicationError) -> None:
        """Show an error raised by the service after `is_valid()`."""
        if isinstance(error, ApplicationError):
            self.add_error(error.field if error.field in self.fields else None, error.message)
            mark_invalid(self)
            return
        if hasattr(error, "error_dict"):
            # Fields the form has come first, so a derived field's error only fills a gap.
            items = sorted(error.error_dict.items(), key=lambda item: item[0] in self.field_for)
            for model_field, errors in items:
                name = self.field_for.get(model_field, model_field)
                field = name if name in self.fields else None
                if field is not None and field != model_field and self.has_error(field):
                    continue  # a derived field (schema name from slug): one message is enough
                for item in errors:
                    self._add_model_error(field, item)
        else:
            self.add_error(None, error.messages)
        if not self.errors:  # every message was filtered out: never fail silently
            self.add_error(None, error.messages)
        # The form already ran full_clean: mark the widgets of fields now in error.
        mark_invalid(self)

    def _add_model_error(self, field: str | None, error: ValidationError) -> None:
        self.add_error(field, error)


class ClientCreateForm(ServiceValidatedForm):
    """Name and slug of a new client project; `client_create` validates them against the model."""

    name = forms.CharField(max_length=120, label="Client name")
    slug = forms.CharField(max_length=40, label="Slug")

    field_for = {"schema_name": "slug", NON_FIELD_ERRORS: "name"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].help_text = (
            "Lowercase letters, digits and hyphens; it cannot be changed later. "
            f"The client's dashboard will be at <slug>.{settings.PLATFORM_DOMAIN}."
        )

    def _add_model_error(self, field: str | None, error: ValidationError) -> None:
        # SlugField's generic rule (which even allows underscores) only repeats ours, less precisely.
        if field == "slug" and error.message == validate_slug.message:
            return
        # The only model-wide rule on a client: its name is unique within the partner.
        if error.code == "unique_together":
            error = ValidationError("Your team already has a client project with this name.", code="unique")
        super()._add_model_error(field, error)


class EngineerAssignmentForm(StyledForm):
    """Which of the partner's engineers work on one client project."""

    engineers = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Engineers working on this client project",
        error_messages={"invalid_choice": "%(value)s is not one of your team's engineers."},
    )

    def __init__(self, *args, engineers, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["engineers"]
        field.queryset = engineers
        field.label_from_instance = lambda user: f"{user.display_name} ({user.email})"


class MemberInviteForm(ServiceValidatedForm):
    """A person to add to the partner's team; new people get an email to set a password."""

    full_name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(
        choices=PartnerRole.choices,
        initial=PartnerRole.PARTNER_ENGINEER,
        label="Role",
        help_text="Engineers work on the client projects they are assigned to; "
        "partner admins manage the team and every client project.",
    )


class DeploymentCreateForm(ServiceValidatedForm):
    """A new deployment: a name and a published version of a domain variant."""

    name = forms.CharField(
        max_length=120, label="Name", help_text="Unique within this client, e.g. “IT helpdesk”."
    )
    variant = forms.ModelChoiceField(queryset=AgentVariant.objects.none(), label="Agent variant")
    version = forms.ModelChoiceField(
        queryset=AgentVersion.objects.none(),
        label="Version",
        help_text="Only published versions can be deployed.",
    )

    def __init__(self, *args, variants, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = variants
        self.fields["version"].queryset = versions

    def clean(self):
        cleaned = super().clean()
        variant, version = cleaned.get("variant"), cleaned.get("version")
        if variant is not None and version is not None and version.variant_id != variant.pk:
            self.add_error("version", f"{version} is not a version of {variant.name}.")
        return cleaned


class DeploymentEditForm(ServiceValidatedForm):
    """A draft's name and pinned version (its variant stays): fixing it before submitting again."""

    name = forms.CharField(
        max_length=120, label="Name", help_text="Unique within this client, e.g. “IT helpdesk”."
    )
    version = forms.ModelChoiceField(
        queryset=AgentVersion.objects.none(),
        label="Version",
        help_text="Only published versions of this agent variant can be deployed.",
        error_messages={"invalid_choice": "Choose one of the listed published versions."},
    )

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = versions


class VersionChangeForm(StyledForm):
    """The version a deployed agent should move to (upgrade or rollback), and why."""

    version = forms.ModelChoiceField(
        queryset=AgentVersion.objects.none(),
        label="Move to version",
        error_messages={"invalid_choice": "Choose one of the listed published versions."},
    )
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason",
        help_text="Shown in the deployment's history and to the client's approvers.",
    )

    def __init__(self, *args, versions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = versions
