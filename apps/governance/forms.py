"""The form of one governance rule, shared by the portals that edit rules (partner and client).

`RuleFormBase` holds the fields, the CEL condition check (syntax errors with line and column), the
effect's own settings and `rule()`, which gives the rule as `services.rule_save` takes it. A portal's
form subclasses it for what differs: the effects it may choose, its widgets, its own key checks.
"""

import re
from dataclasses import dataclass

from django import forms

from apps.core.forms import StyledForm, mark_invalid
from apps.factory.spec import NAME_RE

from .rules import check_condition

EFFECTS = [
    ("allow", "Allow"),
    ("deny", "Deny"),
    ("require_approval", "Require approval"),
    ("redact", "Redact fields"),
]
APPROVER_ROLES = [("", "—"), ("client_admin", "Client admin"), ("operator", "Operator")]
SEVERITIES = [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical")]
MODES = [
    ("enforce", "Enforce: the rule decides"),
    ("shadow", "Shadow: only record what it would have decided"),
]
SELECTOR_DIMENSIONS = ("variants", "tools", "operations", "entities")
DEFAULT_APPROVAL_TTL = 1440  # minutes: one day

# "<input>:LINE:COLUMN: message" in the CEL parser's errors, followed by "| …" lines marking the spot.
_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)((?:\n\|[^\n]*)*)")
_INDEX_SUFFIX = re.compile(r"(\[\d+\])+$")


@dataclass(frozen=True)
class ConditionProblem:
    """One problem with a rule's condition; `line`/`column` (and the parser's `excerpt`) for syntax errors."""

    message: str
    line: int | None = None
    column: int | None = None
    excerpt: str = ""

    def __str__(self) -> str:
        where = f"Line {self.line}, column {self.column}: " if self.line else ""
        return f"{where}{self.message}"


def condition_problems(messages: list[str]) -> list[ConditionProblem]:
    """`rules.check_condition` messages, split into position, message and the line marked where the
    parser stopped."""
    problems = []
    for text in messages:
        found = list(_CEL_ERROR.finditer(text))
        if not found:
            problems.append(ConditionProblem(text))
        for match in found:
            excerpt = "\n".join(line.removeprefix("| ") for line in match.group(4).strip("\n").split("\n"))
            problems.append(
                ConditionProblem(
                    match.group(3), line=int(match.group(1)), column=int(match.group(2)), excerpt=excerpt
                )
            )
    return problems


def _names(value: str) -> list[str]:
    """Names separated by commas or newlines, without blanks or repeats, in order."""
    names = (name.strip() for name in re.split(r"[,\n]", value or ""))
    return list(dict.fromkeys(name for name in names if name))


def selector_field(
    label: str, widget: type[forms.Widget] = forms.SelectMultiple
) -> forms.MultipleChoiceField:
    """A selector dimension's picker; its choices come from the client's live deployments."""
    return forms.MultipleChoiceField(required=False, widget=widget, label=label)


class RuleFormBase(StyledForm):
    """One rule: what it selects, its CEL condition and its effect with the effect's own settings.

    The selector pickers list what the client's live deployments offer (`governance.selectors.pickers`),
    plus whatever the edited rule already names. The condition is checked with the CEL compiler here,
    so a syntax error comes back with its line and column (`condition_problems`); `rule_save` checks
    everything again, and `add_ruleset_errors` puts its RulesetError on the fields they concern.
    """

    PICKERS = SELECTOR_DIMENSIONS
    KEY_INVALID = "Use lowercase letters, digits and _, starting with a letter."

    key = forms.RegexField(
        regex=NAME_RE,
        max_length=64,
        label="Key",
        help_text="A short snake_case name, unique in the ruleset, e.g. deny_big_refunds. Decisions cite it.",
    )
    name = forms.CharField(max_length=200, label="Name", help_text="What the rule does, in a few words.")
    variants = selector_field("Agent variants")
    tools = selector_field("Tools")
    operations = selector_field("Operations")
    entities = selector_field("Entities")
    condition = forms.CharField(
        required=False,
        max_length=2000,
        label="Condition (CEL)",
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "spellcheck": "false",
                "autocomplete": "off",
                "class": "font-monospace",
                "placeholder": "action.params.amount > 10000",
            }
        ),
        help_text="Optional. When it is true (and the selector matches), the rule applies. "
        "Empty: the rule applies to every action the selector picks.",
    )
    effect = forms.ChoiceField(choices=EFFECTS, label="Effect")
    approver_role = forms.ChoiceField(
        choices=APPROVER_ROLES,
        required=False,
        label="Approver",
        help_text="For “require approval”: who may release the held action.",
    )
    approval_ttl_minutes = forms.IntegerField(
        min_value=1,
        max_value=60 * 24 * 30,
        initial=DEFAULT_APPROVAL_TTL,
        required=False,
        label="Approval expires after (minutes)",
        help_text="For “require approval”: a held action nobody approves in time expires (1440 = one day).",
    )
    redact_fields = forms.CharField(
        required=False,
        max_length=1000,
        label="Fields to redact",
        help_text="For “redact”: parameter names separated by commas, e.g. email, phone.",
    )
    message = forms.CharField(
        max_length=1000,
        label="Message",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown to people and agents when the rule decides.",
    )
    severity = forms.ChoiceField(choices=SEVERITIES, initial="medium", label="Severity")
    mode = forms.ChoiceField(
        choices=MODES,
        initial="enforce",
        label="Mode",
        help_text="A shadow rule never decides: the decision log records what it would have done.",
    )
    source_ref = forms.CharField(
        required=False,
        max_length=200,
        label="Source",
        help_text="Optional: the clause the rule comes from, e.g. “Finance SOP §4.2”.",
    )

    def __init__(self, *args, pickers: dict, rule: dict | None = None, **kwargs):
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(rule)
        super().__init__(*args, **kwargs)
        self.condition_problems: list[ConditionProblem] = []
        self.fields["key"].error_messages["invalid"] = self.KEY_INVALID
        for dimension in self.PICKERS:
            # Values the rule already names stay choosable even when no live deployment has them.
            offered = list(pickers.get(dimension, []))
            values = offered + sorted(set(self.initial.get(dimension) or []) - set(offered))
            self.fields[dimension].choices = [(value, value) for value in values]  # type: ignore[attr-defined]

    @classmethod
    def initial_from(cls, rule: dict) -> dict:
        """Form values for an existing rule."""
        selector = rule.get("selector") or {}
        return {
            **{name: rule.get(name) for name in cls.base_fields if rule.get(name) is not None},
            "redact_fields": ", ".join(rule.get("redact_fields") or []),
            **{dimension: list(selector.get(dimension) or []) for dimension in cls.PICKERS},
        }

    def clean_condition(self) -> str:
        condition = self.cleaned_data["condition"].strip()
        if condition:
            _program, messages = check_condition(condition)
            if messages:
                self.condition_problems = condition_problems(messages)
                raise forms.ValidationError([str(problem) for problem in self.condition_problems])
        return condition

    def clean_redact_fields(self) -> list[str]:
        return _names(self.cleaned_data["redact_fields"])

    def clean(self):
        cleaned = super().clean()
        effect = cleaned.get("effect")
        if effect == "require_approval":
            if not cleaned.get("approver_role"):
                self.add_error("approver_role", "Choose who approves the held action.")
            if cleaned.get("approval_ttl_minutes") is None and not self.has_error("approval_ttl_minutes"):
                self.add_error("approval_ttl_minutes", "Say how long a held action waits for its approver.")
        if effect == "redact" and not cleaned.get("redact_fields"):
            self.add_error("redact_fields", "Name the fields to redact.")
        return cleaned

    def rule(self, base: dict | None = None) -> dict:
        """The rule as the governance services take it (the layer is added by the service); an edited
        rule (`base`) keeps where it came from (`source`)."""
        data = self.cleaned_data
        effect = data["effect"]
        rule = {
            "key": data["key"],
            "name": data["name"],
            "selector": {dimension: list(data[dimension]) for dimension in self.PICKERS},
            "condition": data["condition"] or None,
            "effect": effect,
            "message": data["message"],
            "severity": data["severity"],
            "mode": data["mode"],
            **({"fail_mode": data["fail_mode"]} if "fail_mode" in data else {}),
            "source": (base or {}).get("source") or "manual",
            "source_ref": data["source_ref"],
        }
        # The effect's own settings only: a setting left over from another effect would mislead.
        if effect == "require_approval":
            rule["approver_role"] = data["approver_role"]
            rule["approval_ttl_minutes"] = data["approval_ttl_minutes"]
        if effect == "redact":
            rule["redact_fields"] = data["redact_fields"]
        return rule

    def field_for_path(self, path: str, message: str) -> str | None:
        """The form field a RulesetError path (relative to the rule) concerns, or None for the form."""
        path = _INDEX_SUFFIX.sub("", path)
        if path.startswith("selector."):
            dimension = path.split(".", 2)[1]
            return dimension if dimension in self.PICKERS else None
        if path == "selector":
            return "tools"
        if path in self.fields:
            return path
        if path in ("", "rule"):
            # A rule-wide check (effect settings, layer rules): put it on the field it names.
            return next((name for name in ("approver_role", "redact_fields") if name in message), None)
        return None

    def add_ruleset_errors(self, errors: list[dict]) -> None:
        """Show `rule_save`'s RulesetError on the fields they concern (anything else above the form)."""
        for error in errors:
            path, message = error.get("path") or "", error["message"]
            field = self.field_for_path(path, message)
            if field is None:
                self.add_error(None, f"{path}: {message}" if path and path != "rule" else message)
                continue
            if field == "condition":
                problems = condition_problems([message])
                self.condition_problems += problems
                texts = [str(problem) for problem in problems]
            else:
                texts = [message]
            for text in texts:
                if text not in self.errors.get(field, []):
                    self.add_error(field, text)
        mark_invalid(self)
