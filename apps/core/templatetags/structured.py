"""Showing structured values (dicts, lists, scalars from JSON) in pages: `{{ value|as_yaml }}`."""

import yaml
from django import template

register = template.Library()


@register.filter
def as_yaml(value) -> str:
    """A JSON-like value as a person reads it: scalars as themselves, dicts and lists as YAML blocks."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()
