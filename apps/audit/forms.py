"""The audit log's filters (GET), shared by the pages that list and export a client's events."""

from collections.abc import Sequence

from django import forms

from apps.core.forms import StyledForm

from .selectors import EFFECTS

EFFECT_CHOICES = [
    ("", "Any effect"),
    *[(effect, effect.replace("_", " ").capitalize()) for effect in EFFECTS],
]
KINDS_LIST_ID = "audit-kinds"


class AuditFilterForm(StyledForm):
    """Date range, trace, agent (deployment), effect and kind; `filters()` gives what the selectors take.

    `deployments` are the (id, name) pairs the agent picker offers.
    """

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    trace_id = forms.CharField(required=False, max_length=64, label="Trace")
    deployment_id = forms.TypedChoiceField(required=False, label="Agent", coerce=int, empty_value=None)
    effect = forms.ChoiceField(required=False, label="Effect", choices=EFFECT_CHOICES)
    kind = forms.CharField(
        required=False,
        max_length=60,
        label="Kind",
        widget=forms.TextInput(attrs={"list": KINDS_LIST_ID, "placeholder": "e.g. approval.*"}),
    )

    def __init__(self, *args, deployments: Sequence[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["deployment_id"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Any agent"), *[(str(pk), name) for pk, name in deployments]]

    def clean(self):
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        for name in ("trace_id", "kind"):
            if name in cleaned:
                cleaned[name] = cleaned[name].strip()
        return cleaned

    def filters(self) -> dict:
        """The valid filters that are set (an invalid form filters nothing it could not read)."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
