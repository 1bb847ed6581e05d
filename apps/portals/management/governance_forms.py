"""Management portal forms for a client's governance: partner rules, rule test cases, replay and filters."""

import json
from collections.abc import Iterable
from typing import cast

from django import forms

from apps.core.forms import StyledForm
from apps.governance.context import OPERATIONS
from apps.governance.forms import RuleFormBase
from apps.governance.models import RuleTestCase

from .forms import ServiceValidatedForm

FAIL_MODES = [("closed", "Fail closed (safe)"), ("open", "Fail open")]
MAX_REPLAY = 5000  # services.ruleset_replay's bound
ACTION_PARTS = ("tool", "operation", "entity", "params")


def _monospace(rows: int, **attrs) -> forms.Textarea:
    return forms.Textarea(
        attrs={"rows": rows, "spellcheck": "false", "autocomplete": "off", "class": "font-monospace", **attrs}
    )


class RuleForm(RuleFormBase, ServiceValidatedForm):
    """One partner rule of the draft ruleset (any effect, and what a condition that errors does).

    The key may be neither another rule's of the draft (`taken_keys`) nor a locked vendor rule's
    (`vendor_keys`); with `check_url` the condition is checked live as it is typed (htmx).
    """

    KEY_INVALID = "Lowercase letters, digits and underscores, starting with a letter (e.g. deny_big)."

    fail_mode = forms.ChoiceField(
        choices=FAIL_MODES,
        initial="closed",
        label="If the condition errors",
        help_text="Closed: an error counts against the action. Open: an error never matches.",
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
        super().__init__(*args, pickers=pickers, rule=rule, **kwargs)
        for dimension in self.PICKERS:
            field = cast(forms.MultipleChoiceField, self.fields[dimension])
            count = len(cast(list, field.choices))
            field.widget.attrs["size"] = str(min(max(count, 3), 8))
            field.help_text = (
                "None chosen: any." if count else "None available yet: the client has no live deployment."
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

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if key in self.vendor_keys:
            raise forms.ValidationError(f"“{key}” is the key of a locked vendor rule; choose another key.")
        if key in self.taken_keys:
            raise forms.ValidationError(f"The draft already has a rule “{key}”; choose another key.")
        return key


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
