"""Celery tasks for rollouts: they run in the public schema and enter each client's schema themselves.

Both are idempotent and resumable: a re-run (a redelivered message after a
worker stopped, or `rollout_resume`) only visits the targets not yet done.
"""

import logging

from celery import shared_task

from apps.accounts.models import User
from apps.factory.models import Rollout

from . import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rollout_run(rollout_id: int) -> str:
    """Run a rollout's pending targets; returns the rollout's status."""
    rollout = Rollout.objects.filter(pk=rollout_id).first()
    if rollout is None:
        logger.warning("Rollout %s no longer exists; nothing to run.", rollout_id)
        return "missing"
    return services.rollout_execute(rollout=rollout).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def rollout_revert_run(rollout_id: int, actor_id: int | None = None) -> str:
    """Revert a rollout's moved targets; returns the rollout's status."""
    rollout = Rollout.objects.filter(pk=rollout_id).first()
    if rollout is None:
        logger.warning("Rollout %s no longer exists; nothing to revert.", rollout_id)
        return "missing"
    actor = User.objects.filter(pk=actor_id).first() if actor_id is not None else None
    return services.rollout_revert_execute(rollout=rollout, actor=actor).status
