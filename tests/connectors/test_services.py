"""Data source and field mapping services on client A's real schema: validation, the write-only password,
deletion rules, mappings checked against the deployment's pinned spec, and tenant isolation."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django_tenants.utils import tenant_context

from apps.connectors import clientdb, selectors, services
from apps.connectors.mapping import MappingError
from apps.connectors.models import DataSource, FieldMapping
from apps.core.exceptions import ApplicationError
from tests.connectors.conftest import reset_postgresql, server_db
from tests.matrix.base import a_deployment

# The ITSM agent's data (seeded factory) onto the test helpdesk schema.
ITSM_MAPPING = """\
entities:
  ticket:
    table: hd_tkt
    key: tkt_id
    fields:
      reference: tkt_ref
      subject: subj
      description: hd_tkt_txt.body
      status: stat_cd
      priority: prio_cd
      requester_id: req_usr_id
      team_id: null
      created_at: crt_ts
      due_at: null
    joins:
      hd_tkt_txt: {column: tkt_ref_id, references: tkt_id}
  person:
    table: hd_usr
    key: usr_id
    fields:
      name: full_nm
      email: email_addr
"""


def pg_source(client, *, key="helpdesk", database=None, actor=None, **overrides) -> DataSource:
    db = server_db()
    values = {
        "name": "Helpdesk",
        "key": key,
        "engine": "postgresql",
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "database": database or "helpdesk",
        "username": db.get("USER") or "postgres",
        "password": "",
    }
    values.update(overrides)
    return services.data_source_create(client=client, actor=actor, **values)


def rows(client) -> list[dict]:
    with tenant_context(client):
        return list(DataSource.objects.order_by("pk").values()) + list(FieldMapping.objects.values())


# --- Data sources ---------------------------------------------------------------------------------


def test_create_applies_engine_defaults_and_records_who(world):
    engineer = world.users["partner_a_engineer"]
    source = pg_source(world.client_a, port=None, actor=engineer, options={"sslmode": "require"})
    assert source.port == 5432
    assert source.created_by == engineer and source.updated_by == engineer
    assert source.row_limit == 500
    assert source.options == {"sslmode": "require"}
    assert selectors.data_source_get(client=world.client_a, pk=source.pk).mapping_count == 0
    with pytest.raises(Http404):
        selectors.data_source_get(client=world.client_b, pk=source.pk)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"host": " "}, "host", "host name"),
        ({"engine": "sqlite", "database": "relative/file.db"}, "database", "absolute path"),
        ({"options": {"sslmode": "sometimes"}}, "options", "sslmode takes one of"),
        ({"options": {"search_path": "x"}}, "options", "Unknown option “search_path”"),
        ({"options": {"statement_timeout": 0}}, "options", "statement_timeout takes"),
        ({"engine": "mysql", "options": {"sslmode": "require"}}, "options", "Unknown option “sslmode”"),
    ],
)
def test_create_refuses_what_cannot_work(world, overrides, field, message):
    before = rows(world.client_a)
    with pytest.raises(ApplicationError) as caught:
        pg_source(world.client_a, **overrides)
    assert caught.value.field == field
    assert message in caught.value.message
    assert rows(world.client_a) == before


def test_model_rules_apply_too(world):
    pg_source(world.client_a, key="crm")
    for overrides, field in [
        ({"key": "crm"}, "key"),
        ({"key": "Not a slug!"}, "key"),
        ({"row_limit": 5001}, "row_limit"),
        ({"row_limit": 0}, "row_limit"),
        ({"secret_env_var": "lower-case"}, "secret_env_var"),
        ({"port": 70000}, "port"),
    ]:
        with pytest.raises(ValidationError) as caught:
            pg_source(world.client_a, **{"key": "other", **overrides})
        assert field in caught.value.error_dict, overrides


def test_triplanes_own_database_cannot_be_a_data_source(world):
    with pytest.raises(ApplicationError, match="Triplane's own database"):
        pg_source(world.client_a, database=connection.settings_dict["NAME"], host="localhost")


def test_the_password_is_write_only(world):
    source = pg_source(world.client_a, password="first-Secret1")
    source = services.data_source_update(
        client=world.client_a, source=source, password="", name="HD", actor=None
    )
    assert source.password == "first-Secret1" and source.name == "HD"
    source = services.data_source_update(client=world.client_a, source=source, password=None, actor=None)
    assert source.password == "first-Secret1"
    source = services.data_source_update(
        client=world.client_a, source=source, password="second-Secret2", actor=None
    )
    assert source.password == "second-Secret2"
    source = services.data_source_update(
        client=world.client_a, source=source, clear_password=True, actor=None
    )
    assert source.password == ""
    source = services.data_source_update(
        client=world.client_a, source=source, password="third-Secret3", actor=None
    )
    # Naming an environment variable drops the stored password: the worker's environment holds it.
    source = services.data_source_update(
        client=world.client_a, source=source, secret_env_var="HELPDESK_DB_PASSWORD", actor=None
    )
    assert source.password == ""
    with tenant_context(world.client_a):
        assert DataSource.objects.get(pk=source.pk).password == ""
    with pytest.raises(ApplicationError, match="cannot be changed here"):
        services.data_source_update(client=world.client_a, source=source, created_by=None, actor=None)


def test_a_source_of_another_client_is_refused(world):
    source = pg_source(world.client_a)
    before = rows(world.client_b)
    with pytest.raises(ApplicationError, match="another client"):
        services.data_source_update(client=world.client_b, source=source, name="Stolen", actor=None)
    with pytest.raises(ApplicationError, match="another client"):
        services.data_source_delete(client=world.client_b, source=source, actor=None)
    with pytest.raises(ApplicationError, match="another client"):
        services.data_source_test(client=world.client_b, source=source)
    assert rows(world.client_b) == before
    assert selectors.data_source_get(client=world.client_a, pk=source.pk).name == "Helpdesk"


def test_delete_is_refused_while_a_mapping_uses_the_source(world, pg_client_db):
    deployment = a_deployment(world)
    source = pg_source(world.client_a, database=pg_client_db)
    services.field_mapping_save(
        client=world.client_a, deployment=deployment, data_source=source, yaml_text=ITSM_MAPPING, actor=None
    )
    with pytest.raises(ApplicationError, match="used by the field mapping of Matrix agent"):
        services.data_source_delete(client=world.client_a, source=source, actor=None)
    services.field_mapping_delete(client=world.client_a, deployment=deployment, actor=None)
    services.data_source_delete(client=world.client_a, source=source, actor=None)
    assert selectors.data_source_list(client=world.client_a) == []


# --- Field mappings ---------------------------------------------------------------------------------


def test_a_mapping_is_validated_against_the_pinned_spec_and_saved(world, pg_client_db):
    deployment = a_deployment(world)
    source = pg_source(world.client_a, database=pg_client_db)
    mapping = services.field_mapping_save(
        client=world.client_a,
        deployment=deployment,
        data_source=source,
        yaml_text=ITSM_MAPPING,
        actor=world.users["partner_a_engineer"],
    )
    assert mapping.yaml == ITSM_MAPPING
    assert mapping.spec["entities"]["ticket"]["fields"]["team_id"] is None
    assert (
        "Entity 'ticket_comment' is not mapped: the agent's tools cannot reach it."
        in mapping.spec["warnings"]
    )
    found = selectors.field_mapping_for(deployment, client=world.client_a)
    assert found.pk == mapping.pk and found.data_source.pk == source.pk
    assert selectors.field_mapping_for(deployment, client=world.client_b) is None


def test_an_invalid_mapping_writes_nothing(world, pg_client_db):
    deployment = a_deployment(world)
    source = pg_source(world.client_a, database=pg_client_db)
    services.field_mapping_save(
        client=world.client_a, deployment=deployment, data_source=source, yaml_text=ITSM_MAPPING, actor=None
    )
    before = rows(world.client_a)
    bad = ITSM_MAPPING.replace("subject: subj", "subject: null").replace("  person:", "  invoice:")
    with pytest.raises(MappingError) as caught:
        services.field_mapping_save(
            client=world.client_a, deployment=deployment, data_source=source, yaml_text=bad, actor=None
        )
    messages = {error["message"] for error in caught.value.errors}
    assert any("'subject' is required" in message for message in messages)
    assert any("'invoice' is not an entity of this agent" in message for message in messages)
    assert all(error["line"] for error in caught.value.errors)
    assert rows(world.client_a) == before


def test_a_mapping_cannot_cross_clients(world):
    deployment = a_deployment(world)
    foreign = pg_source(world.client_b, key="foreign")
    with pytest.raises(ApplicationError, match="another client"):
        services.field_mapping_save(
            client=world.client_a,
            deployment=deployment,
            data_source=foreign,
            yaml_text=ITSM_MAPPING,
            actor=None,
        )
    with pytest.raises(ApplicationError, match="another client"):
        services.field_mapping_save(
            client=world.client_b,
            deployment=deployment,
            data_source=foreign,
            yaml_text=ITSM_MAPPING,
            actor=None,
        )


def test_open_for_deployment_reads_through_the_mapping_in_its_own_client_only(world, pg_client_db):
    reset_postgresql(pg_client_db)
    deployment = a_deployment(world)
    source = pg_source(world.client_a, database=pg_client_db)
    services.field_mapping_save(
        client=world.client_a, deployment=deployment, data_source=source, yaml_text=ITSM_MAPPING, actor=None
    )
    with tenant_context(world.client_a):
        db = clientdb.open_for_deployment(deployment)
        assert db.source.key == "helpdesk"
        assert db.get("ticket", 1)["subject"] == "Email down"
    # Client B's schema has no such mapping, and a deployment read from A is refused there outright.
    with tenant_context(world.client_b), pytest.raises(clientdb.ClientDatabaseError) as caught:
        clientdb.open_for_deployment(deployment)
    assert caught.value.transient is False
    with tenant_context(world.client_a):
        services.field_mapping_delete(client=world.client_a, deployment=deployment, actor=None)
        with pytest.raises(clientdb.ClientDatabaseError, match="has no field mapping yet"):
            clientdb.open_for_deployment(deployment)
    clientdb.dispose_engines()


def test_the_engine_cache_is_per_client_schema(world, pg_client_db):
    """Two clients' sources with the same pk never share an engine."""
    reset_postgresql(pg_client_db)
    a = pg_source(world.client_a, database=pg_client_db)
    b = pg_source(world.client_b, database="does_not_exist_anywhere")
    mapping = {"entities": {}}
    with tenant_context(world.client_a):
        a_db = clientdb.client_database(source=DataSource.objects.get(pk=a.pk), mapping=mapping)
    with tenant_context(world.client_b):
        b_db = clientdb.client_database(source=DataSource.objects.get(pk=b.pk), mapping=mapping)
    assert a_db._handle is not b_db._handle
    assert a_db.ping().startswith("PostgreSQL")
    with pytest.raises(clientdb.ClientDatabaseError) as caught:
        b_db.ping()
    assert caught.value.kind == "no_database"
    clientdb.dispose_engines()


def test_sqlite_sources_are_refused_outside_development(world, settings):
    settings.CONNECTORS_ALLOW_SQLITE = False
    with pytest.raises(ApplicationError, match="development"):
        services.data_source_create(
            client=world.client_a,
            name="Server file",
            key="server-file",
            engine="sqlite",
            database="/etc/some.sqlite3",
            actor=world.users["partner_a_engineer"],
        )
    with tenant_context(world.client_a):
        assert not DataSource.objects.filter(key="server-file").exists()
