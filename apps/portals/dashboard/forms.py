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
