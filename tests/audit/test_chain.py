"""The audit trail's hash chain: appends, the database's refusals, and verify finding tampered rows."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django_tenants.utils import tenant_context

from apps.audit.models import GENESIS_HASH, AuditEvent
from apps.audit.services import (
    audit_append,
    audit_append_client,
    audit_verify,
    audit_verify_client,
    canonical_json,
)
from apps.core.exceptions import ApplicationError
from apps.tenancy.models import Client
from tests.audit.helpers import append_many, triggers_disabled

DB_REFUSAL = (IntegrityError, InternalError)


def test_events_form_a_chain_that_verifies(world):
    client = world.client_a
    with tenant_context(client):
        assert AuditEvent.objects.count() == 0
        first = audit_append(
            kind="task.created",
            actor="client.a.operator@example.com",
            actor_id=7,
            trace_id="tr-1",
            deployment_id=3,
            subject="Resolve ticket 42",
            data={"inputs": {"ticket": 42}, "note": "ünïcode ✓"},
        )
        second = audit_append(kind="decision", actor="agent:Helpdesk", effect="deny", trace_id="tr-1")
        assert (first.seq, second.seq) == (1, 2)
        assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
        # The hash is sha256(prev_hash + canonical JSON of the stored fields), as read back from the table.
        row = AuditEvent.objects.values().get(seq=1)
        fields = {k: row[k] for k in row if k not in ("id", "prev_hash", "hash")}
        fields["created_at"] = row["created_at"].astimezone(UTC).isoformat(timespec="microseconds")
        expected = hashlib.sha256((GENESIS_HASH + canonical_json(fields)).encode()).hexdigest()
        assert row["hash"] == expected == first.hash
    result = audit_verify_client(client=client)
    assert (result.ok, result.checked, result.first_broken_seq) == (True, 2, None)


def test_data_that_postgres_normalises_still_verifies(world):
    """Numbers, timestamps and odd values are hashed as they read back, so verify reports no false break."""
    odd = {
        "big": 1e20,
        "tiny": 1.5e-07,
        "trailing": 2.50,
        "negative_zero": -0.0,
        "huge_int": 2**70,
        "nan": float("nan"),
        "when": datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC),
        "decimal": Decimal("1.10"),
        "nested": [{"z": 1, "a": [True, None]}],
        "nul": "a\x00b",
        "lone_surrogate": "x\ud800y",
        3: "int key",
    }
    with tenant_context(world.client_a):
        event = audit_append(kind="tool.executed", subject="x" * 500, data=odd)
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.data == event.data and stored.data["nan"] == "nan"
        assert stored.data["lone_surrogate"] == "x\ufffdy" and stored.data["big"] == 10**20
        assert len(stored.subject) == 300
        assert audit_verify().ok


def test_append_commits_or_rolls_back_with_the_callers_write(world):
    with tenant_context(world.client_a):
        audit_append(kind="task.created")
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_append(kind="task.finished")
            raise RuntimeError("the caller's write failed")
        assert list(AuditEvent.objects.order_by("seq").values_list("seq", "kind")) == [(1, "task.created")]
        assert audit_append(kind="task.finished").seq == 2
        assert audit_verify().ok


def test_append_outside_a_client_schema_is_refused(world):
    connection.set_schema_to_public()
    with pytest.raises(RuntimeError, match="tenant_context"):
        audit_append(kind="decision")
    with tenant_context(world.client_a), pytest.raises(ValueError):
        audit_append(kind="k" * 61)


def test_the_database_refuses_update_delete_and_truncate(world):
    (event,) = append_many(world.client_a, 1)
    with tenant_context(world.client_a):
        with pytest.raises(DB_REFUSAL, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).update(subject="rewritten")
        with pytest.raises(DB_REFUSAL, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=event.pk).delete()
        with (
            pytest.raises(DB_REFUSAL, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("TRUNCATE audit_auditevent")
        assert AuditEvent.objects.get(pk=event.pk).subject == "Event 1"


def test_the_triggers_exist_in_every_client_schema(world):
    for client in (world.client_a, world.client_a2, world.client_b):
        with tenant_context(client), connection.cursor() as cursor:
            cursor.execute(
                "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = 'audit_auditevent' AND NOT t.tgisinternal ORDER BY 1",
                [client.schema_name],
            )
            names = [row[0] for row in cursor.fetchall()]
        assert names == ["audit_auditevent_append_only", "audit_auditevent_no_truncate"]


def test_verify_finds_an_edited_row(world):
    append_many(world.client_a, 4)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=3).update(data={"i": 300})
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 3, 2)
    assert "changed" in result.reason


def test_verify_finds_an_edited_row_whose_hash_was_recomputed(world):
    """A forger who rewrites an event and its own hash still breaks the next event's link."""
    events = append_many(world.client_a, 3)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=2).update(hash="f" * 64)
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=2).update(hash=events[1].hash)
        AuditEvent.objects.filter(seq=3).update(prev_hash="e" * 64)
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "does not follow event #2" in result.reason


def test_verify_finds_a_deleted_row(world):
    append_many(world.client_a, 5)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=2).delete()
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 2, 1)
    assert result.reason == "event #2 is missing: the chain goes from #1 to #3"


def test_verify_finds_a_reordered_pair(world):
    """Two rows' contents swapped (each keeps its place and hashes): broken at the first of them."""
    append_many(world.client_a, 4)
    with triggers_disabled(world.client_a):
        two, three = AuditEvent.objects.get(seq=2), AuditEvent.objects.get(seq=3)
        for row, other in ((two, three), (three, two)):
            AuditEvent.objects.filter(pk=row.pk).update(
                kind=other.kind, subject=other.subject, data=other.data, created_at=other.created_at
            )
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq) == (False, 2)


def test_verify_finds_rows_moved_to_each_others_place(world):
    """Whole rows swapped by renumbering: the link to the previous event breaks at the first of them."""
    append_many(world.client_a, 4)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=2).update(seq=1000)
        AuditEvent.objects.filter(seq=3).update(seq=2)
        AuditEvent.objects.filter(seq=1000).update(seq=3)
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "does not follow event #1" in result.reason


def test_verify_finds_an_inserted_row(world):
    events = append_many(world.client_a, 3)
    with triggers_disabled(world.client_a):
        # Room is made for a forged event #2 by moving #2 and #3 up one.
        AuditEvent.objects.filter(seq=3).update(seq=4)
        AuditEvent.objects.filter(seq=2).update(seq=3)
        AuditEvent.objects.create(
            seq=2,
            created_at=events[0].created_at,
            kind="approval.approved",
            actor="forger@example.com",
            prev_hash=events[0].hash,
            hash="0" * 64,
        )
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq) == (False, 2)


def test_verify_finds_the_first_event_deleted(world):
    append_many(world.client_a, 2)
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=1).delete()
    result = audit_verify_client(client=world.client_a)
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 1, 0)
    assert result.reason == "event #1 is missing: the chain starts at #2"


def test_append_for_a_client_from_outside_its_schema(world):
    event = audit_append_client(client=world.client_b, kind="system.note", actor="system")
    assert connection.schema_name == "public" and event.seq == 1
    with tenant_context(world.client_b):
        assert AuditEvent.objects.get().kind == "system.note"


def test_verify_walks_batches_and_reports_a_break_in_a_later_one(world):
    append_many(world.client_a, 7)
    with tenant_context(world.client_a):
        assert audit_verify(batch_size=2) == audit_verify()
        assert audit_verify(batch_size=2).checked == 7
    with triggers_disabled(world.client_a):
        AuditEvent.objects.filter(seq=6).update(actor="someone else")
        assert audit_verify(batch_size=2).first_broken_seq == 6


def test_each_client_has_its_own_chain(world):
    append_many(world.client_a, 2)
    (b_event,) = append_many(world.client_b, 1)
    assert b_event.seq == 1 and b_event.prev_hash == GENESIS_HASH
    with tenant_context(world.client_a2):
        assert audit_verify().checked == 0 and audit_verify().ok
    assert audit_verify_client(client=world.client_a).checked == 2


def test_verify_of_a_client_not_ready_is_refused(world):
    pending = Client(
        partner=world.partner_a, name="Pending", slug="pending-x", schema_name="client_pending_x"
    )
    with pytest.raises(ApplicationError, match="not ready"):
        audit_verify_client(client=pending)


def test_hash_covers_every_stored_field(world):
    """Any one field changed alone changes the hash (checked by verify after a superuser edit)."""
    edits = {
        "created_at": datetime(2020, 1, 1, tzinfo=UTC),
        "trace_id": "other",
        "kind": "other",
        "actor": "other",
        "actor_id": 99,
        "deployment_id": 99,
        "effect": "allow",
        "subject": "other",
        "data": {"other": True},
    }
    append_many(world.client_a, 1, trace_id="t", actor="a", actor_id=1, deployment_id=1, effect="deny")
    for field, value in edits.items():
        sid = transaction.savepoint()
        with triggers_disabled(world.client_a):
            AuditEvent.objects.filter(seq=1).update(**{field: value})
        result = audit_verify_client(client=world.client_a)
        transaction.savepoint_rollback(sid)
        assert (result.ok, result.first_broken_seq) == (False, 1), field
    assert audit_verify_client(client=world.client_a).ok
    assert json.loads(canonical_json({"b": 1, "a": "é"})) == {"a": "é", "b": 1}
