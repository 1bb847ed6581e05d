"""Vendor policy packs: baseline rules shipped with agent variants.

The governance engine gives these rules their meaning; here they are stored as
validated data (selector, CEL condition text, effect, message) and shown.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .spec import NAME_RE, SpecError, _message, _unique

# A selector names at most 100 values per dimension, each a short name.
SelectorValue = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class RuleSelector(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variants: list[SelectorValue] = Field(default_factory=list, max_length=100)
    tools: list[SelectorValue] = Field(default_factory=list, max_length=100)
    operations: list[SelectorValue] = Field(default_factory=list, max_length=100)
    entities: list[SelectorValue] = Field(default_factory=list, max_length=100)


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(pattern=NAME_RE, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    selector: RuleSelector = Field(default_factory=RuleSelector)
    condition: str | None = Field(default=None, max_length=2000)
    effect: Literal["allow", "deny", "require_approval", "redact"]
    approver_role: Literal["client_admin", "operator"] | None = None
    redact_fields: list[SelectorValue] = Field(default_factory=list, max_length=50)
    message: str = Field(min_length=1, max_length=1000)
    severity: Literal["low", "medium", "high", "critical"] = "medium"

    @model_validator(mode="after")
    def _effect_details(self) -> PolicyRule:
        if self.effect == "require_approval" and not self.approver_role:
            raise ValueError("require_approval needs an approver_role")
        if self.effect == "redact" and not self.redact_fields:
            raise ValueError("redact needs redact_fields")
        return self


_RULES = TypeAdapter(list[PolicyRule])


def validate_rules(data) -> list[dict]:
    """Validate a list of rules; raise SpecError with field-level errors."""
    try:
        rules = _RULES.validate_python(data)
        _unique([rule.key for rule in rules], "rule key")
    except ValidationError as exc:
        raise SpecError(
            [
                {"path": ".".join(str(p) for p in err["loc"]), "message": _message(err), "line": None}
                for err in exc.errors()
            ]
        ) from None
    except ValueError as exc:
        raise SpecError([{"path": "", "message": str(exc), "line": None}]) from None
    return [rule.model_dump(mode="json") for rule in rules]
