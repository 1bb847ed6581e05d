"""Celery tasks for tenancy: client provisioning runs here, off the request path."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def provision_client(client_id: int) -> str:
    """Clone the template schema for one client; returns the resulting status."""
    return services.client_provision(client_id=client_id).status
