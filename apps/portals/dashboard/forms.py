import re
from dataclasses import dataclass

from django import forms

from apps.accounts.models import ClientRole
from apps.core.forms import StyledForm, mark_invalid
from apps.factory.spec import NAME_RE
from apps.governance.rules import check_condition

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
APPROVER_ROLES = [("", "—"), ("client_admin", "Client admin"), ("operator", "Operator")]
SEVERITIES = [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical")]
RULE_MODES = [
    ("enforce", "Enforce: the rule decides"),
    ("shadow", "Shadow: only record what it would have decided"),
]
# "<input>:LINE:COLUMN: message" in the CEL parser's errors, optionally followed by "| …" context lines.
_CEL_ERROR_RE = re.compile(r"<input>:(\d+):(\d+):\s*(.*?)\s*(?=ERROR:|$)", re.S)


@dataclass(frozen=True)
class ConditionProblem:
    """One problem with a rule's condition; `line`/`column` are set for syntax errors."""

    message: str
    line: int | None = None
    column: int | None = None
    excerpt: str = ""

    def __str__(self) -> str:
        where = f"Line {self.line}, column {self.column}: " if self.line else ""
        return f"{where}{self.message}"


def condition_problems(messages: list[str]) -> list[ConditionProblem]:
    """`rules.check_condition` messages, split into position, message and the parser's excerpt."""
    problems = []
    for text in messages:
        found = list(_CEL_ERROR_RE.finditer(text))
        if not found:
            problems.append(ConditionProblem(text))
            continue
        for match in found:
            body = match.group(3)
            message, _, excerpt = body.partition("\n|")
            problems.append(
                ConditionProblem(
                    message.strip(),
                    line=int(match.group(1)),
                    column=int(match.group(2)),
                    excerpt=("|" + excerpt).rstrip() if excerpt else "",
                )
            )
    return problems


def _lines(value: str) -> list[str]:
    """Words given one per line or separated by commas, without blanks or repeats, in order."""
    seen: dict[str, None] = {}
    for item in re.split(r"[,\n]", value or ""):
        if item.strip():
            seen.setdefault(item.strip(), None)
    return list(seen)


class ClientRuleForm(StyledForm):
    """A client admin's rule: it can only deny, hold for approval or redact (never allow).

    The selector pickers list what the client's live deployments offer (`governance.selectors.pickers`),
    plus whatever the edited rule already names. The condition is checked with the CEL compiler here,
    so a syntax error comes back with its line and column; the service checks everything again.
    """

    key = forms.RegexField(
        regex=NAME_RE,
        max_length=64,
        label="Key",
        help_text="A short snake_case name, unique in the ruleset, e.g. deny_large_refunds.",
        error_messages={"invalid": "Use lowercase letters, digits and _, starting with a letter."},
    )
    name = forms.CharField(max_length=200, label="Name", help_text="What the rule does, in a few words.")
    variants = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Agents (variants)"
    )
    tools = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Tools")
    operations = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Operations"
    )
    entities = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Records (entities)"
    )
    condition = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "font-monospace"}),
        label="Condition (CEL)",
        help_text="Optional. When it is true (and the selector matches), the rule applies, e.g. "
        "action.params.amount > 10000. Empty: the rule applies to every action the selector picks.",
    )
    effect = forms.ChoiceField(
        choices=CLIENT_RULE_EFFECTS,
        label="Effect",
        error_messages={
            "invalid_choice": "Your rules can only make decisions stricter: deny, require approval or redact."
        },
    )
    approver_role = forms.ChoiceField(
        choices=APPROVER_ROLES,
        required=False,
        label="Approver",
        help_text="For “require approval”: who may release the held action.",
    )
    approval_ttl_minutes = forms.IntegerField(
        min_value=1,
        max_value=60 * 24 * 30,
        initial=1440,
        required=False,
        label="Approval expires after (minutes)",
        help_text="For “require approval”: a held action nobody approves expires after this long.",
    )
    redact_fields = forms.CharField(
        required=False,
        max_length=1000,
        label="Fields to redact",
        help_text="For “redact”: field names separated by commas, e.g. email, phone.",
    )
    message = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Message",
        help_text="Shown to people and agents when the rule applies.",
    )
    severity = forms.ChoiceField(choices=SEVERITIES, initial="medium", label="Severity")
    mode = forms.ChoiceField(
        choices=RULE_MODES,
        initial="enforce",
        label="Mode",
        help_text="Shadow first to see in the decision log what the rule would do, then enforce it.",
    )
    source_ref = forms.CharField(
        required=False,
        max_length=200,
        label="Source",
        help_text="Optional: where the rule comes from, e.g. “Finance SOP §4.2”.",
    )

    PICKERS = ("variants", "tools", "operations", "entities")

    def __init__(self, *args, pickers: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.condition_problems: list[ConditionProblem] = []
        current = self.initial
        for name in self.PICKERS:
            values = list(pickers.get(name, []))
            values += [v for v in current.get(name) or [] if v not in values]
            self.fields[name].choices = [(v, v) for v in values]  # type: ignore[attr-defined]

    @classmethod
    def initial_from(cls, rule: dict) -> dict:
        """Form values for an existing rule."""
        selector = rule.get("selector") or {}
        return {
            **{name: rule.get(name) for name in ("key", "name", "effect", "message", "severity", "mode")},
            **{name: list(selector.get(name) or []) for name in cls.PICKERS},
            "condition": rule.get("condition") or "",
            "approver_role": rule.get("approver_role") or "",
            "approval_ttl_minutes": rule.get("approval_ttl_minutes") or 1440,
            "redact_fields": ", ".join(rule.get("redact_fields") or []),
            "source_ref": rule.get("source_ref") or "",
        }

    def clean_condition(self) -> str:
        condition = self.cleaned_data["condition"].strip()
        if condition:
            _program, messages = check_condition(condition)
            if messages:
                self.condition_problems = condition_problems(messages)
                raise forms.ValidationError([str(p) for p in self.condition_problems])
        return condition

    def clean(self):
        cleaned = super().clean()
        effect = cleaned.get("effect")
        if effect == "require_approval" and not cleaned.get("approver_role"):
            self.add_error("approver_role", "Choose who approves the held action.")
        if effect == "redact" and not _lines(cleaned.get("redact_fields", "")):
            self.add_error("redact_fields", "Name the fields to redact.")
        return cleaned

    def rule(self, *, source: str = "manual") -> dict:
        """The rule as the governance services take it (the layer is added by the service)."""
        data = self.cleaned_data
        effect = data["effect"]
        return {
            "key": data["key"],
            "name": data["name"],
            "selector": {name: list(data[name]) for name in self.PICKERS},
            "condition": data["condition"] or None,
            "effect": effect,
            "approver_role": data["approver_role"] if effect == "require_approval" else None,
            "approval_ttl_minutes": data["approval_ttl_minutes"] or 1440,
            "redact_fields": _lines(data["redact_fields"]) if effect == "redact" else [],
            "message": data["message"],
            "severity": data["severity"],
            "mode": data["mode"],
            "source": source,
            "source_ref": data["source_ref"],
        }

    def add_ruleset_errors(self, errors: list[dict]) -> None:
        """Show a RulesetError from `rule_save` (paths relative to the rule) on the fields they concern."""
        for error in errors:
            path = error.get("path") or ""
            head = path.split(".")[0]
            field = path.split(".")[1] if head == "selector" and "." in path else head
            if field == "condition":
                self.condition_problems += condition_problems([error["message"]])
                for problem in condition_problems([error["message"]]):
                    self.add_error("condition", str(problem))
            elif field in self.fields:
                self.add_error(field, error["message"])
            else:
                where = "" if path in ("", "rule") else f"{path}: "
                self.add_error(None, f"{where}{error['message']}")
        mark_invalid(self)


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
