"""Writes for data sources and field mappings (client schemas).

Every service takes the client, switches into its schema and runs in one
transaction: a refused change writes nothing. Passwords are stored encrypted
(apps.core.fields.EncryptedTextField) and never returned in a message; a source
that names `secret_env_var` stores no password at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.deployments.selectors import SCHEMA_ATTR
from apps.tenancy.models import Client

from . import clientdb
from .mapping import parse_mapping_yaml
from .models import DataSource, FieldMapping

__all__ = [
    "data_source_create",
    "data_source_delete",
    "data_source_test",
    "data_source_update",
    "field_mapping_delete",
    "field_mapping_save",
]

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Options each engine accepts: name -> (check, what it takes).
OPTION_RULES: dict[str, dict[str, tuple[Any, str]]] = {
    "postgresql": {
        "sslmode": (lambda v: v in SSL_MODES, f"one of {', '.join(SSL_MODES)}"),
        "connect_timeout": (lambda v: _whole(v, 2, 60), "a whole number of seconds from 2 to 60"),
        "statement_timeout": (lambda v: _whole(v, 1, 300), "a whole number of seconds from 1 to 300"),
    },
    "mysql": {
        "connect_timeout": (lambda v: _whole(v, 1, 60), "a whole number of seconds from 1 to 60"),
        "statement_timeout": (lambda v: _whole(v, 1, 300), "a whole number of seconds from 1 to 300"),
    },
    "sqlite": {
        "connect_timeout": (lambda v: _whole(v, 1, 60), "a whole number of seconds from 1 to 60"),
    },
}
EDITABLE = (
    "name",
    "key",
    "engine",
    "host",
    "port",
    "database",
    "username",
    "secret_env_var",
    "options",
    "row_limit",
)


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@contextmanager
def _in_client(client: Client) -> Iterator[None]:
    """The client's schema and one transaction (a savepoint when nested)."""
    if client.status != Client.Status.READY:
        raise ApplicationError(f"{client.name} is not ready yet ({client.get_status_display().lower()}).")
    with tenant_context(client), transaction.atomic():
        yield


def _mark(source: DataSource, client: Client) -> DataSource:
    setattr(source, SCHEMA_ATTR, client.schema_name)
    return source


def _same_client(obj: Any, client: Client, what: str) -> None:
    schema = getattr(obj, SCHEMA_ATTR, None)
    if schema is not None and schema != client.schema_name:
        raise ApplicationError(f"That {what} belongs to another client.")


def _locked_source(client: Client, source: DataSource) -> DataSource:
    _same_client(source, client, "data source")
    current = DataSource.objects.select_for_update().filter(pk=source.pk).first()
    if current is None:
        raise ApplicationError("That data source no longer exists.")
    return current


def _check(source: DataSource) -> None:
    """Engine-specific rules the model's own validation cannot express."""
    engine = source.engine
    if engine in ("postgresql", "mysql"):
        if not source.host.strip():
            raise ApplicationError("Give the database server's host name or address.", field="host")
        if source.port is None:
            source.port = clientdb.DEFAULT_PORTS[engine]
        _refuse_platform_database(source)
    else:
        if not settings.CONNECTORS_ALLOW_SQLITE:
            # A file path would let a partner read any SQLite file on the server.
            raise ApplicationError(
                "SQLite data sources are for development and tests; connect a database server.",
                field="engine",
            )
        if not source.database.startswith("/"):
            raise ApplicationError(
                "For SQLite, give the absolute path of the database file.", field="database"
            )
        # A file needs no server, user or password.
        source.host, source.port, source.username, source.password, source.secret_env_var = (
            "",
            None,
            "",
            "",
            "",
        )
    options = source.options if source.options is not None else {}
    if not isinstance(options, dict):
        raise ApplicationError("The options are a map of option names to values.", field="options")
    rules = OPTION_RULES[engine]
    for name, value in options.items():
        if name not in rules:
            allowed = ", ".join(rules) or "none"
            raise ApplicationError(
                f"Unknown option “{name}” for {source.get_engine_display()} (allowed: {allowed}).",
                field="options",
            )
        check, wanted = rules[name]
        if not check(value):
            raise ApplicationError(f"The option {name} takes {wanted}.", field="options")
    if source.secret_env_var:
        source.password = ""  # the worker's environment holds it; nothing is stored here


def _refuse_platform_database(source: DataSource) -> None:
    """A data source may not point at Triplane's own database (it holds every client's data)."""
    own = settings.DATABASES["default"]
    local = {"localhost", "127.0.0.1", "::1", str(own.get("HOST") or "localhost").lower()}
    same_host = source.host.strip().lower() in local
    same_port = int(source.port or 0) == int(own.get("PORT") or 5432)
    if (
        source.engine == "postgresql"
        and same_host
        and same_port
        and source.database.strip() == str(own.get("NAME"))
    ):
        raise ApplicationError(
            "This is Triplane's own database; a data source cannot use it.", field="database"
        )


def data_source_create(
    *,
    client: Client,
    name: str,
    key: str,
    engine: str,
    database: str,
    host: str = "",
    port: int | None = None,
    username: str = "",
    password: str = "",
    secret_env_var: str = "",
    options: dict | None = None,
    row_limit: int = 500,
    actor: User | None,
) -> DataSource:
    """Add a data source to the client; its password (if any) is stored encrypted."""
    with _in_client(client):
        source = DataSource(
            name=name.strip(),
            key=key.strip(),
            engine=engine,
            host=host.strip(),
            port=port,
            database=database.strip(),
            username=username.strip(),
            password=password or "",
            secret_env_var=secret_env_var.strip(),
            options=options or {},
            row_limit=row_limit,
            created_by=actor,
            updated_by=actor,
        )
        _check(source)
        source.full_clean()
        source.save()
    return _mark(source, client)


def data_source_update(
    *,
    client: Client,
    source: DataSource,
    actor: User | None,
    password: str | None = None,
    clear_password: bool = False,
    **changes: Any,
) -> DataSource:
    """Change a data source's settings (`changes`: any of EDITABLE).

    The password is write-only: None or "" keeps the stored one, `clear_password` removes it.
    """
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ApplicationError(f"These settings cannot be changed here: {', '.join(sorted(unknown))}.")
    with _in_client(client):
        current = _locked_source(client, source)
        for name, value in changes.items():
            setattr(current, name, value.strip() if isinstance(value, str) else value)
        if clear_password:
            current.password = ""
        elif password:
            current.password = password
        if current.options is None:
            current.options = {}
        current.updated_by = actor
        _check(current)
        current.full_clean()
        current.save()
    return _mark(current, client)


def data_source_delete(*, client: Client, source: DataSource, actor: User | None) -> None:
    """Remove a data source; refused while a deployment's field mapping uses it."""
    with _in_client(client):
        current = _locked_source(client, source)
        users = list(
            FieldMapping.objects.filter(data_source=current)
            .select_related("deployment")
            .values_list("deployment__name", flat=True)
        )
        if users:
            raise ApplicationError(
                f"{current.name} is used by the field mapping of {', '.join(users)}; "
                "point those mappings at another data source (or remove them) first."
            )
        pk = current.pk
        current.delete()
        current.pk = pk
        clientdb.dispose_engine(_mark(current, client))


def data_source_test(*, client: Client, source: DataSource) -> tuple[bool, str]:
    """Connect to the source and read one row of every table its mappings use; (ok, message).

    The message names the problem (unreachable, authentication failed, permission denied, database
    does not exist, timeout) without a stack trace or the password. The result is kept on the source.
    """
    _same_client(source, client, "data source")
    with _in_client(client):
        current = DataSource.objects.filter(pk=source.pk).first()
        if current is None:
            raise ApplicationError("That data source no longer exists.")
        mappings = list(FieldMapping.objects.filter(data_source=current).select_related("deployment"))
    with tenant_context(client):
        ok, message = _try(current, mappings)
        DataSource.objects.filter(pk=current.pk).update(
            last_test_status=DataSource.TestStatus.OK if ok else DataSource.TestStatus.FAILED,
            last_test_message=message,
            last_tested_at=timezone.now(),
        )
    return ok, message


def _try(source: DataSource, mappings: list[FieldMapping]) -> tuple[bool, str]:
    try:
        server = clientdb.client_database(source=source, mapping={"entities": {}}).ping()
        readable = 0
        for mapping in mappings:
            readable += len(clientdb.client_database(source=source, mapping=mapping.spec).probe())
    except clientdb.ClientDatabaseError as error:
        return False, error.message
    message = f"Connected to {server} at {source.address}."
    if mappings:
        names = ", ".join(mapping.deployment.name for mapping in mappings)
        message += (
            f" The mapped tables can be read ({readable} entit{'y' if readable == 1 else 'ies'} of {names})."
        )
    return True, message


def field_mapping_save(
    *, client: Client, deployment: Deployment, data_source: DataSource, yaml_text: str, actor: User | None
) -> FieldMapping:
    """Validate a mapping typed as YAML against the deployment's pinned version and save it.

    Raises MappingError (an ApplicationError with `errors`, each with its YAML line); nothing is
    written then.
    """
    _same_client(deployment, client, "deployment")
    _same_client(data_source, client, "data source")
    with _in_client(client):
        current = Deployment.objects.select_related("version").filter(pk=deployment.pk).first()
        if current is None:
            raise ApplicationError("That deployment no longer exists.")
        source = DataSource.objects.filter(pk=data_source.pk).first()
        if source is None:
            raise ApplicationError("That data source no longer exists.", field="data_source")
        data = (current.version.spec or {}).get("data") or []
        spec = parse_mapping_yaml(yaml_text, data=data)
        mapping = FieldMapping.objects.select_for_update().filter(deployment=current).first()
        if mapping is None:
            mapping = FieldMapping(deployment=current)
        mapping.data_source = source
        mapping.yaml = yaml_text
        mapping.spec = spec
        mapping.updated_by = actor
        mapping.full_clean()
        mapping.save()
    setattr(mapping, SCHEMA_ATTR, client.schema_name)
    return mapping


def field_mapping_delete(*, client: Client, deployment: Deployment, actor: User | None) -> None:
    """Remove the deployment's field mapping (its db tools then have no data to reach)."""
    _same_client(deployment, client, "deployment")
    with _in_client(client):
        deleted, _ = FieldMapping.objects.filter(deployment_id=deployment.pk).delete()
        if not deleted:
            raise ApplicationError("This deployment has no field mapping.")
