"""Celery tasks of the audit trail: the per-client counts the vendor sees, refreshed every 15 minutes."""

from celery import shared_task

from . import services

# Today and yesterday (UTC): yesterday's last events may arrive after its last run.
COUNT_DAYS = 2


@shared_task(acks_late=True, reject_on_worker_lost=True)
def audit_counts_aggregate(days: int = COUNT_DAYS) -> dict[str, int]:
    """Recount every ready client's events per day and kind into the public schema (idempotent).

    Sent from beat with no tenant active, it runs in `public` and enters each client's schema itself.
    Returns {client slug: counts written}.
    """
    return services.audit_counts_aggregate(days=days)
