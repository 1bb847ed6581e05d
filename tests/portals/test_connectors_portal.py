"""Management portal, a client's data: data sources (write-only password, connection test over htmx,
delete rules) and the field mapping editor (errors by line, the saved mapping) — through the views, on
client A's real schema and a real PostgreSQL client database."""

import pytest
from django.urls import reverse
from django_tenants.utils import tenant_context

from apps.connectors import clientdb, selectors, services
from apps.connectors.models import DataSource, FieldMapping
from apps.core import crypto
from tests.connectors.conftest import free_port, pg_client_db, reset_postgresql, server_db
from tests.connectors.test_services import ITSM_MAPPING
from tests.matrix.base import a_deployment

PUBLIC = "config.urls_public"
__all__ = ["pg_client_db"]  # the throwaway client database fixture, shared with tests/connectors
SECRET = "P0rtal-Secret!pw"


def url(name: str, world, *args) -> str:
    return reverse(f"management:client_{name}", args=[world.client_a.pk, *args], urlconf=PUBLIC)


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def engineer(platform):
    return platform("partner_a_engineer")


@pytest.fixture(autouse=True)
def _fresh_engines():
    yield
    clientdb.dispose_engines()


def source_post(database: str, **overrides) -> dict:
    db = server_db()
    data = {
        "name": "Helpdesk",
        "key": "helpdesk",
        "engine": "postgresql",
        "host": db.get("HOST") or "127.0.0.1",
        "port": str(db.get("PORT") or 5432),
        "database": database,
        "username": db.get("USER") or "postgres",
        "password": SECRET,
        "secret_env_var": "",
        "sslmode": "",
        "connect_timeout": "",
        "statement_timeout": "",
        "row_limit": "200",
    }
    data.update(overrides)
    return data


def the_source(world) -> DataSource:
    with tenant_context(world.client_a):
        return DataSource.objects.get(key="helpdesk")


def token_of(world, source) -> str:
    from django.db import connection

    with tenant_context(world.client_a), connection.cursor() as cursor:
        cursor.execute("SELECT password FROM connectors_datasource WHERE id = %s", [source.pk])
        return cursor.fetchone()[0]


def test_the_client_page_links_to_data_sources_and_the_list_starts_empty(world, engineer):
    assert url("data_sources", world) in page_of(engineer.get(f"/partner/clients/{world.client_a.pk}/"))
    page = page_of(engineer.get(url("data_sources", world)))
    assert "No data sources yet" in page
    assert url("data_source_create", world) in page


def test_create_edit_and_the_password_is_never_rendered(world, engineer, pg_client_db):
    response = engineer.post(url("data_source_create", world), source_post(pg_client_db))
    assert response.status_code == 302, response.content.decode()[:2000]
    source = the_source(world)
    assert source.password == SECRET and source.row_limit == 200
    assert source.created_by == world.users["partner_a_engineer"]
    token = token_of(world, source)
    assert crypto.decrypt(token) == SECRET

    pages = [
        page_of(engineer.get(url("data_sources", world))),
        page_of(engineer.get(url("data_source_edit", world, source.pk))),
        page_of(engineer.get(url("data_source_delete", world, source.pk))),
    ]
    assert "stored, encrypted" in pages[0]
    assert "A password is stored. Leave blank to keep it" in pages[1]
    for page in pages:
        assert SECRET not in page and token not in page

    # A blank password keeps the stored one; the form's other changes apply.
    edit = source_post(pg_client_db, password="", name="Helpdesk DB", sslmode="disable", connect_timeout="3")
    assert engineer.post(url("data_source_edit", world, source.pk), edit).status_code == 302
    source = the_source(world)
    assert source.password == SECRET and source.name == "Helpdesk DB"
    assert source.options == {"sslmode": "disable", "connect_timeout": 3}
    # An edit that fails validation does not echo the typed password back either.
    bad = source_post(pg_client_db, password="typed-N3w-secret", host="")
    page = page_of(engineer.post(url("data_source_edit", world, source.pk), bad))
    assert "Give the database server" in page and "typed-N3w-secret" not in page
    assert the_source(world).password == SECRET
    # "Remove the stored password" clears it.
    edit = source_post(pg_client_db, password="", clear_password="on")
    assert engineer.post(url("data_source_edit", world, source.pk), edit).status_code == 302
    assert the_source(world).password == ""


def test_form_errors_land_on_their_fields(world, engineer):
    services.data_source_create(
        client=world.client_a, name="Taken", key="helpdesk", engine="sqlite", database="/tmp/x.db", actor=None
    )
    page = page_of(engineer.post(url("data_source_create", world), source_post("hd", row_limit="9999")))
    assert "Ensure this value is less than or equal to 5000" in page
    page = page_of(engineer.post(url("data_source_create", world), source_post("hd")))
    assert "already exists" in page
    page = page_of(
        engineer.post(url("data_source_create", world), source_post("hd", key="x", engine="sqlite"))
    )
    assert "absolute path" in page
    with tenant_context(world.client_a):
        assert DataSource.objects.count() == 1


def test_test_connection_over_htmx(world, engineer, pg_client_db):
    reset_postgresql(pg_client_db)
    engineer.post(url("data_source_create", world), source_post(pg_client_db))
    source = the_source(world)
    response = engineer.post(url("data_source_test", world, source.pk), HTTP_HX_REQUEST="true")
    fragment = page_of(response)
    assert "<html" not in fragment
    assert f'id="test-result-{source.pk}"' in fragment
    assert "Connected to PostgreSQL" in fragment and "OK" in fragment
    assert SECRET not in fragment

    port = free_port()
    services.data_source_update(client=world.client_a, source=source, port=port, actor=None)
    fragment = page_of(engineer.post(url("data_source_test", world, source.pk), HTTP_HX_REQUEST="true"))
    assert "Cannot reach the database server at" in fragment and f":{port}" in fragment
    assert "Failed" in fragment and "Traceback" not in fragment and SECRET not in fragment
    # The list shows the last result; without htmx the answer is a message on the list.
    response = engineer.post(url("data_source_test", world, source.pk), follow=True)
    page = page_of(response)
    assert "Cannot reach the database server" in page and SECRET not in page


def test_delete_is_refused_while_mapped_then_allowed(world, engineer, pg_client_db):
    engineer.post(url("data_source_create", world), source_post(pg_client_db))
    source = the_source(world)
    deployment = a_deployment(world)
    services.field_mapping_save(
        client=world.client_a, deployment=deployment, data_source=source, yaml_text=ITSM_MAPPING, actor=None
    )
    page = page_of(engineer.get(url("data_source_delete", world, source.pk)))
    assert "is used by 1 field mapping" in page
    page = page_of(engineer.post(url("data_source_delete", world, source.pk), follow=True))
    assert "used by the field mapping of Matrix agent" in page
    assert selectors.data_source_list(client=world.client_a)
    services.field_mapping_delete(client=world.client_a, deployment=deployment, actor=None)
    page = page_of(engineer.post(url("data_source_delete", world, source.pk), follow=True))
    assert "Data source “Helpdesk” removed." in page
    assert selectors.data_source_list(client=world.client_a) == []


def test_the_mapping_editor(world, engineer, pg_client_db):
    deployment = a_deployment(world)
    editor = url("field_mapping", world, deployment.pk)
    assert "Add a data source first" in page_of(engineer.get(editor))
    engineer.post(url("data_source_create", world), source_post(pg_client_db))
    source = the_source(world)

    page = page_of(engineer.get(editor))
    assert "entities:" in page and "ticket_comment:" in page  # the starter mapping
    assert "What the agent needs" in page and "requester_id" in page
    list_page = page_of(engineer.get(url("data_sources", world)))
    assert "Map its data" in list_page and editor in list_page

    bad = ITSM_MAPPING.replace("subject: subj", "subject: null")
    page = page_of(engineer.post(editor, {"data_source": source.pk, "yaml": bad}))
    assert "The mapping has 1 error" in page
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if "subject: null" in text)
    assert f"Line {line}" in page and "&#x27;subject&#x27; is required" in page
    with tenant_context(world.client_a):
        assert not FieldMapping.objects.exists()

    response = engineer.post(editor, {"data_source": source.pk, "yaml": ITSM_MAPPING})
    assert response.status_code == 302
    page = page_of(engineer.get(editor))
    assert "Saved mapping" in page and "hd_tkt_txt.body" in page and "side table" in page
    assert "not in this database" in page  # team_id: null
    assert "Entity &#x27;ticket_comment&#x27; is not mapped" in page
    mapping = selectors.field_mapping_for(deployment, client=world.client_a)
    assert mapping.yaml == ITSM_MAPPING and mapping.updated_by == world.users["partner_a_engineer"]
    assert "Edit mapping" in page_of(engineer.get(url("data_sources", world)))

    delete = url("field_mapping_delete", world, deployment.pk)
    assert "Remove the field mapping" in page_of(engineer.get(delete))
    assert engineer.post(delete).status_code == 302
    assert selectors.field_mapping_for(deployment, client=world.client_a) is None


def test_a_foreign_data_source_id_is_not_found(world, engineer):
    foreign = services.data_source_create(
        client=world.client_b, name="B", key="b", engine="sqlite", database="/tmp/b.db", actor=None
    )
    for name in ("data_source_edit", "data_source_delete"):
        assert engineer.get(url(name, world, foreign.pk)).status_code == 404
    assert engineer.post(url("data_source_test", world, foreign.pk)).status_code == 404
