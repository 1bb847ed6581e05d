"""API v1, the audit trail on a client's host: events by filter and page, exports, verify; who may.

The platform host has no audit routes: the vendor sees only counts, in its portal.
"""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
import yaml

from apps.audit.models import AuditEvent
from tests.audit.helpers import append_many, triggers_disabled, write_chain
from tests.conftest import PLATFORM_HOST, host_of, http_client

DAY = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _story(client):
    return write_chain(
        client,
        [
            {"created_at": DAY, "kind": "task.created", "trace_id": "tr-a", "actor": "op@example.com"},
            {"created_at": DAY, "kind": "decision", "trace_id": "tr-a", "deployment_id": 4, "effect": "deny"},
            {
                "created_at": DAY.replace(day=3),
                "kind": "approval.expired",
                "trace_id": "tr-b",
                "data": {"n": 1},
            },
        ],
    )


@pytest.fixture
def api(world):
    return lambda persona="client_a_viewer": http_client(world.users[persona], host_of(world.client_a))


def test_list_events_newest_first_with_every_field(world, api):
    events = _story(world.client_a)
    body = api().get("/api/v1/audit/events").json()
    assert body["count"] == 3
    assert [e["seq"] for e in body["results"]] == [3, 2, 1]
    last = body["results"][0]
    assert last == {
        "seq": 3,
        "created_at": "2026-03-03T09:00:00Z",
        "kind": "approval.expired",
        "trace_id": "tr-b",
        "actor": "system",
        "actor_id": None,
        "deployment": None,
        "effect": "",
        "subject": "",
        "data": {"n": 1},
        "prev_hash": events[1].hash,
        "hash": events[2].hash,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("trace_id=tr-a", [2, 1]),
        ("deployment=4", [2]),
        ("effect=deny", [2]),
        ("kind=approval.*", [3]),
        ("date_from=2026-03-03", [3]),
        ("date_to=2026-03-02", [2, 1]),
    ],
)
def test_list_filters(world, api, query, expected):
    _story(world.client_a)
    assert [e["seq"] for e in api().get(f"/api/v1/audit/events?{query}").json()["results"]] == expected


def test_list_pages_and_refuses_bad_filters(world, api):
    append_many(world.client_a, 55)
    second = api().get("/api/v1/audit/events?page=2").json()
    assert second["count"] == 55 and [e["seq"] for e in second["results"]] == [5, 4, 3, 2, 1]
    assert second["previous"] and second["next"] is None
    for bad in (
        "effect=maybe",
        "date_from=yesterday",
        "deployment=0",
        "date_from=2026-03-03&date_to=2026-03-01",
    ):
        assert api().get(f"/api/v1/audit/events?{bad}").status_code == 400, bad


def test_export_jsonl_and_csv_with_filters(world, api):
    _story(world.client_a)
    response = api().get("/api/v1/audit/export?trace_id=tr-a")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2]
    response = api("client_a_admin").get("/api/v1/audit/export?fmt=csv&kind=decision")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert [(row["seq"], row["effect"]) for row in rows] == [("2", "deny")]
    assert api().get("/api/v1/audit/export?fmt=xml").status_code == 400


def test_verify(world, api):
    append_many(world.client_a, 3)
    assert api().post("/api/v1/audit/verify").json() == {
        "ok": True,
        "checked": 3,
        "first_broken_seq": None,
        "reason": "",
    }
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=2).delete()
    body = api("client_a_operator").post("/api/v1/audit/verify").json()
    assert (body["ok"], body["first_broken_seq"], body["checked"]) == (False, 2, 1)


@pytest.mark.parametrize("persona", ["client_b_admin", "partner_a_admin", "vendor_admin"])
def test_outsiders_are_refused(world, persona):
    append_many(world.client_a, 1)
    browser = http_client(world.users[persona], host_of(world.client_a))
    assert browser.get("/api/v1/audit/events").status_code == 403
    assert browser.get("/api/v1/audit/export").status_code == 403
    assert browser.post("/api/v1/audit/verify").status_code == 403


def test_no_audit_routes_on_the_platform_host(world):
    browser = http_client(world.users["vendor_admin"], PLATFORM_HOST)
    assert browser.get("/api/v1/audit/events").status_code == 404


def test_the_operations_are_in_the_client_hosts_openapi_schema(world, api):
    schema = yaml.safe_load(api().get("/api/schema/").content)
    paths = schema["paths"]
    assert {"/api/v1/audit/events", "/api/v1/audit/export", "/api/v1/audit/verify"} <= set(paths)
    params = {p["name"] for p in paths["/api/v1/audit/export"]["get"]["parameters"]}
    assert {"fmt", "date_from", "date_to", "trace_id", "deployment", "effect", "kind"} <= params
    assert set(paths["/api/v1/audit/export"]["get"]["responses"]["200"]["content"]) == {
        "application/x-ndjson",
        "text/csv",
    }
