"""The client-database layer on real PostgreSQL, MariaDB and SQLite: canonical get/query/insert/update
through a mapping with a side table, filters and operators, the row limit, read-only reads, hostile
values, and refusals that name what is wrong."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from apps.connectors import clientdb
from apps.connectors.clientdb import ClientDatabaseError
from tests.connectors.conftest import MAPPING_YAML, free_port, mapping_spec

INJECTION = "x'; DROP TABLE hd_tkt; --"


def tables_left(helpdesk) -> int:
    return helpdesk.raw("SELECT COUNT(*) FROM hd_tkt")[0][0]


# --- Reads ----------------------------------------------------------------------------------------


def test_get_returns_canonical_names_with_the_side_table_joined(helpdesk):
    ticket = helpdesk.db.get("ticket", 1)
    assert ticket == {
        "id": 1,
        "reference": "INC-1",
        "subject": "Email down",
        "description": "Outlook cannot connect.",
        "status": "open",
        "priority": "P1",
        "requester_id": 1,
        "created_at": ticket["created_at"],
        "due_date": "2025-02-01",
        "cost": "120.50",
        "vip": True,
    }
    # Dates and datetimes are ISO strings; decimals strings; a null-mapped field is absent.
    assert ticket["created_at"].startswith("2025-01-10")
    assert "09:30:00" in ticket["created_at"]
    assert "team_id" not in ticket


def test_get_without_a_side_row_has_an_empty_description_and_a_missing_id_gives_none(helpdesk):
    assert helpdesk.db.get("ticket", 3)["description"] is None
    assert helpdesk.db.get("ticket", 999) is None
    # An id typed as text is read as the key column's type.
    assert helpdesk.db.get("ticket", "2")["reference"] == "INC-2"


def test_query_filters_with_every_operator(helpdesk):
    db = helpdesk.db

    def refs(**kwargs):
        return [row["reference"] for row in db.query("ticket", **kwargs)]

    assert refs(filter={"status": "open"}) == ["INC-1", "INC-2"]
    assert refs(filter={"status": {"eq": "new"}}) == ["INC-3", "REQ-4"]
    assert refs(filter={"status": {"ne": "open"}}) == ["INC-3", "REQ-4", "INC-5"]
    assert refs(filter={"id": {"gt": 3}}) == ["REQ-4", "INC-5"]
    assert refs(filter={"id": {"gte": 3, "lt": 5}}) == ["INC-3", "REQ-4"]
    assert refs(filter={"id": {"lte": 1}}) == ["INC-1"]
    assert refs(filter={"priority": {"in": ["P1", "P2"]}}) == ["INC-1", "INC-3", "INC-5"]
    assert refs(filter={"subject": {"contains": "jams"}}) == ["INC-2"]
    assert refs(filter={"due_date": {"gte": "2025-02-01"}}) == ["INC-1", "INC-2", "REQ-4"]
    assert refs(filter={"cost": {"gt": "100"}}) == ["INC-1", "REQ-4"]
    assert refs(filter={"vip": True}) == ["INC-1", "INC-5"]
    assert refs(filter={"due_date": None}) == ["INC-3"]
    assert refs(filter={"due_date": {"ne": None}, "status": "new"}) == ["REQ-4"]
    assert refs(filter={"created_at": {"gte": "2025-01-10T00:00:00+00:00"}}) == [
        "INC-1",
        "INC-2",
        "INC-3",
        "REQ-4",
        "INC-5",
    ]
    # A field in the side table filters through the join.
    assert refs(filter={"description": {"contains": "session"}}) == ["INC-5"]


def test_query_fields_order_and_limit(helpdesk):
    db = helpdesk.db
    rows = db.query("ticket", fields=["subject", "description"], order_by="-id", limit=2)
    assert rows == [
        {"id": 5, "subject": "ERP login fails", "description": "Invalid session."},
        {"id": 4, "subject": "New laptop 100%_sure", "description": "Starts Monday."},
    ]
    assert [row["id"] for row in db.query("ticket", order_by="priority", fields=["priority"])] == [
        1,
        5,
        3,
        2,
        4,
    ]
    described = db.query("ticket", filter={"description": {"ne": None}}, order_by="-description", fields=[])
    assert [row["id"] for row in described] == [4, 1, 5, 2]
    # Asking for a null-mapped field leaves it out rather than failing.
    assert db.query("ticket", fields=["team_id"], limit=1) == [{"id": 1}]


def test_contains_matches_wildcards_literally(helpdesk):
    assert [row["id"] for row in helpdesk.db.query("ticket", filter={"subject": {"contains": "100%_"}})] == [
        4
    ]
    assert [row["id"] for row in helpdesk.db.query("ticket", filter={"subject": {"contains": "%"}})] == [4]
    assert helpdesk.db.query("ticket", filter={"subject": {"contains": "_"}})[0]["id"] == 4


def test_the_row_limit_caps_every_query(helpdesk):
    helpdesk.source.row_limit = 3
    db = clientdb.client_database(source=helpdesk.source, mapping=mapping_spec())
    assert len(db.query("ticket")) == 3
    assert len(db.query("ticket", limit=100)) == 3
    assert len(db.query("ticket", limit=2)) == 2
    for bad in (0, -1, "5", True, 2.5):
        with pytest.raises(ClientDatabaseError, match="limit"):
            db.query("ticket", limit=bad)


def test_reads_run_in_a_read_only_transaction(helpdesk):
    """Whatever ran inside a read would be refused a write by the database itself."""
    db = helpdesk.db
    with pytest.raises(ClientDatabaseError) as caught, db._reading() as conn:
        conn.execute(sa.text("UPDATE hd_tkt SET subj = 'changed' WHERE tkt_id = 1"))
    assert caught.value.kind == "read_only"
    assert caught.value.transient is False
    assert helpdesk.raw("SELECT subj FROM hd_tkt WHERE tkt_id = 1") == [("Email down",)]
    # The pooled connection is usable for writes again afterwards.
    assert db.update("ticket", 1, {"status": "pending"})["after"]["status"] == "pending"


# --- Writes ---------------------------------------------------------------------------------------


def test_insert_writes_the_main_row_and_its_side_row(helpdesk):
    created = helpdesk.db.insert(
        "ticket",
        {
            "reference": "INC-6",
            "subject": "Disk full",
            "status": "new",
            "priority": "P2",
            "requester_id": 2,
            "description": "The S: drive is full.",
            "created_at": "2025-02-10T08:00:00Z",
            "due_date": "2025-02-12",
            "cost": Decimal("12.34"),
            "vip": "false",
            "team_id": 7,  # null-mapped: left out
        },
    )
    assert created["id"] == 6
    assert created["description"] == "The S: drive is full."
    assert created["due_date"] == "2025-02-12"
    assert created["cost"] == "12.34"
    assert created["vip"] is False
    assert created["created_at"].startswith("2025-02-10")
    assert "team_id" not in created
    assert helpdesk.raw("SELECT body FROM hd_tkt_txt WHERE tkt_ref_id = 6") == [("The S: drive is full.",)]


def test_insert_without_side_fields_writes_no_side_row(helpdesk):
    created = helpdesk.db.insert("ticket", {"reference": "INC-7", "subject": "Quiet", "status": "new"})
    assert created["description"] is None
    assert helpdesk.raw(f"SELECT COUNT(*) FROM hd_tkt_txt WHERE tkt_ref_id = {created['id']}")[0][0] == 0


def test_update_changes_main_and_side_rows_and_reports_before_and_after(helpdesk):
    result = helpdesk.db.update("ticket", "1", {"status": "resolved", "description": "Fixed the profile."})
    assert result["id"] == 1
    assert result["updated"] == 1
    assert result["before"]["status"] == "open"
    assert result["before"]["description"] == "Outlook cannot connect."
    assert result["after"]["status"] == "resolved"
    assert result["after"]["description"] == "Fixed the profile."
    assert helpdesk.raw("SELECT stat_cd FROM hd_tkt WHERE tkt_id = 1") == [("resolved",)]


def test_update_creates_the_side_row_when_there_is_none(helpdesk):
    result = helpdesk.db.update("ticket", 3, {"description": "Now described."})
    assert result["before"]["description"] is None
    assert result["after"]["description"] == "Now described."
    assert helpdesk.raw("SELECT body FROM hd_tkt_txt WHERE tkt_ref_id = 3") == [("Now described.",)]


def test_update_of_a_missing_row_changes_nothing(helpdesk):
    assert helpdesk.db.update("ticket", 999, {"status": "closed"}) == {
        "id": 999,
        "updated": 0,
        "before": None,
        "after": None,
    }
    assert helpdesk.raw("SELECT COUNT(*) FROM hd_tkt WHERE stat_cd = 'closed'")[0][0] == 1


def test_a_failed_write_leaves_nothing_behind(helpdesk):
    """One transaction: the side row written before the constraint violation is rolled back too."""
    with pytest.raises(ClientDatabaseError) as caught:
        helpdesk.db.insert(
            "ticket", {"reference": "INC-1", "subject": "Dup", "status": "new", "description": "x"}
        )
    assert caught.value.kind == "constraint"
    assert caught.value.transient is False
    assert helpdesk.raw("SELECT COUNT(*) FROM hd_tkt")[0][0] == 5
    assert helpdesk.raw("SELECT COUNT(*) FROM hd_tkt_txt")[0][0] == 4


# --- Hostile input ----------------------------------------------------------------------------------


def test_sql_injection_in_values_is_stored_verbatim(helpdesk):
    created = helpdesk.db.insert(
        "ticket", {"reference": "INJ-1", "subject": INJECTION, "status": "new", "description": INJECTION}
    )
    assert helpdesk.db.get("ticket", created["id"])["subject"] == INJECTION
    helpdesk.db.update("ticket", 2, {"subject": "'; DELETE FROM hd_tkt; --", "description": '" OR 1=1 --'})
    assert helpdesk.db.get("ticket", 2)["subject"] == "'; DELETE FROM hd_tkt; --"
    assert helpdesk.db.get("ticket", 2)["description"] == '" OR 1=1 --'
    assert tables_left(helpdesk) == 6


def test_sql_injection_in_filters_and_ids_changes_nothing(helpdesk):
    db = helpdesk.db
    assert db.query("ticket", filter={"subject": "x' OR '1'='1"}) == []
    assert db.query("ticket", filter={"status": {"in": ["open') OR 1=1 --", INJECTION]}}) == []
    assert db.query("ticket", filter={"subject": {"contains": "' OR 1=1 --"}}) == []
    with pytest.raises(ClientDatabaseError, match="whole number") as caught:
        db.get("ticket", "1 OR 1=1")
    assert caught.value.transient is False
    with pytest.raises(ClientDatabaseError, match="Unknown field"):
        db.query("ticket", filter={"subj; DROP TABLE hd_tkt": "x"})
    with pytest.raises(ClientDatabaseError, match="Unknown field"):
        db.query("ticket", order_by="subject; DROP TABLE hd_tkt")
    assert tables_left(helpdesk) == 5


# --- Refusals -----------------------------------------------------------------------------------------


def test_unknown_entities_fields_and_operators_are_refused_by_name(helpdesk):
    db = helpdesk.db
    cases = [
        (lambda: db.get("invoice", 1), "Unknown entity 'invoice'"),
        (lambda: db.query("ticket", fields=["subjekt"]), "Unknown field 'subjekt' of ticket"),
        (lambda: db.query("ticket", filter={"owner": 1}), "Unknown field 'owner'"),
        (lambda: db.insert("ticket", {"subject": "x", "colour": "red"}), "Unknown field 'colour'"),
        (lambda: db.update("ticket", 1, {"colour": "red"}), "Unknown field 'colour'"),
        (lambda: db.query("ticket", filter={"id": {"like": "%"}}), "Unknown operator 'like'"),
        (lambda: db.query("ticket", filter={"team_id": 1}), "team_id is not in this client's database"),
        (lambda: db.query("ticket", order_by="-team_id"), "team_id is not in this client's database"),
        (lambda: db.update("ticket", 1, {"id": 9}), "id of a ticket cannot be changed"),
        (lambda: db.update("ticket", 1, {"due_date": "next week"}), "ticket.due_date takes a date"),
        (lambda: db.update("ticket", 1, {"cost": "lots"}), "ticket.cost takes a number"),
        (lambda: db.update("ticket", 1, {"vip": "maybe"}), "ticket.vip takes true or false"),
        (lambda: db.query("ticket", filter={"priority": {"in": "P1"}}), "takes a list"),
    ]
    for call, message in cases:
        with pytest.raises(ClientDatabaseError) as caught:
            call()
        assert message in caught.value.message
        assert caught.value.transient is False
    assert helpdesk.raw("SELECT stat_cd FROM hd_tkt WHERE tkt_id = 1") == [("open",)]


def test_an_update_of_only_null_mapped_fields_writes_nothing(helpdesk):
    result = helpdesk.db.update("ticket", 1, {"team_id": 4})
    assert result["updated"] == 1
    assert result["before"] == result["after"]


def test_a_mapping_naming_a_missing_column_is_refused_clearly(helpdesk):
    broken = mapping_spec(MAPPING_YAML.replace("subject: subj", "subject: subject_txt"))
    db = clientdb.client_database(source=helpdesk.source, mapping=broken)
    with pytest.raises(ClientDatabaseError) as caught:
        db.get("ticket", 1)
    assert caught.value.kind == "mapping"
    assert "subject_txt" in caught.value.message
    broken = mapping_spec(MAPPING_YAML.replace("table: hd_tkt\n", "table: hd_ticket\n"))
    with pytest.raises(ClientDatabaseError, match="hd_ticket") as caught:
        clientdb.client_database(source=helpdesk.source, mapping=broken).query("ticket")
    assert caught.value.kind == "mapping"


def test_a_tampered_mapping_with_a_non_identifier_is_refused_before_any_sql(helpdesk):
    spec = mapping_spec()
    spec["entities"]["ticket"]["table"] = "hd_tkt; DROP TABLE hd_usr"
    with pytest.raises(ClientDatabaseError, match="not valid"):
        clientdb.client_database(source=helpdesk.source, mapping=spec)
    spec = mapping_spec()
    spec["entities"]["ticket"]["fields"]["subject"] = "subj) --"
    with pytest.raises(ClientDatabaseError, match="not valid"):
        clientdb.client_database(source=helpdesk.source, mapping=spec)


# --- Transient failures ---------------------------------------------------------------------------------

SLOW_VIEW = {
    # Each row takes 1.5 s to qualify; the source allows a statement 1 s.
    "postgresql": "CREATE OR REPLACE VIEW slow_usr AS SELECT usr_id, full_nm, email_addr FROM hd_usr "
    "WHERE (SELECT true FROM pg_sleep(1.5))",
    "mysql": "CREATE OR REPLACE VIEW slow_usr AS SELECT usr_id, full_nm, email_addr FROM hd_usr "
    "WHERE SLEEP(1.5) = 0",
}


def test_a_statement_over_the_timeout_is_stopped_and_transient(helpdesk):
    if helpdesk.engine == "sqlite":
        pytest.skip("SQLite has no statement timeout (only its busy timeout)")
    helpdesk.raw(SLOW_VIEW[helpdesk.engine])
    helpdesk.source.options = {"statement_timeout": 1}
    spec = mapping_spec(MAPPING_YAML.replace("table: hd_usr", "table: slow_usr"))
    db = clientdb.client_database(source=helpdesk.source, mapping=spec)
    with pytest.raises(ClientDatabaseError) as caught:
        db.query("person")
    assert caught.value.kind == "timeout"
    assert caught.value.transient is True
    assert "took longer than 1 second" in caught.value.message
    clientdb.dispose_engine(helpdesk.source)


def test_an_unreachable_server_is_transient(helpdesk):
    if helpdesk.engine == "sqlite":
        helpdesk.source.database = "/nonexistent/dir/helpdesk.sqlite3"
    else:
        helpdesk.source.port = free_port()
    db = clientdb.client_database(source=helpdesk.source, mapping=mapping_spec())
    with pytest.raises(ClientDatabaseError) as caught:
        db.get("ticket", 1)
    if helpdesk.engine == "sqlite":
        assert caught.value.kind == "no_database" and caught.value.transient is False
    else:
        assert caught.value.kind == "unreachable" and caught.value.transient is True
    clientdb.dispose_engine(helpdesk.source)
