"""Management portal: a client's governance settings (what rules read as `tenant.*`) and evaluation keys.

Partner admins and the engineers assigned to the client use these pages; `access_client`
answers 404 for anyone else (another partner's team, an unassigned engineer).
Evaluation keys let an execution plane outside the control plane ask for one
deployment's decisions: the full key is shown once, on the page that answers its
creation, and is never stored, put in a URL, a message or the session.
"""

from __future__ import annotations

import json
import re
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from apps.accounts.access import access_client
from apps.accounts.decorators import partner_portal
from apps.core.exceptions import ApplicationError
from apps.deployments import selectors as deployment_selectors
from apps.deployments.models import Deployment
from apps.governance import selectors as governance_selectors
from apps.governance import services as governance_services
from apps.tenancy import services as tenancy_services
from apps.tenancy.models import Client, validate_attributes, validate_host_list, validate_timezone

from .forms import ServiceValidatedForm
from .views import PartnerRequest, _crumbs, _deployment_crumbs, _render, _workspace_client

TEMPLATES = "portals/management/client_governance"
_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


# --- Forms ----------------------------------------------------------------------------------


def _host_lines(value: str) -> list[str]:
    """Host names one per line (commas and spaces also separate them), lowercased, without repeats."""
    hosts: dict[str, None] = {}
    for item in re.split(r"[\s,]+", value or ""):
        if item:
            hosts.setdefault(item.lower().rstrip("."), None)
    return list(hosts)


def attribute_value(text: str) -> Any:
    """One attribute value as written: true/false, a number, "quoted text", or plain text."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER_RE.match(text):
        return int(text)
    if _NUMBER_RE.match(text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def attribute_text(value: Any) -> str:
    """How a stored value is written back, so that reading it again gives the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if attribute_value(text) != text else text


def parse_attributes(text: str) -> dict:
    """`name = value` lines (blank lines and # comments skipped), or one JSON object.

    Raises ValidationError naming the line that is wrong.
    """
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(data, dict):
            raise ValidationError("Give one JSON object of names to values.")
        return data
    attributes: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValidationError(f"Line {number}: write name = value (e.g. cost_center = FIN-042).")
        if name in attributes:
            raise ValidationError(f"Line {number}: '{name}' is given twice.")
        attributes[name] = attribute_value(value)
    return attributes


class ClientGovernanceSettingsForm(ServiceValidatedForm):
    """What governance rules read as `tenant.*`, set by the client's partner team."""

    timezone = forms.ChoiceField(
        label="Time zone",
        help_text="Rules read time.hour, time.weekday and time.business_hours in it (tenant.timezone).",
    )
    jurisdiction = forms.CharField(
        required=False,
        max_length=40,
        label="Jurisdiction",
        help_text="Where the client's data is governed, e.g. EU, US-CA, UK (tenant.jurisdiction).",
    )
    own_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="Own domains",
        help_text="One per line, e.g. acme.com: mail to any other domain leaves the client (tenant.domains).",
    )
    allowed_hosts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="Allowed hosts",
        help_text="One per line, e.g. api.acme.com: outside calls to these need no approval "
        "(tenant.allowed_hosts).",
    )
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "font-monospace"}),
        label="Custom attributes",
        help_text='One "name = value" per line, or a JSON object. true/false and numbers are read as '
        'such; put text that looks like one in quotes ("42"). Rules read them as tenant.attributes.name.',
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(name, name) for name in sorted(available_timezones())]  # type: ignore[attr-defined]

    @staticmethod
    def initial_for(client: Client) -> dict:
        return {
            "timezone": client.timezone,
            "jurisdiction": client.jurisdiction,
            "own_domains": "\n".join(client.own_domains),
            "allowed_hosts": "\n".join(client.allowed_hosts),
            "attributes": "\n".join(f"{k} = {attribute_text(v)}" for k, v in client.attributes.items()),
        }

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"]
        validate_timezone(value)
        return value

    def clean_own_domains(self) -> list[str]:
        hosts = _host_lines(self.cleaned_data["own_domains"])
        validate_host_list(hosts)
        return hosts

    def clean_allowed_hosts(self) -> list[str]:
        hosts = _host_lines(self.cleaned_data["allowed_hosts"])
        validate_host_list(hosts)
        return hosts

    def clean_attributes(self) -> dict:
        attributes = parse_attributes(self.cleaned_data["attributes"])
        validate_attributes(attributes)
        return attributes


class EvaluationKeyForm(ServiceValidatedForm):
    name = forms.CharField(
        max_length=80,
        label="Name",
        help_text="Name it after the system that will use it, e.g. “Acme on-prem worker”.",
    )


# --- Governance settings of a client ------------------------------------------------------


@partner_portal()
@require_http_methods(["GET", "POST"])
def client_governance_settings(request: PartnerRequest, pk: int) -> HttpResponse:
    """Time zone, jurisdiction, domains, allowed hosts and custom attributes rules read as `tenant.*`."""
    client = access_client(request.user, pk)
    form = ClientGovernanceSettingsForm(
        request.POST if request.method == "POST" else None,
        initial=ClientGovernanceSettingsForm.initial_for(client),
    )
    if request.method == "POST" and form.is_valid():
        try:
            tenancy_services.client_governance_settings_update(
                client=client, actor=request.user, **form.cleaned_data
            )
        except (ValidationError, ApplicationError) as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"Governance settings of “{client.name}” saved.")
            return redirect("management:client_detail", pk=client.pk)
    context = {
        "client": client,
        "form": form,
        "crumbs": _crumbs(
            (client.name, reverse("management:client_detail", args=[client.pk])),
            ("Governance settings", None),
        ),
    }
    return _render(request, f"{TEMPLATES}/settings_form.html", context)


# --- Evaluation keys of a deployment --------------------------------------------------------


def _deployment(request: PartnerRequest, pk: int, deployment_id: int) -> tuple[Client, Deployment]:
    client = _workspace_client(request, pk)
    return client, deployment_selectors.deployment_get(client=client, pk=deployment_id)


def _key_crumbs(client: Client, deployment: Deployment, *trail: tuple[str, str | None]) -> list:
    detail_url = reverse("management:deployment_detail", args=[client.pk, deployment.pk])
    keys_url = reverse("management:evaluation_key_list", args=[client.pk, deployment.pk])
    return _deployment_crumbs(client, (deployment.name, detail_url), ("Evaluation keys", keys_url), *trail)


@partner_portal()
@require_safe
def evaluation_key_list(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """The deployment's keys; an htmx request gets the list alone (the deployment page's card loads it)."""
    client, deployment = _deployment(request, pk, deployment_id)
    context = {
        "client": client,
        "deployment": deployment,
        "keys": governance_selectors.evaluation_keys(client=client, deployment=deployment),
        "form": EvaluationKeyForm(),
        "can_create": deployment.status != Deployment.Status.RETIRED,
        "crumbs": [*_key_crumbs(client, deployment)[:-1], ("Evaluation keys", None)],
    }
    return _render(request, f"{TEMPLATES}/evaluation_key_list.html", context, partial="keys")


@partner_portal()
@require_http_methods(["GET", "POST"])
def evaluation_key_create(request: PartnerRequest, pk: int, deployment_id: int) -> HttpResponse:
    """Make a key; the answer to the POST is the only page that ever shows the full key."""
    client, deployment = _deployment(request, pk, deployment_id)
    form = EvaluationKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = governance_services.evaluation_key_create(
                client=client, deployment=deployment, name=form.cleaned_data["name"], actor=request.user
            )
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            context = {
                "client": client,
                "deployment": deployment,
                "key": key,
                "secret": secret,
                "crumbs": _key_crumbs(client, deployment, ("New key", None)),
            }
            response = _render(request, f"{TEMPLATES}/evaluation_key_created.html", context)
            # The secret is in this answer only: no cache, no history copy, no referrer to pass it on.
            response["Cache-Control"] = "no-store"
            response["Referrer-Policy"] = "no-referrer"
            return response
    context = {
        "client": client,
        "deployment": deployment,
        "form": form,
        "crumbs": _key_crumbs(client, deployment, ("New key", None)),
    }
    return _render(request, f"{TEMPLATES}/evaluation_key_form.html", context)


@partner_portal()
@require_http_methods(["GET", "POST"])
def evaluation_key_revoke(request: PartnerRequest, pk: int, deployment_id: int, key_id: int) -> HttpResponse:
    """Revoke a key for good, after a confirmation page."""
    client, deployment = _deployment(request, pk, deployment_id)
    key = governance_selectors.evaluation_key_get(client=client, deployment=deployment, pk=key_id)
    keys_url = reverse("management:evaluation_key_list", args=[client.pk, deployment.pk])
    if request.method == "POST":
        if key.revoked_at is not None:
            messages.info(request, f"The key “{key.name}” was already revoked.")
        else:
            try:
                governance_services.evaluation_key_revoke(client=client, key=key, actor=request.user)
            except ApplicationError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"The key “{key.name}” is revoked; it stopped working at once.")
        return redirect(keys_url)
    context = {
        "client": client,
        "deployment": deployment,
        "key": key,
        "keys_url": keys_url,
        "crumbs": _key_crumbs(client, deployment, (f"Revoke {key.name}", None)),
    }
    return _render(request, f"{TEMPLATES}/evaluation_key_revoke.html", context)
