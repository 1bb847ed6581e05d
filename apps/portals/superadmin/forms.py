"""Super-admin portal forms: partners, invitations, the Agent Factory, rollouts, deployment decisions."""

from django import forms

from apps.core.forms import StyledForm, StyledModelForm
from apps.factory.models import AgentVariant, AgentVersion, key_validator, semver_validator
from apps.tenancy.models import Client, Partner


class PartnerForm(StyledModelForm):
    class Meta:
        model = Partner
        fields = ["name", "slug", "contact_email"]
        help_texts = {"slug": "Short permanent identifier, e.g. “northwind”."}


class PartnerEditForm(StyledModelForm):
    class Meta:
        model = Partner
        fields = ["name", "contact_email"]


class InviteForm(StyledForm):
    full_name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(label="Email")


class ClientFilterForm(StyledForm):
    q = forms.CharField(required=False, label="Name")
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.all(), required=False, empty_label="All partners"
    )
    status = forms.ChoiceField(choices=[("", "Any status"), *Client.Status.choices], required=False)


# --- Agent Factory ----------------------------------------------------------


class VariantCloneForm(StyledForm):
    key = forms.CharField(
        max_length=40,
        validators=[key_validator],
        help_text="Short permanent identifier, e.g. “itsm-emea”: lowercase letters, digits, hyphens.",
    )
    name = forms.CharField(max_length=120)
    domain = forms.CharField(max_length=60, required=False, help_text="e.g. IT service management.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class VersionForm(StyledForm):
    """The new-version editor: the whole spec as YAML, its version number and changelog."""

    spec = forms.CharField(
        label="Spec (YAML)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "class": "font-monospace"}),
    )
    version = forms.CharField(max_length=32, validators=[semver_validator], help_text="MAJOR.MINOR.PATCH")
    changelog = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="What changed and why.")


class RebaseResolutionForm(StyledForm):
    """One ours/theirs choice per conflicting path of a rebase plan (`resolve:<path>`)."""

    CHOICES = [("ours", "Keep this variant's value"), ("theirs", "Take the new base's value")]

    def __init__(self, *args, conflicts=(), **kwargs):
        super().__init__(*args, **kwargs)
        for conflict in conflicts:
            self.fields[f"resolve:{conflict.path}"] = forms.ChoiceField(
                label=conflict.path, choices=self.CHOICES, widget=forms.RadioSelect
            )
        self.rows = [(conflict, self[f"resolve:{conflict.path}"]) for conflict in conflicts]

    def resolutions(self) -> dict[str, str]:
        return {
            name.removeprefix("resolve:"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("resolve:")
        }


class RolloutForm(StyledForm):
    variant = forms.ModelChoiceField(queryset=AgentVariant.objects.none(), empty_label="Choose a variant")
    target_version = forms.ModelChoiceField(
        queryset=AgentVersion.objects.none(),
        empty_label="Choose a version",
        label="Target version",
        help_text="Every deployment of the variant pinned below this version moves to it.",
    )
    clients = forms.ModelMultipleChoiceField(
        queryset=Client.objects.none(),
        required=False,
        label="Canary clients",
        help_text="Optional: limit the rollout to these clients. Leave empty to roll out to every client.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )

    def __init__(self, *args, variants, versions, clients, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["variant"].queryset = variants
        self.fields["target_version"].queryset = versions
        self.fields["target_version"].label_from_instance = lambda v: f"{v.variant.key} / {v.version}"
        self.fields["clients"].queryset = clients

    def clean(self):
        cleaned = super().clean()
        variant, version = cleaned.get("variant"), cleaned.get("target_version")
        if variant and version and version.variant_id != variant.pk:
            self.add_error("target_version", f"Pick a published version of {variant.key}.")
        return cleaned


class DeploymentDecisionForm(StyledForm):
    """The vendor's decision on a submitted deployment or a pending version change."""

    decision = forms.ChoiceField(
        choices=[
            ("approve", "Approve"),
            ("reject", "Reject"),
            ("approve_change", "Approve version change"),
            ("reject_change", "Reject version change"),
        ]
    )
    reason = forms.CharField(max_length=1000, required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision", "").startswith("reject") and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Give a reason for the rejection.")
        return cleaned


# --- Policy packs -------------------------------------------------------------


class PolicyPackVersionForm(StyledForm):
    """A new version of a policy pack: its rules as YAML, a version number above the latest, a changelog."""

    rules = forms.CharField(
        label="Rules (YAML)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "class": "font-monospace"}),
    )
    version = forms.CharField(
        max_length=32, validators=[semver_validator], help_text="MAJOR.MINOR.PATCH, above the latest version."
    )
    changelog = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="What changed and why.")
