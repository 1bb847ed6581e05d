"""Writes and checks of a client's audit trail: append to the hash chain, verify it, export it, count it.

`audit_append`, `audit_verify` and `audit_export` work in the CURRENT schema: their callers (the
runtime's gateway and services, which already run inside the client's `tenant_context`, usually in
their own `transaction.atomic`) decide which client. The `*_client` wrappers switch into a client
themselves, for portals, the API and management commands.

The chain: event n stores `prev_hash` (the hash of event n-1; 64 zeros for event 1) and
`hash = sha256(prev_hash + canonical JSON of every other stored field)`. What is hashed is exactly
what reading the row back gives (microsecond timestamps in UTC, JSON as PostgreSQL normalises it),
so verification never reports a break that is not there.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, tenant_context

from apps.core.db import tenant_connection
from apps.core.exceptions import ApplicationError
from apps.tenancy.models import Client, ClientAuditCount

from .models import GENESIS_HASH, AuditEvent
from .selectors import audit_event_list

logger = logging.getLogger(__name__)

# Rows read per query when verifying or exporting (keyset pages by seq: constant memory, no long cursor).
BATCH_SIZE = 1000
EXPORT_FORMATS = ("jsonl", "csv")
# The fields an export carries, in CSV column order; `data` is canonical JSON in a CSV cell.
EXPORT_FIELDS = (
    "seq",
    "created_at",
    "trace_id",
    "kind",
    "actor",
    "actor_id",
    "deployment_id",
    "effect",
    "subject",
    "data",
    "prev_hash",
    "hash",
)
# Spreadsheet programs run cells that start with these as formulas; CSV text cells get a leading quote.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_LOCK_NAMESPACE = b"triplane.audit:"
_LIMITS = {"trace_id": 64, "actor": 254, "effect": 20, "subject": 300}
MAX_KIND_LENGTH = 60


@dataclass(frozen=True)
class VerifyResult:
    """What walking the chain found: intact (`ok`) after `checked` events, or where and why it breaks."""

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str = ""


# --- Hashing ---------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value: sorted keys, no spaces, UTF-8 text as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _hashed_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every stored field but the id and the two hashes, as JSON (the timestamp in ISO form)."""
    return {
        "seq": values["seq"],
        "created_at": _timestamp(values["created_at"]),
        "trace_id": values["trace_id"],
        "kind": values["kind"],
        "actor": values["actor"],
        "actor_id": values["actor_id"],
        "deployment_id": values["deployment_id"],
        "effect": values["effect"],
        "subject": values["subject"],
        "data": values["data"],
    }


def event_hash(prev_hash: str, values: Mapping[str, Any]) -> str:
    """The hash an event with these field values must carry after `prev_hash`."""
    payload = prev_hash + canonical_json(_hashed_fields(values))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _lock_key(schema_name: str) -> int:
    """A signed 64-bit advisory-lock key of the client's schema (one chain, one lock)."""
    digest = hashlib.sha256(_LOCK_NAMESPACE + schema_name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _storable(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogate (each becomes a replacement character)."""
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _clean_text(value: Any, limit: int) -> str:
    # Long subjects are cut rather than failing the caller's write.
    return _storable(str(value or ""))[:limit]


def _jsonable(value: Any) -> Any:
    """A JSON value PostgreSQL accepts: text keys, no NaN/infinity, no NUL, anything else as text."""
    if isinstance(value, Mapping):
        return {_storable(str(key)): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, str):
        return _storable(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


# --- Append ------------------------------------------------------------------------------------


def audit_append(
    *,
    kind: str,
    actor: str = "",
    actor_id: int | None = None,
    trace_id: str = "",
    deployment_id: int | None = None,
    effect: str = "",
    subject: str = "",
    data: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the current client's audit trail and return it.

    Runs in the current schema and joins the caller's transaction (it opens one when there is
    none), so the event commits or rolls back with the caller's write; a failure here fails the
    caller's transaction too: nothing is done without its audit event. Appends of one client are
    serialised by a transaction-level advisory lock on its schema, held until the caller commits,
    so call this as late in the transaction as the story allows.
    """
    schema = tenant_connection().schema_name
    if schema == get_public_schema_name():
        raise RuntimeError("audit_append runs inside a client's tenant_context, not in the public schema.")
    if not kind or len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"An audit event kind is 1–{MAX_KIND_LENGTH} characters: {kind!r}.")
    payload = json.dumps(_jsonable(data if data is not None else {}), ensure_ascii=False)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # One round trip (migration 0002): the client's append lock, then the last event as of after
        # the lock was granted, and the data as jsonb gives it back, so what is hashed is what
        # reading the row gives.
        cursor.execute("SELECT * FROM audit_next_link(%s, %s)", [_lock_key(schema), payload])
        last_seq, last_hash, normalised = cursor.fetchone()
        event = AuditEvent(
            seq=(last_seq or 0) + 1,
            # Truncated to what PostgreSQL keeps (it does, but an explicit value hashes the same).
            created_at=timezone.now(),
            trace_id=_clean_text(trace_id, _LIMITS["trace_id"]),
            kind=_clean_text(kind, MAX_KIND_LENGTH),
            actor=_clean_text(actor, _LIMITS["actor"]),
            actor_id=actor_id,
            deployment_id=deployment_id,
            effect=_clean_text(effect, _LIMITS["effect"]),
            subject=_clean_text(subject, _LIMITS["subject"]),
            data=json.loads(normalised),
            prev_hash=last_hash or GENESIS_HASH,
        )
        event.hash = event_hash(event.prev_hash, event.__dict__)
        event.save(force_insert=True)
    return event


def _ready(client: Client) -> Client:
    if client.status != Client.Status.READY:
        raise ApplicationError(f"{client.name} is not ready yet ({client.get_status_display().lower()}).")
    return client


def audit_append_client(*, client: Client, kind: str, **fields: Any) -> AuditEvent:
    """`audit_append` in the client's schema, in a transaction of its own unless the caller has one."""
    with tenant_context(_ready(client)), transaction.atomic():
        return audit_append(kind=kind, **fields)


# --- Verify ------------------------------------------------------------------------------------


def audit_verify(*, batch_size: int = BATCH_SIZE) -> VerifyResult:
    """Walk the current client's chain in seq order and report the first broken link, if any.

    Finds edited rows (contents no longer match the hash), deleted rows (a gap in seq), inserted or
    reordered rows (a seq gap, or a previous-hash link that does not match the event before it).
    Events appended while it runs are checked too. The newest events deleted with nothing after
    them leave no gap; the per-day counts in the vendor's portal are the outside record of those.
    """
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    while True:
        queryset = AuditEvent.objects.order_by("seq")
        if checked:  # keyset paging: the next batch after the last event checked
            queryset = queryset.filter(seq__gte=expected_seq)
        rows = list(queryset.values()[:batch_size])
        for row in rows:
            seq = row["seq"]
            if seq != expected_seq:
                if seq > expected_seq:
                    missing = (
                        f"event #{expected_seq} is missing"
                        if seq == expected_seq + 1
                        else f"events #{expected_seq}–#{seq - 1} are missing"
                    )
                    reason = (
                        f"{missing}: the chain goes from #{expected_seq - 1} to #{seq}"
                        if expected_seq > 1
                        else f"{missing}: the chain starts at #{seq}"
                    )
                else:
                    reason = f"event #{seq} is out of sequence (#{expected_seq} expected)"
                return VerifyResult(False, checked, expected_seq, reason)
            if row["prev_hash"] != prev_hash:
                reason = (
                    f"event #{seq} does not follow event #{seq - 1}: its link to the previous event "
                    "does not match (an event was inserted, removed or moved)"
                    if seq > 1
                    else "event #1 does not start the chain: its link to the previous event is not empty"
                )
                return VerifyResult(False, checked, seq, reason)
            if event_hash(row["prev_hash"], row) != row["hash"]:
                reason = f"event #{seq} was changed after it was written: its contents do not match its hash"
                return VerifyResult(False, checked, seq, reason)
            prev_hash, expected_seq, checked = row["hash"], seq + 1, checked + 1
        if len(rows) < batch_size:
            return VerifyResult(True, checked)


def audit_verify_client(*, client: Client) -> VerifyResult:
    """`audit_verify` in the client's schema."""
    with tenant_context(_ready(client)):
        return audit_verify()


# --- Export ------------------------------------------------------------------------------------


def _export_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **_hashed_fields(row),
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _batch_reader(filters: Mapping[str, Any] | None) -> Callable[[int], list[dict[str, Any]]]:
    queryset = audit_event_list(filters=filters).order_by("seq")

    def read(after_seq: int) -> list[dict[str, Any]]:
        return [dict(row) for row in queryset.filter(seq__gt=after_seq).values()[:BATCH_SIZE]]

    return read


def _export_chunks(fmt: str, read: Callable[[int], list[dict[str, Any]]]) -> Iterator[str]:
    if fmt not in EXPORT_FORMATS:
        raise ApplicationError(f"Export as one of {', '.join(EXPORT_FORMATS)}.", field="fmt")
    if fmt == "csv":
        header = io.StringIO()
        csv.writer(header).writerow(EXPORT_FIELDS)
        yield header.getvalue()
    after = 0
    while rows := read(after):
        buffer = io.StringIO()
        if fmt == "jsonl":
            for row in rows:
                buffer.write(canonical_json(_export_row(row)) + "\n")
        else:
            writer = csv.writer(buffer)
            for row in rows:
                exported = _export_row(row)
                exported["data"] = canonical_json(exported["data"])
                writer.writerow([_csv_cell(exported[name]) for name in EXPORT_FIELDS])
        yield buffer.getvalue()
        after = rows[-1]["seq"]
        if len(rows) < BATCH_SIZE:
            return


def audit_export(*, fmt: str, filters: Mapping[str, Any] | None = None) -> Iterator[str]:
    """The current client's events matching `filters`, oldest first, as JSONL or CSV text chunks.

    JSONL lines are each event's canonical JSON with its `prev_hash` and `hash`: an unfiltered
    export can be re-verified anywhere. CSV has a header row and `data` as JSON in one column;
    text cells that a spreadsheet would run as a formula start with a quote.
    Filters: `date_from`/`date_to` (dates, inclusive), `trace_id`, `deployment_id`, `effect`, `kind`.
    The format is checked before the first chunk: an unknown one raises ApplicationError.
    """
    if fmt not in EXPORT_FORMATS:
        raise ApplicationError(f"Export as one of {', '.join(EXPORT_FORMATS)}.", field="fmt")
    return _export_chunks(fmt, _batch_reader(filters))


def audit_export_client(
    *, client: Client, fmt: str, filters: Mapping[str, Any] | None = None
) -> Iterator[str]:
    """`audit_export` of the client's events; each batch is read inside its schema, so the chunks can be
    streamed after the view returned without leaving the connection in that schema."""
    if fmt not in EXPORT_FORMATS:
        raise ApplicationError(f"Export as one of {', '.join(EXPORT_FORMATS)}.", field="fmt")
    _ready(client)
    with tenant_context(client):
        read_current = _batch_reader(filters)

    def read(after_seq: int) -> list[dict[str, Any]]:
        with tenant_context(client):
            return read_current(after_seq)

    return _export_chunks(fmt, read)


# --- Per-client counts for the vendor ------------------------------------------------------------


def audit_counts_collect(*, client: Client, since: date) -> int:
    """Count the client's events per (UTC day, kind) from `since` and store the counts in the public schema.

    Idempotent: each count is set, not added to, so running it again gives the same rows. Returns
    how many (day, kind) counts were written. Only counts leave the client's schema.
    """
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    with tenant_context(_ready(client)):
        counts = list(
            AuditEvent.objects.filter(created_at__gte=start)
            .annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values("day", "kind")
            .annotate(n=Count("pk"))
            .order_by()
        )
    ClientAuditCount.objects.bulk_create(
        [ClientAuditCount(client=client, day=row["day"], kind=row["kind"], count=row["n"]) for row in counts],
        update_conflicts=True,
        unique_fields=["client", "day", "kind"],
        update_fields=["count", "updated_at"],
    )
    return len(counts)


def audit_counts_aggregate(*, days: int = 2, today: date | None = None) -> dict[str, int]:
    """Refresh every ready client's per-day counts for the last `days` UTC days (today included).

    Runs in the public schema and enters each client's schema itself; one client failing is
    logged and does not stop the others. Returns {client slug: counts written}.
    """
    today = today or timezone.now().astimezone(UTC).date()
    since = today - timedelta(days=max(days, 1) - 1)
    written: dict[str, int] = {}
    for client in Client.objects.filter(status=Client.Status.READY).order_by("pk"):
        try:
            written[client.slug] = audit_counts_collect(client=client, since=since)
        except Exception:  # a broken schema must not hide every other client's counts
            logger.exception("Counting the audit events of client %s failed", client.slug)
    return written
