"""E-mail to approvers: a held action waits for them, or an approval was escalated to client admins.

Links carry a signature of the approval id (django.core.signing), so a link that was tampered with
is refused; the person still signs in, and only an approver of the right role can decide.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from apps.accounts.models import ClientMembership
from apps.tenancy.models import Client

from .models import Approval

LINK_SALT = "triplane.runtime.approval-link"


def client_base_url(client: Client) -> str:
    port = f":{settings.PUBLIC_URL_PORT}" if settings.PUBLIC_URL_PORT else ""
    return f"{settings.PUBLIC_URL_SCHEME}://{client.primary_host}{port}"


def approval_link(*, client: Client, approval: Approval) -> str:
    signature = signing.dumps(approval.pk, salt=LINK_SALT)
    return f"{client_base_url(client)}/approvals/{approval.pk}/?s={signature}"


def approval_link_valid(*, approval_id: int, signature: str) -> bool:
    try:
        return signing.loads(signature, salt=LINK_SALT, max_age=60 * 60 * 24 * 31) == approval_id
    except signing.BadSignature:
        return False


def approvers_of(*, client: Client, role: str) -> list[str]:
    roles = ["client_admin"] if role == "client_admin" else ["client_admin", role]
    return list(
        ClientMembership.objects.filter(client=client, role__in=roles, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


def approval_notify(*, client: Client, approval: Approval, escalated: bool = False) -> None:
    """Mail the approvers (on commit, so a rolled-back hold never reaches anyone)."""
    recipients = approvers_of(client=client, role="client_admin" if escalated else approval.approver_role)
    if not recipients:
        return
    step = approval.step
    context = {
        "client": client,
        "approval": approval,
        "step": step,
        "deployment": step.task.deployment,
        "link": approval_link(client=client, approval=approval),
        "escalated": escalated,
    }
    subject = render_to_string("emails/approval_subject.txt", context).strip()
    body = render_to_string("emails/approval.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, recipients, fail_silently=True))
