"""Exports by filter (JSONL, CSV), `manage.py verify_audit`, and the per-client counts for the vendor."""

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit import tasks
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_count_days, audit_count_totals, audit_event_list
from apps.audit.services import (
    EXPORT_FIELDS,
    audit_counts_aggregate,
    audit_export,
    audit_export_client,
    event_hash,
)
from apps.core.exceptions import ApplicationError
from apps.tenancy.models import ClientAuditCount
from tests.audit.helpers import append_many, triggers_disabled, write_chain

DAY1, DAY2, DAY3 = (datetime(2026, 3, d, 12, 0, tzinfo=UTC) for d in (1, 2, 3))


def _story(client):
    """Five events over three days: two traces, two agents, a denial and an approval."""
    return write_chain(
        client,
        [
            {"created_at": DAY1, "kind": "task.created", "trace_id": "tr-a", "deployment_id": 1},
            {
                "created_at": DAY1,
                "kind": "decision",
                "trace_id": "tr-a",
                "deployment_id": 1,
                "effect": "deny",
            },
            {
                "created_at": DAY2,
                "kind": "decision",
                "trace_id": "tr-b",
                "deployment_id": 2,
                "effect": "require_approval",
            },
            {"created_at": DAY2, "kind": "approval.approved", "trace_id": "tr-b", "deployment_id": 2},
            {"created_at": DAY3, "kind": "tool.executed", "trace_id": "tr-b", "deployment_id": 2},
        ],
    )


def _seqs(client, filters) -> list[int]:
    with tenant_context(client):
        return list(audit_event_list(filters=filters).values_list("seq", flat=True))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [5, 4, 3, 2, 1]),
        ({"date_from": date(2026, 3, 2)}, [5, 4, 3]),
        ({"date_to": date(2026, 3, 2)}, [4, 3, 2, 1]),
        ({"date_from": date(2026, 3, 2), "date_to": date(2026, 3, 2)}, [4, 3]),
        ({"trace_id": "tr-a"}, [2, 1]),
        ({"deployment_id": 2}, [5, 4, 3]),
        ({"effect": "deny"}, [2]),
        ({"kind": "decision"}, [3, 2]),
        ({"kind": "approval.*"}, [4]),
        ({"kind": "decision", "trace_id": "tr-b", "effect": "require_approval"}, [3]),
        ({"trace_id": "", "kind": None, "unknown": "x"}, [5, 4, 3, 2, 1]),
        ({"trace_id": "nope"}, []),
    ],
)
def test_filters(world, filters, expected):
    _story(world.client_a)
    assert _seqs(world.client_a, filters) == expected


def test_jsonl_export_is_the_chain_and_can_be_verified_from_the_file(world):
    _story(world.client_a)
    with tenant_context(world.client_a):
        text = "".join(audit_export(fmt="jsonl"))
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]  # oldest first
    assert set(lines[0]) == set(EXPORT_FIELDS)
    prev = "0" * 64
    for line in lines:
        line["created_at"] = datetime.fromisoformat(line["created_at"])
        assert line["prev_hash"] == prev and event_hash(prev, line) == line["hash"]
        prev = line["hash"]


def test_export_honours_filters_and_batches(world, monkeypatch):
    from apps.audit import services

    _story(world.client_a)
    monkeypatch.setattr(services, "BATCH_SIZE", 2)  # several batches of the same query
    chunks = list(audit_export_client(client=world.client_a, fmt="jsonl", filters={"trace_id": "tr-b"}))
    assert len(chunks) == 2
    assert [json.loads(line)["seq"] for line in "".join(chunks).splitlines()] == [3, 4, 5]
    chunks = list(audit_export_client(client=world.client_a, fmt="jsonl", filters={"kind": "decision"}))
    assert [json.loads(line)["seq"] for line in "".join(chunks).splitlines()] == [2, 3]


def test_csv_export_has_a_header_json_data_and_defused_formulas(world):
    write_chain(
        world.client_a,
        [
            {"created_at": DAY1, "kind": "task.created", "subject": '=HYPERLINK("http://evil")'},
            {"created_at": DAY2, "kind": "decision", "effect": "deny", "data": {"rule": "no_p1", "n": 2}},
        ],
    )
    text = "".join(audit_export_client(client=world.client_a, fmt="csv", filters={}))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert rows[0]["subject"] == '\'=HYPERLINK("http://evil")'
    assert json.loads(rows[1]["data"]) == {"n": 2, "rule": "no_p1"}
    assert (rows[1]["seq"], rows[1]["effect"], rows[1]["deployment_id"]) == ("2", "deny", "")
    only_deny = "".join(audit_export_client(client=world.client_a, fmt="csv", filters={"effect": "deny"}))
    assert len(list(csv.DictReader(io.StringIO(only_deny)))) == 1


def test_export_refuses_an_unknown_format(world):
    with pytest.raises(ApplicationError, match="jsonl, csv"):
        audit_export_client(client=world.client_a, fmt="xml", filters={})


def test_export_streams_in_the_clients_schema_wherever_the_connection_is(world):
    _story(world.client_a)
    append_many(world.client_b, 2)
    chunks = audit_export_client(client=world.client_a, fmt="jsonl", filters={})
    with tenant_context(world.client_b):  # e.g. the connection moved on while the response streamed
        text = "".join(chunks)
    assert len(text.splitlines()) == 5


# --- manage.py verify_audit --------------------------------------------------------------------


def test_verify_audit_command_reports_intact(world):
    append_many(world.client_a, 3)
    out = StringIO()
    call_command("verify_audit", client=world.client_a.slug, stdout=out)
    assert out.getvalue().strip() == "intact: 3 events"
    out = StringIO()
    call_command("verify_audit", "--client", world.client_a2.slug, stdout=out)
    assert out.getvalue().strip() == "intact: 0 events"


def test_verify_audit_command_reports_the_first_broken_link_and_exits_1(world):
    append_many(world.client_a, 4)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=3).delete()
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit", client=world.client_a.slug, stdout=out)
    assert exit_.value.code == 1
    assert out.getvalue().startswith("broken at event #3: event #3 is missing")


def test_verify_audit_command_refuses_an_unknown_client(world):
    with pytest.raises(CommandError, match="No client"):
        call_command("verify_audit", client="no-such-client", stdout=StringIO())


# --- Counts for the vendor -----------------------------------------------------------------------


def _counts() -> set[tuple[str, date, str, int]]:
    return set(ClientAuditCount.objects.values_list("client__slug", "day", "kind", "count"))


def test_counts_aggregate_is_idempotent_and_counts_per_day_and_kind(world):
    _story(world.client_a)
    append_many(world.client_b, 2)  # today
    today = timezone.now().astimezone(UTC).date()
    written = audit_counts_aggregate(days=5, today=date(2026, 3, 3))
    assert written[world.client_a.slug] == 5 and written[world.client_a2.slug] == 0
    expected = {
        (world.client_a.slug, date(2026, 3, 1), "task.created", 1),
        (world.client_a.slug, date(2026, 3, 1), "decision", 1),
        (world.client_a.slug, date(2026, 3, 2), "decision", 1),
        (world.client_a.slug, date(2026, 3, 2), "approval.approved", 1),
        (world.client_a.slug, date(2026, 3, 3), "tool.executed", 1),
    }
    # client B's events are newer than the window's end day but after its start: counted too.
    assert _counts() - {row for row in _counts() if row[0] == world.client_b.slug} == expected
    assert {(row[2], row[3]) for row in _counts() if row[0] == world.client_b.slug} == {
        ("event.1", 1),
        ("event.2", 1),
    }
    before = _counts()
    audit_counts_aggregate(days=5, today=date(2026, 3, 3))
    assert _counts() == before  # re-running changes nothing
    # A later event is counted by the next run: the count is set to the new total, not added to.
    append_many(world.client_b, 1)
    audit_counts_aggregate(days=1, today=today)
    assert ClientAuditCount.objects.get(client=world.client_b, day=today, kind="event.1").count == 2


def test_counts_window_leaves_older_days_alone(world):
    _story(world.client_a)
    audit_counts_aggregate(days=1, today=date(2026, 3, 3))
    assert {(row[1], row[2]) for row in _counts()} == {(date(2026, 3, 3), "tool.executed")}


def test_count_selectors_for_the_vendor(world):
    _story(world.client_a)
    append_many(world.client_b, 1)
    audit_counts_aggregate(days=400, today=timezone.now().astimezone(UTC).date())
    days = audit_count_days(since=date(2026, 3, 1))
    a_days = [(d.day, d.total, d.kinds) for d in days if d.client == world.client_a]
    assert a_days == [
        (date(2026, 3, 3), 1, [("tool.executed", 1)]),
        (date(2026, 3, 2), 2, [("approval.approved", 1), ("decision", 1)]),
        (date(2026, 3, 1), 2, [("decision", 1), ("task.created", 1)]),
    ]
    assert [d.client for d in audit_count_days(since=date(2026, 3, 1), client_id=world.client_b.pk)] == [
        world.client_b
    ]
    assert audit_count_totals(since=date(2026, 3, 1), client_id=world.client_a.pk)[0] == ("decision", 2)


def test_the_task_runs_in_public_and_is_scheduled_every_15_minutes(world):
    append_many(world.client_a, 2)
    result = tasks.audit_counts_aggregate.apply().get()
    assert result[world.client_a.slug] == 2
    today = timezone.now().astimezone(UTC).date()
    assert ClientAuditCount.objects.get(client=world.client_a, day=today, kind="event.2").count == 1
    entries = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.audit_counts_aggregate.name
    ]
    assert len(entries) == 1 and entries[0]["schedule"] == timedelta(minutes=15)
