"""Management portal forms for a client's governance: partner rules, rule test cases, replay and filters."""

import json
import re
from collections.abc import Iterable
from typing import cast

from django import forms
from django.core.validators import RegexValidator

from apps.core.forms import StyledForm, mark_invalid
from apps.factory.spec import NAME_RE
from apps.governance.context import OPERATIONS
from apps.governance.models import RuleTestCase

from .forms import ServiceValidatedForm

EFFECTS = [
    ("allow", "Allow"),
    ("deny", "Deny"),
    ("require_approval", "Require approval"),
    ("redact", "Redact fields"),
]
APPROVER_ROLES = [("", "—"), ("client_admin", "Client admin"), ("operator", "Operator")]
SEVERITIES = [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical")]
MODES = [("enforce", "Enforce"), ("shadow", "Shadow (report only)")]
FAIL_MODES = [("closed", "Fail closed (safe)"), ("open", "Fail open")]
SELECTOR_DIMENSIONS = ("variants", "tools", "operations", "entities")
# Fields of a rule the form edits; a RulesetError path naming one of them goes on that field.
RULE_FIELDS = (
    "key",
    "name",
    "condition",
    "effect",
    "approver_role",
    "approval_ttl_minutes",
    "redact_fields",
    "message",
    "severity",
    "mode",
    "fail_mode",
    "source_ref",
)
_INDEX_SUFFIX = re.compile(r"(\[\d+\])+$")
MAX_REPLAY = 5000  # services.ruleset_replay's bound
ACTION_PARTS = ("tool", "operation", "entity", "params")


def _monospace(rows: int, **attrs) -> forms.Textarea:
    return forms.Textarea(
        attrs={"rows": rows, "spellcheck": "false", "autocomplete": "off", "class": "font-monospace", **attrs}
    )


class RuleForm(ServiceValidatedForm):
    """One partner rule of the draft ruleset: what it selects, its CEL condition and its effect.

    The selector pickers list what the client's live deployments have (plus whatever the rule
    already names). `rule_save` validates the rule again with the rest of the draft; its errors
    (RulesetError paths relative to the rule) come back on the fields through `add_ruleset_errors`.
    """

    key = forms.CharField(
        max_length=64,
        label="Key",
        validators=[
            RegexValidator(
                NAME_RE, "Lowercase letters, digits and underscores, starting with a letter (e.g. deny_big)."
            )
        ],
        help_text="A short, unique name for the rule, e.g. approve_large_payments. Decisions cite it.",
    )
    name = forms.CharField(max_length=200, label="Name", help_text="What the rule does, in plain words.")
    variants = forms.MultipleChoiceField(required=False, label="Agent variants")
    tools = forms.MultipleChoiceField(required=False, label="Tools")
    operations = forms.MultipleChoiceField(required=False, label="Operations")
    entities = forms.MultipleChoiceField(required=False, label="Entities")
    condition = forms.CharField(
        required=False,
        max_length=2000,
        label="Condition (CEL)",
        widget=_monospace(4, placeholder="action.params.amount > 10000"),
        help_text="Optional. Without a condition the rule applies to every action the selector picks.",
    )
    effect = forms.ChoiceField(choices=EFFECTS, label="Effect")
    approver_role = forms.ChoiceField(
        choices=APPROVER_ROLES, required=False, label="Approver", help_text="Who approves a held action."
    )
    approval_ttl_minutes = forms.IntegerField(
        min_value=1,
        max_value=60 * 24 * 30,
        initial=1440,
        required=False,
        label="Approval expires after (minutes)",
        help_text="A held action nobody approves in time expires (1440 = one day).",
    )
    redact_fields = forms.CharField(
        required=False,
        max_length=500,
        label="Fields to redact",
        help_text="Parameter names, separated by commas (e.g. body, email).",
    )
    message = forms.CharField(
        max_length=1000,
        label="Message",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown to the person or channel when the rule decides.",
    )
    severity = forms.ChoiceField(choices=SEVERITIES, initial="medium", label="Severity")
    mode = forms.ChoiceField(
        choices=MODES,
        initial="enforce",
        label="Mode",
        help_text="A shadow rule never decides: the log records what it would have done.",
    )
    fail_mode = forms.ChoiceField(
        choices=FAIL_MODES,
        initial="closed",
        label="If the condition errors",
        help_text="Closed: an error counts against the action. Open: an error never matches.",
    )
    source_ref = forms.CharField(
        required=False,
        max_length=200,
        label="Source",
        help_text="Optional: the clause this rule comes from, e.g. “Payments SOP §4.2”.",
    )

    def __init__(
        self,
        *args,
        pickers: dict,
        taken_keys: Iterable[str] = (),
        vendor_keys: Iterable[str] = (),
        rule: dict | None = None,
        check_url: str | None = None,
        **kwargs,
    ):
        if rule is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(rule)
        super().__init__(*args, **kwargs)
        selector = (rule or {}).get("selector") or {}
        for dimension in SELECTOR_DIMENSIONS:
            # Values the rule already names stay choosable even when no live deployment has them.
            offered = list(pickers.get(dimension, []))
            values = offered + sorted(set(selector.get(dimension, [])) - set(offered))
            field = cast(forms.MultipleChoiceField, self.fields[dimension])
            field.choices = [(value, value) for value in values]
            field.widget.attrs["size"] = str(min(max(len(values), 3), 8))
            field.help_text = (
                "None chosen: any." if values else "None available yet: the client has no live deployment."
            )
        self.taken_keys = set(taken_keys)
        self.vendor_keys = set(vendor_keys)
        if check_url:
            # The live check: htmx posts the condition as it is typed and swaps in the verdict.
            self.fields["condition"].widget.attrs.update(
                {
                    "hx-post": check_url,
                    "hx-trigger": "input changed delay:400ms, change",
                    "hx-target": "#condition-check",
                    "hx-swap": "outerHTML",
                    "hx-sync": "this:replace",
                    "aria-describedby": f"{self['condition'].auto_id}_helptext condition-check",
                }
            )

    @staticmethod
    def initial_from(rule: dict) -> dict:
        selector = rule.get("selector") or {}
        return {
            **{name: rule.get(name) for name in RULE_FIELDS if rule.get(name) is not None},
            "redact_fields": ", ".join(rule.get("redact_fields") or []),
            **{dimension: list(selector.get(dimension) or []) for dimension in SELECTOR_DIMENSIONS},
        }

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if key in self.vendor_keys:
            raise forms.ValidationError(f"“{key}” is the key of a locked vendor rule; choose another key.")
        if key in self.taken_keys:
            raise forms.ValidationError(f"The draft already has a rule “{key}”; choose another key.")
        return key

    def clean_condition(self) -> str:
        return self.cleaned_data["condition"].strip()

    def clean_redact_fields(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data["redact_fields"].split(",")]
        return list(dict.fromkeys(name for name in names if name))

    def clean(self):
        cleaned = super().clean()
        effect = cleaned.get("effect")
        if effect == "require_approval":
            if not cleaned.get("approver_role"):
                self.add_error("approver_role", "Choose who approves the actions this rule holds.")
            if cleaned.get("approval_ttl_minutes") is None and not self.has_error("approval_ttl_minutes"):
                self.add_error("approval_ttl_minutes", "Say how long a held action waits for its approver.")
        if effect == "redact" and not cleaned.get("redact_fields"):
            self.add_error("redact_fields", "Name at least one field to redact.")
        return cleaned

    def rule(self, base: dict | None = None) -> dict:
        """The rule the form describes; an edited rule keeps where it came from (`source`)."""
        data = self.cleaned_data
        effect = data["effect"]
        rule = {
            "key": data["key"],
            "name": data["name"],
            "selector": {dimension: list(data[dimension]) for dimension in SELECTOR_DIMENSIONS},
            "condition": data["condition"] or None,
            "effect": effect,
            "message": data["message"],
            "severity": data["severity"],
            "mode": data["mode"],
            "fail_mode": data["fail_mode"],
            "source": (base or {}).get("source", "manual"),
            "source_ref": data["source_ref"],
        }
        # The effect's own settings only: a field left over from another effect would mislead.
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
            return dimension if dimension in SELECTOR_DIMENSIONS else None
        if path == "selector":
            return "tools"
        if path in RULE_FIELDS:
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
            if field is not None and field in self.fields:
                if message not in self.errors.get(field, []):
                    self.add_error(field, message)
            else:
                self.add_error(None, f"{path}: {message}" if path and path != "rule" else message)
        mark_invalid(self)


def _json_object(value: str, what: str) -> dict:
    if not value.strip():
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"This is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    if not isinstance(data, dict):
        raise forms.ValidationError(f'{what} is a JSON object, like {{"amount": 500}}.')
    return data


class RuleTestCaseForm(ServiceValidatedForm):
    """A test case: an action (by fields, or as JSON), its context and the effect the rules must give it."""

    name = forms.CharField(
        max_length=200, label="Name", help_text="Say what must happen, e.g. “large payment is held”."
    )
    deployment = forms.ChoiceField(
        required=False,
        label="Deployment",
        help_text="With a deployment, its locked vendor rules and tool allowlist apply too.",
    )
    tool = forms.CharField(
        required=False,
        max_length=100,
        label="Tool",
        widget=forms.TextInput(attrs={"list": "tool-options", "autocomplete": "off"}),
    )
    operation = forms.ChoiceField(
        required=False, choices=[("", "—"), *[(op, op) for op in OPERATIONS]], label="Operation"
    )
    entity = forms.CharField(
        required=False,
        max_length=100,
        label="Entity",
        widget=forms.TextInput(attrs={"list": "entity-options", "autocomplete": "off"}),
    )
    params = forms.CharField(
        required=False,
        label="Parameters (JSON)",
        widget=_monospace(3, placeholder='{"id": "T-1", "priority": "high"}'),
    )
    action_json = forms.CharField(
        required=False,
        label="Or the whole action (JSON)",
        widget=_monospace(
            4, placeholder='{"tool": "db.update", "entity": "ticket", "params": {"id": "T-1"}}'
        ),
        help_text="When given, it replaces the tool, operation, entity and parameters above.",
    )
    context = forms.CharField(
        required=False,
        label="Context (JSON)",
        widget=_monospace(4, placeholder='{"principal": {"role": "operator"}, "rates": {"payments": 3}}'),
        help_text="Only what matters to this case: the rest is built as for a real decision (the "
        "deployment's agent, the client, guards over the parameters, an empty trace, a Monday at 10:00 "
        "in the client's time zone), and each variable given here replaces its fields. "
        "`rates` gives the counts rate() returns.",
    )
    expected_effect = forms.ChoiceField(choices=RuleTestCase.Effect.choices, label="Expected effect")

    def __init__(self, *args, deployments: list, taken_names: Iterable[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.deployments = {str(d.pk): d for d in deployments}
        cast(forms.ChoiceField, self.fields["deployment"]).choices = [
            ("", "None — the ruleset's own rules alone"),
            *[(str(d.pk), f"{d.name} ({d.variant.key} {d.version.version})") for d in deployments],
        ]
        self.taken_names = set(taken_names)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name in self.taken_names:
            raise forms.ValidationError("A test case with this name exists; choose another name.")
        return name

    def clean_params(self) -> dict:
        return _json_object(self.cleaned_data["params"], "The parameters are")

    def clean_action_json(self) -> dict | None:
        value = self.cleaned_data["action_json"]
        return _json_object(value, "An action is") if value.strip() else None

    def clean_context(self) -> dict:
        return _json_object(self.cleaned_data["context"], "The context is")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action_json") is not None:
            cleaned["action"] = cleaned["action_json"]
        elif not self.has_error("params"):
            if not cleaned.get("tool"):
                self.add_error("tool", "Give the tool, or paste the whole action as JSON below.")
            else:
                cleaned["action"] = {
                    "tool": cleaned["tool"],
                    "operation": cleaned.get("operation") or "",
                    "entity": cleaned.get("entity") or None,
                    "params": cleaned.get("params") or {},
                }
        cleaned["deployment"] = self.deployments.get(cleaned.get("deployment") or "")
        return cleaned

    def add_service_error(self, error) -> None:
        # An action given as JSON: its problems belong to that field, whichever part they name
        # (and the fields form has no place for target_ids or unknown keys either).
        field = getattr(error, "field", None)
        as_json = self.cleaned_data.get("action_json") is not None
        if field in ("target_ids", "action") or (as_json and field in ACTION_PARTS):
            error.field = "action_json"
        super().add_service_error(error)


class ReplayForm(StyledForm):
    """How many of the latest decisions to replay (bounded like the service)."""

    last = forms.IntegerField(
        min_value=1,
        max_value=MAX_REPLAY,
        initial=200,
        label="Latest decisions",
        help_text=f"Between 1 and {MAX_REPLAY:,}.",
    )


class ShadowReportForm(StyledForm):
    last = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        initial=1000,
        label="Latest decisions",
    )


class DecisionFilterForm(StyledForm):
    effect = forms.ChoiceField(
        required=False,
        choices=[("", "Any effect"), *RuleTestCase.Effect.choices],
        label="Effect",
    )
