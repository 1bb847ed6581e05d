"""Celery tasks of the runtime. Each runs in the client schema it was sent from (tenant-schemas-celery)."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.core.db import tenant_connection
from apps.tenancy.models import Client

from . import services
from .gateway import RetryLater

log = logging.getLogger(__name__)
# Transient tool failures are retried with exponential backoff: 2, 4, 8, 16, 32 s.
MAX_RETRIES = 5


def _client() -> Client:
    tenant = getattr(tenant_connection(), "tenant", None)
    if isinstance(tenant, Client):
        return tenant
    return Client.objects.get(schema_name=tenant_connection().schema_name)


@shared_task(
    bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES, soft_time_limit=600
)
def advance_task(self, task_id: int) -> str:
    """Advance one task as far as it goes; safe to receive twice (the task lock and step states decide)."""
    client = _client()
    try:
        task = services.task_advance(client=client, task_id=task_id)
    except services.TaskBusy:
        return "busy"
    except RetryLater as exc:
        if self.request.retries >= MAX_RETRIES:
            services.task_give_up(client=client, task_id=task_id, reason=exc.message)
            return "failed"
        raise self.retry(countdown=2 ** (self.request.retries + 1)) from None
    return task.status


@shared_task(acks_late=True)
def runtime_sweep() -> dict:
    """Every minute, in every ready client: expire and escalate approvals, re-queue tasks no worker holds,
    start scheduled tasks that are due."""
    totals = {"expired": 0, "escalated": 0, "resumed": 0, "scheduled": 0}
    for client in Client.objects.filter(status=Client.Status.READY):
        try:
            totals["expired"] += services.approvals_expire(client=client)
            totals["escalated"] += services.approvals_escalate(client=client)
            totals["resumed"] += services.tasks_resume_stalled(client=client)
            totals["scheduled"] += services.schedules_run_due(client=client)
        except Exception:  # one client's trouble must not stop the sweep of the others
            log.exception("runtime sweep failed for client %s", client.slug)
    return totals
