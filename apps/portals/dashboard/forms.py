from django import forms

from apps.accounts.models import ClientRole
from apps.core.forms import StyledForm
from apps.governance.forms import RuleFormBase, selector_field

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


# --- Governance: the client's own (stricter) rules, and the decision log filter ---------------

CLIENT_RULE_EFFECTS = [
    ("deny", "Deny: block the action"),
    ("require_approval", "Require approval: hold the action for a person"),
    ("redact", "Redact: let it run with fields hidden"),
]


class ClientRuleForm(RuleFormBase):
    """A client admin's rule: it can only deny, hold for approval or redact (never allow), and it
    always fails closed. The pickers are checkboxes: a client's lists are short."""

    variants = selector_field("Agents (variants)", forms.CheckboxSelectMultiple)
    tools = selector_field("Tools", forms.CheckboxSelectMultiple)
    operations = selector_field("Operations", forms.CheckboxSelectMultiple)
    entities = selector_field("Records (entities)", forms.CheckboxSelectMultiple)
    effect = forms.ChoiceField(
        choices=CLIENT_RULE_EFFECTS,
        label="Effect",
        error_messages={
            "invalid_choice": "Your rules can only make decisions stricter: deny, require approval or redact."
        },
    )


class DecisionFilterForm(StyledForm):
    """Filters of the decision log (GET)."""

    effect = forms.ChoiceField(
        required=False,
        label="Effect",
        choices=[
            ("", "Any effect"),
            ("allow", "Allow"),
            ("deny", "Deny"),
            ("require_approval", "Require approval"),
            ("redact", "Redact"),
        ],
    )
    layer = forms.ChoiceField(
        required=False,
        label="Deciding layer",
        choices=[("", "Any layer"), ("vendor", "Vendor"), ("partner", "Partner"), ("client", "Client")],
    )
