"""Secrets at rest: MultiFernet round trip and rotation, the encrypted field, the rotation command,
and the places a secret must never appear (the column, serialisation, forms, the change log)."""

import io
import os
import subprocess
import sys

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from cryptography.fernet import Fernet
from django import forms
from django.conf import settings
from django.core import serializers
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from apps.connectors import services
from apps.connectors.models import DataSource
from apps.core import crypto
from apps.core.fields import check_secrets_not_audited

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
SECRET = "Tr1plane-db-secret!"


def stored_token(client, source) -> str:
    """The password column as the database holds it."""
    with tenant_context(client), connection.cursor() as cursor:
        cursor.execute("SELECT password FROM connectors_datasource WHERE id = %s", [source.pk])
        return cursor.fetchone()[0]


def make_source(client, key="crm", password=SECRET, actor=None) -> DataSource:
    return services.data_source_create(
        client=client,
        name=f"CRM {key}",
        key=key,
        engine="postgresql",
        host="db.client.example",
        database="crm",
        username="agent",
        password=password,
        actor=actor,
    )


def test_round_trip_and_randomised_tokens():
    token = crypto.encrypt(SECRET)
    assert SECRET not in token
    assert crypto.decrypt(token) == SECRET
    assert crypto.encrypt(SECRET) != token  # a fresh IV each time
    assert crypto.decrypt(crypto.encrypt("")) == ""
    assert crypto.decrypt(crypto.encrypt("ünïcode ✓")) == "ünïcode ✓"


def test_rotation_with_two_keys():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        token = crypto.encrypt(SECRET)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert crypto.decrypt(token) == SECRET  # the old key still opens it
        assert not crypto.is_current(token)
        rotated = crypto.rotate(token)
        assert crypto.is_current(rotated)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert crypto.decrypt(rotated) == SECRET
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt(token)  # the old token needs the dropped key


def test_a_tampered_or_foreign_token_does_not_decrypt():
    token = crypto.encrypt(SECRET)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token[:-4] + "AAAA")
    with pytest.raises(crypto.DecryptionError), override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        crypto.decrypt(token)


def test_a_malformed_key_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(FIELD_ENCRYPTION_KEYS=["not-a-key"]), pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x")


def test_the_password_column_holds_a_token_and_the_model_the_text(world):
    source = make_source(world.client_a)
    token = stored_token(world.client_a, source)
    assert token != SECRET and SECRET not in token
    assert crypto.decrypt(token) == SECRET
    with tenant_context(world.client_a):
        assert DataSource.objects.get(pk=source.pk).password == SECRET
        assert DataSource.objects.filter(password="").count() == 0


def test_the_secret_is_not_serialised_rendered_or_logged(world):
    source = make_source(world.client_a, actor=world.users["partner_a_engineer"])
    services.data_source_update(
        client=world.client_a, source=source, password="An0ther-secret", name="CRM 2", actor=None
    )
    with tenant_context(world.client_a):
        fresh = DataSource.objects.get(pk=source.pk)
        dumped = serializers.serialize("json", [fresh])
        logged = [str(entry.changes) for entry in LogEntry.objects.get_for_object(fresh)]
    assert SECRET not in dumped and "An0ther-secret" not in dumped
    assert stored_token(world.client_a, source) not in dumped
    assert logged, "the change log records the data source"
    assert all("password" not in text and SECRET not in text and "An0ther" not in text for text in logged)
    assert any("CRM 2" in text for text in logged)
    form = forms.modelform_factory(DataSource, fields=["password"])(instance=fresh)
    assert "An0ther-secret" not in form.as_p()
    assert 'type="password"' in form.as_p()


def test_the_system_check_refuses_an_audited_secret():
    assert check_secrets_not_audited() == []
    original = auditlog.get_model_fields(DataSource)
    auditlog.unregister(DataSource)
    try:
        auditlog.register(DataSource)
        errors = check_secrets_not_audited()
        assert [error.id for error in errors] == ["core.E101"]
        assert "connectors.DataSource.password" in errors[0].msg
    finally:
        auditlog.unregister(DataSource)
        auditlog.register(DataSource, exclude_fields=original["exclude_fields"])
    assert check_secrets_not_audited() == []


def test_the_rotation_command_re_encrypts_every_client_schema(world):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        a = make_source(world.client_a, key="crm-a")
        b = make_source(world.client_b, key="crm-b", password="b-secret")
        blank = make_source(world.client_a, key="no-password", password="")
    old_a, old_b = stored_token(world.client_a, a), stored_token(world.client_b, b)
    assert old_b != old_a
    assert stored_token(world.client_a, blank) == ""

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        out = io.StringIO()
        call_command("rotate_encryption_keys", "--dry-run", stdout=out)
        assert "2 secret(s) would be re-encrypted" in out.getvalue()
        assert stored_token(world.client_a, a) == old_a
        out = io.StringIO()
        call_command("rotate_encryption_keys", stdout=out)
        text = out.getvalue()
        assert f"{world.client_a.schema_name}: connectors.DataSource.password: 1 re-encrypted" in text
        assert f"{world.client_b.schema_name}: connectors.DataSource.password: 1 re-encrypted" in text
        assert "2 secret(s) re-encrypted, 0 already used the first key" in text
        out = io.StringIO()
        call_command("rotate_encryption_keys", stdout=out)
        assert "0 secret(s) re-encrypted, 2 already used the first key" in out.getvalue()

    assert stored_token(world.client_a, a) != old_a
    assert stored_token(world.client_b, b) != old_b
    assert stored_token(world.client_a, blank) == ""
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):  # the old key can go now
        with tenant_context(world.client_a):
            assert DataSource.objects.get(pk=a.pk).password == SECRET
        with tenant_context(world.client_b):
            assert DataSource.objects.get(pk=b.pk).password == "b-secret"


def test_the_rotation_command_fails_on_a_secret_no_key_opens(world):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        source = make_source(world.client_a, key="lost")
    token = stored_token(world.client_a, source)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        err = io.StringIO()
        with pytest.raises(CommandError, match="1 secret"):
            call_command("rotate_encryption_keys", stdout=io.StringIO(), stderr=err)
    assert "cannot be decrypted" in err.getvalue()
    assert stored_token(world.client_a, source) == token  # left as it was


def _settings_process(**env) -> subprocess.CompletedProcess:
    code = "from django.conf import settings; print(len(settings.FIELD_ENCRYPTION_KEYS))"
    keep = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "TRIPLANE_ENV")}
    keep.pop("FIELD_ENCRYPTION_KEYS", None)
    keep.update(DJANGO_SETTINGS_MODULE="config.settings.base", **env)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=keep,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_production_requires_its_own_encryption_keys():
    production = {
        "TRIPLANE_ENV": "production",
        "DEBUG": "false",
        "SECRET_KEY": "a-real-secret-for-this-test-1234",
    }
    result = _settings_process(**production)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set in production" in result.stderr
    result = _settings_process(**production, FIELD_ENCRYPTION_KEYS=f"{NEW},{OLD}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2"]
    # Development derives one from SECRET_KEY.
    result = _settings_process(DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1"]
