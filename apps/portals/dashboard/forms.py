from django import forms

from apps.accounts.models import ClientRole
from apps.core.forms import StyledForm

ROLE_HELP = (
    "Client admins manage users and approve deployments and held actions; operators run workflows "
    "and resolve approvals; viewers have read-only access (e.g. auditors)."
)


class ClientUserInviteForm(StyledForm):
    full_name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(choices=ClientRole.choices, initial=ClientRole.VIEWER, help_text=ROLE_HELP)


class ClientUserRoleForm(StyledForm):
    """The role picker of one row in the users table (ids are made unique per row by the view)."""

    role = forms.ChoiceField(choices=ClientRole.choices, label="Role")


class DeploymentDecisionForm(StyledForm):
    """A client admin's answer to a submitted deployment or to a pending version change."""

    decision = forms.ChoiceField(
        choices=[
            ("approve", "Approve the deployment"),
            ("reject", "Reject the deployment"),
            ("approve_change", "Approve the version change"),
            ("reject_change", "Reject the version change"),
        ],
        error_messages={"invalid_choice": "Choose approve or reject."},
    )
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Reason",
        help_text="Required to reject; the partner team sees it in the deployment's history.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision", "").startswith("reject") and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why you reject it: the partner team needs the reason.")
        return cleaned


class ClientSettingsForm(StyledForm):
    require_version_change_approval = forms.BooleanField(
        required=False,
        label="Version changes need a client admin's approval",
        help_text="Upgrades and rollbacks of deployed agents, including vendor rollouts, wait until a client "
        "admin (or a vendor platform admin) approves them. The person who asked cannot approve.",
    )
