"""Management portal forms for a client's data sources and field mappings.

The password is write-only: the field renders empty whatever is stored, a blank
submission keeps the stored password, and "Remove the stored password" clears it.
"""

from __future__ import annotations

from typing import Any

from django import forms

from apps.connectors.models import MAX_ROW_LIMIT, DataSource
from apps.connectors.services import SSL_MODES

from .forms import ServiceValidatedForm


class DataSourceForm(ServiceValidatedForm):
    """Connection settings of one data source; `connector_services` validate them further."""

    name = forms.CharField(max_length=120)
    key = forms.SlugField(
        max_length=60, help_text="Short identifier, unique within the client, e.g. helpdesk."
    )
    engine = forms.ChoiceField(choices=DataSource.Engine.choices)
    host = forms.CharField(max_length=255, required=False, help_text="Not used for SQLite.")
    port = forms.IntegerField(
        min_value=1, max_value=65535, required=False, help_text="Blank: the engine's default (5432, 3306)."
    )
    database = forms.CharField(
        max_length=500, help_text="The database name; for SQLite, the file's absolute path."
    )
    username = forms.CharField(max_length=120, required=False)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; never shown again.",
    )
    clear_password = forms.BooleanField(required=False, label="Remove the stored password")
    secret_env_var = forms.CharField(
        max_length=120,
        required=False,
        label="Password from an environment variable",
        help_text=(
            "For a client's own worker (hybrid execution): the name of the variable that holds the password "
            "there, e.g. HELPDESK_DB_PASSWORD. When set, no password is stored here."
        ),
    )
    sslmode = forms.ChoiceField(
        choices=[("", "Default")] + [(mode, mode) for mode in SSL_MODES],
        required=False,
        label="SSL mode",
        help_text="PostgreSQL only.",
    )
    connect_timeout = forms.IntegerField(
        min_value=1, max_value=60, required=False, label="Connect timeout (seconds)", help_text="Blank: 5."
    )
    statement_timeout = forms.IntegerField(
        min_value=1,
        max_value=300,
        required=False,
        label="Statement timeout (seconds)",
        help_text="Blank: 15. PostgreSQL and MySQL/MariaDB.",
    )
    row_limit = forms.IntegerField(
        min_value=1,
        max_value=MAX_ROW_LIMIT,
        initial=500,
        help_text=f"The most rows one query returns (at most {MAX_ROW_LIMIT}).",
    )

    OPTION_FIELDS = ("sslmode", "connect_timeout", "statement_timeout")

    def __init__(self, *args: Any, source: DataSource | None = None, **kwargs: Any):
        if source is not None and "initial" not in kwargs:
            options = source.options or {}
            kwargs["initial"] = {
                **{name: getattr(source, name) for name in self.setting_names()},
                **{name: options.get(name) for name in self.OPTION_FIELDS},
            }
        super().__init__(*args, **kwargs)
        self.source = source
        if source is None or not source.has_password:
            del self.fields["clear_password"]
        else:
            self.fields[
                "password"
            ].help_text = "A password is stored. Leave blank to keep it; type a new one to replace it."

    @staticmethod
    def setting_names() -> tuple[str, ...]:
        return (
            "name",
            "key",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "secret_env_var",
            "row_limit",
        )

    def settings(self) -> dict[str, Any]:
        """The cleaned settings as the services take them (options assembled, password apart)."""
        data = self.cleaned_data
        settings = {name: data[name] for name in self.setting_names()}
        settings["host"] = settings["host"] or ""
        settings["username"] = settings["username"] or ""
        settings["secret_env_var"] = settings["secret_env_var"] or ""
        settings["options"] = {
            name: data[name] for name in self.OPTION_FIELDS if data.get(name) not in (None, "")
        }
        return settings


class FieldMappingForm(ServiceValidatedForm):
    """Which data source a deployment's data lives in, and the mapping as YAML."""

    data_source = forms.TypedChoiceField(coerce=int, label="Data source")
    yaml = forms.CharField(
        label="Mapping (YAML)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "font-monospace"}),
        help_text="Canonical entity → table and key; canonical field → column, side_table.column, or null.",
    )

    def __init__(self, *args: Any, sources: list[DataSource], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sources = {source.pk: source for source in sources}
        field = self.fields["data_source"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [
            (source.pk, f"{source.name} ({source.get_engine_display()}, {source.key})") for source in sources
        ]

    def chosen_source(self) -> DataSource:
        return self.sources[self.cleaned_data["data_source"]]
