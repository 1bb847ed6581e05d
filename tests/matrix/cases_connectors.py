"""Permission matrix: the management portal's data sources and field mappings of client A (partner A's
admin and assigned engineer; partner B's admin gets 404, everyone else 403, anonymous the login page).

Each kwargs helper makes, inside the test's transaction, what a refused POST could change: a data source
to edit, test or delete, a deployment to map, a mapping to remove. The POST data would change them.
"""

from django_tenants.utils import tenant_context

from apps.connectors import services
from apps.connectors.models import DataSource
from tests.matrix.base import NOT_FOUND, Case, a_deployment, client_a_in_portal, only

ROUTE = "public:management:client_"
SOURCE_KEY = "matrix-source"
MAPPING = """\
entities:
  person:
    table: usr
    key: usr_id
    fields:
      name: full_nm
      email: email_addr
"""
SOURCE_POST = {
    "name": "Evil source",
    "key": "evil-source",
    "engine": "postgresql",
    "host": "attacker.example",
    "port": "5432",
    "database": "loot",
    "username": "evil",
    "password": "evil-password",
    "secret_env_var": "",
    "sslmode": "",
    "connect_timeout": "",
    "statement_timeout": "",
    "row_limit": "5000",
}


def a_page(w) -> dict:
    return {"pk": w.client_a.pk}


def _source(w) -> DataSource:
    return services.data_source_create(
        client=w.client_a,
        name="Matrix source",
        key=SOURCE_KEY,
        engine="sqlite",
        database="/nonexistent/matrix.sqlite3",
        actor=w.users["partner_a_engineer"],
    )


def a_source(w) -> dict:
    return {"pk": w.client_a.pk, "source_id": _source(w).pk}


def a_deployment_to_map(w) -> dict:
    """A deployment and a data source to map it onto: saving a mapping would add a row."""
    _source(w)
    return {"pk": w.client_a.pk, "deployment_id": a_deployment(w).pk}


def a_mapping(w) -> dict:
    deployment = a_deployment(w)
    services.field_mapping_save(
        client=w.client_a, deployment=deployment, data_source=_source(w), yaml_text=MAPPING, actor=None
    )
    return {"pk": w.client_a.pk, "deployment_id": deployment.pk}


def mapping_post(w) -> dict:
    with tenant_context(w.client_a):
        source = DataSource.objects.get(key=SOURCE_KEY)
    return {"data_source": source.pk, "yaml": MAPPING.replace("full_nm", "other_nm")}


CASES = [
    Case(f"{ROUTE}data_sources", a_page, get=client_a_in_portal),
    Case(  # client A2: partner A's, no engineer assigned
        f"{ROUTE}data_sources",
        lambda w: {"pk": w.client_a2.pk},
        get=only({"partner_a_admin"}, partner_a_engineer=NOT_FOUND, partner_b_admin=NOT_FOUND),
    ),
    Case(
        f"{ROUTE}data_source_create",
        a_page,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=SOURCE_POST,
    ),
    Case(
        f"{ROUTE}data_source_edit",
        a_source,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data={**SOURCE_POST, "key": SOURCE_KEY},
    ),
    Case(f"{ROUTE}data_source_delete", a_source, get=client_a_in_portal, post=client_a_in_portal),
    # The test writes the outcome on the source: a refused POST must not.
    Case(f"{ROUTE}data_source_test", a_source, post=client_a_in_portal),
    Case(
        f"{ROUTE}field_mapping",
        a_deployment_to_map,
        get=client_a_in_portal,
        post=client_a_in_portal,
        data=mapping_post,
    ),
    Case(f"{ROUTE}field_mapping_delete", a_mapping, get=client_a_in_portal, post=client_a_in_portal),
]
