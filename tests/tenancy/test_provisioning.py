"""Client provisioning: cloned from the template, asynchronous, status and errors recorded."""

import json
from unittest import mock

import pytest
import redis
from django.conf import settings
from django_tenants.utils import schema_context, schema_exists

from apps.core.exceptions import ApplicationError
from apps.tenancy import services
from apps.tenancy.models import Client, Domain


def test_world_clients_have_schemas(world):
    for client in (world.client_a, world.client_a2, world.client_b):
        assert client.status == Client.Status.READY
        assert schema_exists(client.schema_name)


def test_client_create_schedules_provisioning_after_commit(world, django_capture_on_commit_callbacks):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    with django_capture_on_commit_callbacks(execute=True):
        client = services.client_create(
            partner=world.partner_a, name="Umbrella", slug="umbrella", actor=world.users["partner_a_admin"]
        )
    assert client.status == Client.Status.PROVISIONING
    assert client.schema_name == "client_umbrella"
    assert Domain.objects.get(tenant=client).domain == "umbrella.localhost"
    assert not schema_exists("client_umbrella")  # nothing created on the request path
    # One message on the real broker, for the provisioning task, to run in the public schema.
    messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    broker.delete("celery")
    assert len(messages) == 1
    headers = messages[0]["headers"]
    assert headers["task"] == "apps.tenancy.tasks.provision_client"
    assert headers["_schema_name"] == "public"
    assert headers["argsrepr"] == f"[{client.pk}]"


def test_client_provision_clones_template_and_marks_ready(world):
    client = services.client_create(
        partner=world.partner_a, name="Hooli", slug="hooli", actor=None, schedule=False
    )
    client = services.client_provision(client_id=client.pk)
    assert client.status == Client.Status.READY
    assert client.provisioned_at is not None
    with schema_context("client_hooli"):
        from auditlog.models import LogEntry

        assert LogEntry.objects.count() == 0  # the tables exist and are empty
    # Idempotent: a second run leaves it ready.
    assert services.client_provision(client_id=client.pk).status == Client.Status.READY


def test_client_provision_failure_is_recorded_and_schema_removed(world):
    client = services.client_create(
        partner=world.partner_b, name="Broken", slug="broken", actor=None, schedule=False
    )
    with mock.patch.object(Client, "create_schema", side_effect=RuntimeError("disk full\nmore detail")):
        client = services.client_provision(client_id=client.pk)
    assert client.status == Client.Status.FAILED
    assert "could not be created (RuntimeError)" in client.provisioning_error
    assert "disk full" not in client.provisioning_error  # internals go to the log, not to partners
    assert not schema_exists("client_broken")
    # A retry puts it back into provisioning.
    client = services.client_retry_provisioning(client=client, actor=None)
    assert client.status == Client.Status.PROVISIONING and client.provisioning_error == ""


@pytest.mark.parametrize("slug", ["ab", "Bad_Slug", "-lead", "trail-", "www", "template"])
def test_client_create_rejects_bad_slugs(world, slug):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.client_create(partner=world.partner_a, name="X", slug=slug, actor=None, schedule=False)
    assert not Client.objects.filter(name="X").exists()


def test_client_create_refuses_duplicate_slug_and_inactive_partner(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.client_create(
            partner=world.partner_b, name="Dup", slug="tw-alpha", actor=None, schedule=False
        )
    services.partner_set_active(partner=world.partner_b, is_active=False, actor=None)
    with pytest.raises(ApplicationError):
        services.client_create(partner=world.partner_b, name="Nope", slug="nope", actor=None, schedule=False)


def test_client_create_refuses_a_name_whose_schema_still_exists(world):
    from apps.tenancy.schemas import create_schema

    create_schema("client_left_over")
    with pytest.raises(ApplicationError, match="earlier client project"):
        services.client_create(
            partner=world.partner_a, name="New", slug="left-over", actor=None, schedule=False
        )


def test_provision_never_adopts_a_schema_it_did_not_create(world):
    from apps.tenancy.schemas import create_schema

    client = services.client_create(
        partner=world.partner_a, name="Heir", slug="heir", actor=None, schedule=False
    )
    create_schema("client_heir")  # e.g. left by a deleted client of the same name
    client = services.client_provision(client_id=client.pk)
    assert client.status == Client.Status.FAILED
    assert "already exists" in client.provisioning_error
    assert schema_exists("client_heir")  # someone else's schema is not dropped either


def test_provision_rerun_keeps_its_own_schema(world):
    client = services.client_create(
        partner=world.partner_a, name="Again", slug="again", actor=None, schedule=False
    )
    client = services.client_provision(client_id=client.pk)
    Client.objects.filter(pk=client.pk).update(
        status=Client.Status.PROVISIONING
    )  # as after a lost status write
    assert services.client_provision(client_id=client.pk).status == Client.Status.READY
