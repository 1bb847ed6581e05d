"""Reads of the audit trail: a client's events (filtered, paged) and the per-client counts the vendor sees.

`audit_event_list` works in the current schema (callers inside the client's `tenant_context`);
`audit_event_page` switches into the client and returns evaluated rows. The counts are public rows
(`tenancy.ClientAuditCount`): no event contents ever leave a client's schema.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.tenancy.models import Client, ClientAuditCount

from .models import AuditEvent

AUDIT_FILTERS = ("date_from", "date_to", "trace_id", "deployment_id", "effect", "kind")
EFFECTS = ("allow", "deny", "require_approval", "redact")
# The kinds the product writes (a filter suggestion list; kinds are free text, so others may appear).
KNOWN_KINDS = (
    "task.created",
    "task.finished",
    "decision",
    "approval.requested",
    "approval.approved",
    "approval.rejected",
    "approval.expired",
    "approval.escalated",
    "tool.executed",
    "tool.failed",
)


def _start_of(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone (the one pages show times in)."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def audit_event_list(*, filters: Mapping[str, Any] | None = None) -> QuerySet[AuditEvent]:
    """The current client's events, newest first, filtered (empty values and unknown keys ignored).

    `date_from`/`date_to` are dates, both inclusive; `kind` is exact, or a family with `.*`
    (`approval.*`); `trace_id`, `deployment_id` and `effect` are exact.
    """
    given = {k: v for k, v in (filters or {}).items() if k in AUDIT_FILTERS and v not in (None, "")}
    queryset = AuditEvent.objects.order_by("-seq")
    if "date_from" in given:
        queryset = queryset.filter(created_at__gte=_start_of(given["date_from"]))
    if "date_to" in given:
        queryset = queryset.filter(created_at__lt=_start_of(given["date_to"] + timedelta(days=1)))
    if "trace_id" in given:
        queryset = queryset.filter(trace_id=given["trace_id"])
    if "deployment_id" in given:
        queryset = queryset.filter(deployment_id=given["deployment_id"])
    if "effect" in given:
        queryset = queryset.filter(effect=given["effect"])
    if "kind" in given:
        kind = str(given["kind"])
        if kind.endswith(".*"):
            queryset = queryset.filter(kind__startswith=kind[:-1])
        else:
            queryset = queryset.filter(kind=kind)
    return queryset


def audit_event_page(
    *,
    client: Client,
    filters: Mapping[str, Any] | None = None,
    page: str | int | None = None,
    per_page: int = 50,
) -> Page:
    """One page of the client's events, newest first, filtered like `audit_event_list`.

    Rows and total are read inside the client's schema; junk or out-of-range page numbers fall back
    to the first or last page.
    """
    with tenant_context(client):
        result = Paginator(audit_event_list(filters=filters), per_page).get_page(page)
        result.object_list = list(result.object_list)
    return result


def audit_event_window(
    *, client: Client, filters: Mapping[str, Any] | None = None, start: int = 0, stop: int = 0
) -> list[AuditEvent]:
    """Events [start:stop] of the filtered list (newest first), read in the client's schema."""
    with tenant_context(client):
        return list(audit_event_list(filters=filters)[start:stop])


def audit_event_count(*, client: Client, filters: Mapping[str, Any] | None = None) -> int:
    """How many of the client's events match `filters`."""
    with tenant_context(client):
        return audit_event_list(filters=filters).count()


# --- The vendor's view: counts only ------------------------------------------------------------


@dataclass
class ClientDayCounts:
    """One client's events on one day: the total and the count per kind (kinds sorted)."""

    client: Client
    day: date
    total: int = 0
    kinds: list[tuple[str, int]] = field(default_factory=list)


def audit_count_days(*, since: date, client_id: int | None = None) -> list[ClientDayCounts]:
    """Per client and day since `since` (newest day first, then client name): the event counts by kind.

    Read from the public schema's `ClientAuditCount` rows only.
    """
    rows = ClientAuditCount.objects.filter(day__gte=since).select_related("client")
    if client_id is not None:
        rows = rows.filter(client_id=client_id)
    grouped: dict[tuple[int, date], ClientDayCounts] = {}
    kinds: dict[tuple[int, date], dict[str, int]] = defaultdict(dict)
    for row in rows:
        key = (row.client_id, row.day)
        entry = grouped.setdefault(key, ClientDayCounts(client=row.client, day=row.day))
        entry.total += row.count
        kinds[key][row.kind] = row.count
    for key, entry in grouped.items():
        entry.kinds = sorted(kinds[key].items())
    return sorted(grouped.values(), key=lambda e: (-e.day.toordinal(), e.client.name, e.client.pk))


def audit_count_totals(*, since: date, client_id: int | None = None) -> list[tuple[str, int]]:
    """Events per kind over every client (or one) since `since`, most frequent first."""
    totals: dict[str, int] = defaultdict(int)
    rows = ClientAuditCount.objects.filter(day__gte=since)
    if client_id is not None:
        rows = rows.filter(client_id=client_id)
    for kind, count in rows.values_list("kind", "count"):
        totals[kind] += count
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))
