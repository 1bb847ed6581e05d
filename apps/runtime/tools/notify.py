"""notify.email (Django's mail backend) and notify.webhook (through the outbound client)."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from .. import outbound
from . import ToolContext, ToolError, requires_permit

MAX_RECIPIENTS = 20
MAX_SUBJECT = 200
MAX_BODY = 50_000


def _recipients(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ToolError("notify.email needs `to`: an address or a list of addresses.")
    if len(items) > MAX_RECIPIENTS:
        raise ToolError(f"notify.email sends to at most {MAX_RECIPIENTS} addresses.")
    addresses = []
    for item in items:
        address = str(item).strip()
        try:
            validate_email(address)
        except ValidationError:
            raise ToolError(f"Not an e-mail address: {address[:100]!r}.") from None
        addresses.append(address)
    return addresses


@requires_permit
def email(action: dict, ctx: ToolContext) -> dict:
    params = action.get("params") or {}
    to = _recipients(params.get("to"))
    subject = str(params.get("subject") or "").replace("\n", " ").strip()[:MAX_SUBJECT]
    body = str(params.get("body") or "")
    if not subject:
        raise ToolError("notify.email needs a subject.")
    if len(body) > MAX_BODY:
        raise ToolError(f"The message is longer than {MAX_BODY:,} characters.")
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers={"X-Triplane-Idempotency-Key": ctx.idempotency_key},
    )
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise ToolError(f"The mail server refused the message ({type(exc).__name__}).") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        # The server may have taken the message before the connection broke.
        raise ToolError(
            f"The mail server could not be reached or failed ({type(exc).__name__}).",
            transient=True,
            maybe_applied=isinstance(exc, smtplib.SMTPServerDisconnected | socket.timeout),
        ) from None
    return {"sent_to": to, "subject": subject}


def _call(ctx: ToolContext, method: str, url: Any, **kwargs: Any) -> dict:
    if not isinstance(url, str) or not url:
        raise ToolError("A URL is needed.")
    try:
        response = outbound.request(
            outbound.policy_for_client(ctx.client),
            method,
            url,
            idempotency_key=ctx.idempotency_key,
            **kwargs,
        )
    except outbound.OutboundRefused as exc:
        raise ToolError(str(exc)) from None
    except outbound.OutboundFailed as exc:
        raise ToolError(
            str(exc), transient=exc.transient, maybe_applied=getattr(exc, "maybe_sent", exc.transient)
        ) from None
    return {"status": response.status, "body": response.body, "url": response.final_url}


@requires_permit
def webhook(action: dict, ctx: ToolContext) -> dict:
    params = action.get("params") or {}
    payload = params.get("payload", {})
    result = _call(ctx, "POST", params.get("url"), json=payload)
    if result["status"] >= 400:
        raise ToolError(f"The webhook answered {result['status']}.", transient=result["status"] >= 500)
    return result
