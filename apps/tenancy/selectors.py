"""Reads for partners and clients: change history from the audit log."""

from dataclasses import dataclass
from datetime import datetime

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django_tenants.utils import schema_context

from .models import Client, Partner

HISTORY_LIMIT = 100


@dataclass(frozen=True)
class HistoryEntry:
    """One change, as shown in a history table."""

    timestamp: datetime
    actor: object | None
    action_label: str
    object_label: str
    changes: dict


def _entries(queryset, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    rows = queryset.select_related("actor", "content_type").order_by("-timestamp", "-pk")[:limit]
    return [
        HistoryEntry(
            timestamp=row.timestamp,
            actor=row.actor,
            action_label=row.get_action_display(),
            object_label=f"{row.content_type.name} “{row.object_repr}”",
            changes=row.changes_dict or {},
        )
        for row in rows
    ]


def partner_history(*, partner: Partner) -> list[HistoryEntry]:
    """Changes to the partner, its team memberships and its client projects (newest first)."""
    partner_type = ContentType.objects.get_for_model(Partner)
    return _entries(
        LogEntry.objects.filter(
            Q(content_type=partner_type, object_pk=str(partner.pk))
            | Q(additional_data__partner_id=partner.pk)
        )
    )


def client_history(*, client: Client, include_client_log: bool) -> list[HistoryEntry]:
    """Changes to the client project, its domains and users, newest first.

    Changes made on the client's own host are logged in the client's schema
    (the client keeps its own log) and are included only for its delivery
    partner (`include_client_log`); the rest are in the public schema.
    """
    client_type = ContentType.objects.get_for_model(Client)
    public = _entries(
        LogEntry.objects.filter(
            Q(content_type=client_type, object_pk=str(client.pk)) | Q(additional_data__client_id=client.pk)
        )
    )
    own: list[HistoryEntry] = []
    if include_client_log and client.is_ready:
        with schema_context(client.schema_name):
            own = _entries(LogEntry.objects.all())
    merged = sorted(public + own, key=lambda entry: entry.timestamp, reverse=True)
    return merged[:HISTORY_LIMIT]


def client_activity(*, client: Client, limit: int = 10) -> list[HistoryEntry]:
    """The client's own change log (kept in its schema), newest first: what its dashboard shows."""
    if not client.is_ready:
        return []
    with schema_context(client.schema_name):
        return _entries(LogEntry.objects.all(), limit=limit)
