"""Model fields shared by every app.

`EncryptedTextField` keeps a secret (a data-source password, an LLM API key)
encrypted at rest with apps.core.crypto: the column holds a Fernet token, Python
code sees the plain text. It is kept out of every place a person could read it:
forms render it as an empty password input, serialisation (dumpdata) exports
nothing, and a system check refuses a django-auditlog registration that would
copy it into the change log in plain text.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core import checks
from django.core.exceptions import FieldError
from django.db import models

from .crypto import decrypt, encrypt

__all__ = ["EncryptedTextField"]


class EncryptedTextField(models.TextField):
    """Text encrypted at rest; the empty string stays empty (so `blank=True` means "no secret stored").

    Encryption is randomised, so the column cannot be searched: the only lookups are `isnull` and
    `exact` (meaningful with "" alone, to find rows without a secret).
    """

    description = "Text encrypted at rest"
    _LOOKUPS = frozenset({"exact", "isnull"})

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))

    def get_lookup(self, lookup_name: str):
        if lookup_name not in self._LOOKUPS:
            raise FieldError(f"An encrypted field cannot be searched with '{lookup_name}'.")
        return super().get_lookup(lookup_name)

    def value_to_string(self, obj: models.Model) -> str:
        # Serialised copies (dumpdata, fixtures) never carry the secret, plain or encrypted.
        return ""

    def formfield(self, form_class=None, choices_form_class=None, **kwargs: Any) -> forms.Field | None:
        # A secret is written, never shown back: an empty password input whatever the stored value.
        kwargs.setdefault("widget", forms.PasswordInput(render_value=False))
        return super().formfield(form_class=form_class, choices_form_class=choices_form_class, **kwargs)


def encrypted_fields(model: type[models.Model]) -> list[EncryptedTextField]:
    """The model's encrypted columns (concrete fields only)."""
    return [field for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]


@checks.register(checks.Tags.security)
def check_secrets_not_audited(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """django-auditlog copies field values into its log in plain text: an encrypted field must be left out."""
    try:
        from auditlog.registry import auditlog
    except ImportError:  # pragma: no cover - auditlog is a requirement
        return []
    errors: list[checks.CheckMessage] = []
    for model in list(auditlog._registry):
        secret = encrypted_fields(model)
        if not secret:
            continue
        options = auditlog.get_model_fields(model)
        serialize = auditlog.get_serialize_options(model)
        for field in secret:
            included = (not options["include_fields"] or field.name in options["include_fields"]) and (
                field.name not in options["exclude_fields"]
            )
            serialized = serialize["serialize_data"] and not serialize["serialize_auditlog_fields_only"]
            if included or serialized:
                errors.append(
                    checks.Error(
                        f"{model._meta.label}.{field.name} is encrypted at rest but django-auditlog "
                        "would record it in plain text.",
                        hint=f"Register the model with exclude_fields=['{field.name}'] (or include_fields "
                        "without it).",
                        obj=model,
                        id="core.E101",
                    )
                )
    return errors
