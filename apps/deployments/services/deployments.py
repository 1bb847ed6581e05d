"""Writes for a client's deployments: the approval state machine and version changes.

Every service takes the client and switches into its schema itself
(`tenant_context`), so callers on the platform host (public schema) and on the
client's host call them the same way. Each runs in one transaction and locks
the deployment row; every change writes a DeploymentTransition.

Callers check that the actor may work on the client (accounts.access); these
services enforce the product's own rules: the state machine, published
versions of the right variant, and maker-checker on approvals (the approver is
a client admin of this client or a vendor platform admin, never the person
who asked).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import tenant_context

from apps.accounts.access import is_platform_admin
from apps.accounts.models import ClientMembership, ClientRole, User
from apps.core.exceptions import ApplicationError
from apps.factory.models import AgentVariant, AgentVersion, Rollout
from apps.tenancy.models import Client

from ..models import Deployment, DeploymentTransition
from ..selectors import SCHEMA_ATTR, mark_client

Status = Deployment.Status


class VersionMovedError(ApplicationError):
    """The deployment's pin changed between reading it and locking it (see `deployment_change_version`)."""


# action → (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({Status.DRAFT}), Status.SUBMITTED),
    "approve": (frozenset({Status.SUBMITTED}), Status.APPROVED),
    "reject": (frozenset({Status.SUBMITTED}), Status.REJECTED),
    "revise": (frozenset({Status.REJECTED}), Status.DRAFT),
    "deploy": (frozenset({Status.APPROVED}), Status.DEPLOYED),
    "pause": (frozenset({Status.DEPLOYED}), Status.PAUSED),
    "resume": (frozenset({Status.PAUSED}), Status.DEPLOYED),
    "retire": (frozenset({Status.DEPLOYED, Status.PAUSED}), Status.RETIRED),
}
# Upgrades and rollbacks apply to running agents only (a paused one keeps its place).
VERSION_CHANGE_STATUSES = frozenset({Status.DEPLOYED, Status.PAUSED})

# Actions recorded in DeploymentTransition.action besides the TRANSITIONS keys.
ACTION_CREATE = "create"
ACTION_EDIT = "edit"
ACTION_UPGRADE = "upgrade"
ACTION_ROLLBACK = "rollback"
ACTION_CHANGE_REQUESTED = "version_change_requested"
ACTION_CHANGE_APPROVED = "version_change_approved"
ACTION_CHANGE_REJECTED = "version_change_rejected"
ACTION_CHANGE_WITHDRAWN = "version_change_withdrawn"

_VERBS = {
    "edit": "edit",
    "submit": "submit",
    "approve": "approve",
    "reject": "reject",
    "revise": "revise",
    "deploy": "deploy",
    "pause": "pause",
    "resume": "resume",
    "retire": "retire",
    "change_version": "change the version of",
    "approve_change": "approve a version change of",
    "reject_change": "reject a version change of",
}


# --- Helpers ------------------------------------------------------------------------


@contextmanager
def _in_client(client: Client) -> Iterator[None]:
    """The client's schema and one transaction (a savepoint when nested)."""
    if client.status != Client.Status.READY:
        raise ApplicationError(f"{client.name} is not ready yet ({client.get_status_display().lower()}).")
    with tenant_context(client), transaction.atomic():
        yield


def _lock(client: Client, deployment: Deployment) -> Deployment:
    """The deployment's row, locked for this transaction and read fresh."""
    schema = getattr(deployment, SCHEMA_ATTR, None)
    if schema is not None and schema != client.schema_name:
        raise ApplicationError("This deployment belongs to another client project.")
    current = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("variant", "version", "pending_version")
        .filter(pk=deployment.pk)
        .first()
    )
    if current is None:
        raise ApplicationError("This deployment no longer exists.")
    return mark_client(current, client)


def _sync(stale: Deployment, fresh: Deployment) -> None:
    """Bring the caller's instance up to date with what was saved."""
    if stale is fresh:
        return
    for field in Deployment._meta.concrete_fields:
        # Setting a foreign key's id drops the stale cached object when the id changed.
        setattr(stale, field.attname, getattr(fresh, field.attname))
    setattr(stale, SCHEMA_ATTR, getattr(fresh, SCHEMA_ATTR, None))


def _illegal(action: str, deployment: Deployment, allowed: frozenset[str]) -> ApplicationError:
    allowed_labels = " or ".join(sorted(Status(s).label.lower() for s in allowed))
    return ApplicationError(
        f"Cannot {_VERBS[action]} “{deployment.name}”: it is {deployment.get_status_display().lower()}"
        f" (only a {allowed_labels} deployment allows this)."
    )


def _check_status(action: str, deployment: Deployment, allowed: frozenset[str]) -> None:
    if deployment.status not in allowed:
        raise _illegal(action, deployment, allowed)


def _published_version(version: AgentVersion, *, variant_id: int) -> AgentVersion:
    """The version as stored now, refused unless it is a published version of the variant."""
    fresh = AgentVersion.objects.select_related("variant").filter(pk=version.pk).first()
    if fresh is None or fresh.variant_id != variant_id:
        raise ApplicationError("Choose a version of this deployment's agent variant.", field="version")
    if fresh.status != AgentVersion.Status.PUBLISHED:
        raise ApplicationError(
            f"Version {fresh.version} is a draft; only published versions can be deployed.", field="version"
        )
    return fresh


def _require_reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(f"Give a reason for {what}.", field="reason")
    return reason


def _check_approver(*, client: Client, actor: User | None, maker_id: int | None, what: str) -> None:
    """Maker-checker: a client admin of this client or a vendor platform admin, not the maker."""
    if actor is None or not actor.is_active:
        raise ApplicationError(f"Only a client admin or a vendor platform admin can {what}.")
    if maker_id is not None and maker_id == actor.pk:
        raise ApplicationError(f"Maker-checker: you asked for this yourself, so someone else must {what}.")
    if is_platform_admin(actor):
        return
    is_client_admin = ClientMembership.objects.filter(
        user=actor, client_id=client.pk, role=ClientRole.CLIENT_ADMIN
    ).exists()
    if not is_client_admin:
        raise ApplicationError(f"Only a client admin of {client.name} or a vendor platform admin can {what}.")


def _save(deployment: Deployment, fields: list[str]) -> None:
    try:
        # Constraints (the unique name) are unaffected by a transition; foreign keys are checked.
        deployment.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise ApplicationError("; ".join(exc.messages)) from exc
    deployment.save(update_fields=[*fields, "updated_at"])


def _record(
    deployment: Deployment,
    *,
    action: str,
    from_status: str,
    actor: User | None,
    reason: str = "",
    from_version_id: int | None = None,
    to_version_id: int | None = None,
) -> DeploymentTransition:
    return DeploymentTransition.objects.create(
        deployment=deployment,
        action=action,
        from_status=from_status,
        to_status=deployment.status,
        from_version_id=from_version_id if from_version_id is not None else deployment.version_id,
        to_version_id=to_version_id if to_version_id is not None else deployment.version_id,
        actor=actor,
        reason=reason,
    )


def _move(
    *,
    client: Client,
    deployment: Deployment,
    action: str,
    actor: User | None,
    reason: str = "",
    check=None,
    extra_fields: dict | None = None,
) -> Deployment:
    """Apply one TRANSITIONS step: check the status, run `check(current)`, save, record."""
    allowed, to_status = TRANSITIONS[action]
    with _in_client(client):
        current = _lock(client, deployment)
        _check_status(action, current, allowed)
        if check is not None:
            check(current)
        from_status = current.status
        current.status = to_status
        for name, value in (extra_fields or {}).items():
            setattr(current, name, value)
        _save(current, ["status", *(extra_fields or {})])
        _record(current, action=action, from_status=from_status, actor=actor, reason=reason)
    _sync(deployment, current)
    return current


# --- Creating and the approval flow -------------------------------------------------


def deployment_create(
    *, client: Client, variant: AgentVariant, version: AgentVersion, name: str, actor: User | None
) -> Deployment:
    """Create a draft deployment of `variant` pinned to one of its published versions.

    The base agent (a variant without a parent) is only cloned from, never deployed.
    """
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the deployment a name.", field="name")
    # Read now: the caller's instance may be stale or not the stored row at all.
    is_base = AgentVariant.objects.filter(pk=variant.pk, parent__isnull=True).exists()
    if is_base:
        raise ApplicationError(
            f"{variant.name} is the base agent, which is not deployable; choose one of its domain variants.",
            field="variant",
        )
    with _in_client(client):
        version = _published_version(version, variant_id=variant.pk)
        if Deployment.objects.filter(name__iexact=name).exists():
            raise ApplicationError(f"{client.name} already has a deployment named “{name}”.", field="name")
        deployment = Deployment(
            name=name, variant_id=variant.pk, version=version, status=Status.DRAFT, created_by=actor
        )
        try:
            deployment.full_clean()
        except ValidationError as exc:
            raise ApplicationError("; ".join(exc.messages)) from exc
        deployment.save()
        _record(deployment, action=ACTION_CREATE, from_status="", actor=actor)
    return mark_client(deployment, client)


def deployment_update_draft(
    *, client: Client, deployment: Deployment, name: str, version: AgentVersion, actor: User | None
) -> Deployment:
    """Change a draft's name or pinned version: how a rejected and revised deployment gets fixed.

    Only a draft can be changed, to a published version of its own variant and a
    name no other deployment of the client uses. A change is recorded as an
    "edit" (from and to version; a new name is noted in the reason); saving the
    same values again changes and records nothing.
    """
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the deployment a name.", field="name")
    with _in_client(client):
        current = _lock(client, deployment)
        _check_status("edit", current, frozenset({Status.DRAFT}))
        version = _published_version(version, variant_id=current.variant_id)
        if Deployment.objects.filter(name__iexact=name).exclude(pk=current.pk).exists():
            raise ApplicationError(f"{client.name} already has a deployment named “{name}”.", field="name")
        old_name, old_version_id = current.name, current.version_id
        if (name, version.pk) != (old_name, old_version_id):
            current.name, current.version = name, version
            _save(current, ["name", "version"])
            _record(
                current,
                action=ACTION_EDIT,
                from_status=current.status,
                actor=actor,
                reason=f"Renamed from “{old_name}”." if name != old_name else "",
                from_version_id=old_version_id,
            )
    _sync(deployment, current)
    return current


def deployment_submit(
    *, client: Client, deployment: Deployment, actor: User | None, reason: str = ""
) -> Deployment:
    """Send a draft for approval; the submitter cannot be the one who approves it."""
    return _move(
        client=client,
        deployment=deployment,
        action="submit",
        actor=actor,
        reason=reason,
        extra_fields={"submitted_by": actor},
    )


def deployment_approve(
    *, client: Client, deployment: Deployment, actor: User, reason: str = ""
) -> Deployment:
    """Approve a submitted deployment (maker-checker: client admin or platform admin, not the submitter)."""

    def check(current: Deployment) -> None:
        _check_approver(client=client, actor=actor, maker_id=current.submitted_by_id, what="approve it")

    return _move(
        client=client, deployment=deployment, action="approve", actor=actor, reason=reason, check=check
    )


def deployment_reject(*, client: Client, deployment: Deployment, actor: User, reason: str) -> Deployment:
    """Reject a submitted deployment with a reason (same maker-checker rule as approving)."""

    def check(current: Deployment) -> None:
        _check_approver(client=client, actor=actor, maker_id=current.submitted_by_id, what="reject it")

    reason = _require_reason(reason, "rejecting it")
    return _move(
        client=client, deployment=deployment, action="reject", actor=actor, reason=reason, check=check
    )


def deployment_revise(*, client: Client, deployment: Deployment, actor: User | None) -> Deployment:
    """Take a rejected deployment back to draft, to be changed and submitted again."""
    return _move(
        client=client,
        deployment=deployment,
        action="revise",
        actor=actor,
        extra_fields={"submitted_by": None},
    )


def deployment_deploy(*, client: Client, deployment: Deployment, actor: User | None) -> Deployment:
    """Put an approved deployment into service."""
    return _move(client=client, deployment=deployment, action="deploy", actor=actor)


def deployment_pause(
    *, client: Client, deployment: Deployment, actor: User | None, reason: str = ""
) -> Deployment:
    """Stop a deployed agent from taking work, keeping its configuration."""
    return _move(client=client, deployment=deployment, action="pause", actor=actor, reason=reason)


def deployment_resume(
    *, client: Client, deployment: Deployment, actor: User | None, reason: str = ""
) -> Deployment:
    """Put a paused agent back into service."""
    return _move(client=client, deployment=deployment, action="resume", actor=actor, reason=reason)


def deployment_retire(
    *, client: Client, deployment: Deployment, actor: User | None, reason: str = ""
) -> Deployment:
    """Retire a deployed or paused agent for good; a version change still waiting is dropped with it."""
    return _move(
        client=client,
        deployment=deployment,
        action="retire",
        actor=actor,
        reason=reason,
        extra_fields={"pending_version": None, "pending_requested_by": None},
    )


# --- Upgrades and rollbacks ---------------------------------------------------------


def _direction(current: AgentVersion, new: AgentVersion) -> str:
    return ACTION_UPGRADE if new.semver > current.semver else ACTION_ROLLBACK


def _requires_approval(client: Client) -> bool:
    # Read now, not from the caller's (possibly stale) client instance.
    value = Client.objects.filter(pk=client.pk).values_list("require_version_change_approval", flat=True)
    return bool(value.first())


def deployment_change_version(
    *,
    client: Client,
    deployment: Deployment,
    version: AgentVersion,
    actor: User | None,
    reason: str = "",
    rollout: Rollout | None = None,
    expected_version_id: int | None = None,
) -> Literal["moved", "needs_approval"]:
    """Upgrade or roll back a deployed (or paused) agent to another published version of its variant.

    When the client requires approval for version changes, the new version waits
    in `pending_version` for a client admin or platform admin ("needs_approval");
    otherwise the pin moves now ("moved"). `rollout` marks a change made by a
    vendor rollout, for the history. `expected_version_id`, when given, is the
    version the caller planned from: if the locked row is pinned elsewhere now,
    the change is refused with `VersionMovedError` (a rollout must not downgrade
    a deployment someone upgraded in the meantime).
    """
    with _in_client(client):
        current = _lock(client, deployment)
        if expected_version_id is not None and current.version_id != expected_version_id:
            raise VersionMovedError(
                f"“{current.name}” is on version {current.version.version} now, not the one this change "
                "was planned from; it was left alone.",
                field="version",
            )
        _check_status("change_version", current, VERSION_CHANGE_STATUSES)
        if current.pending_version is not None:
            raise ApplicationError(
                f"“{current.name}” already has a change to {current.pending_version.version} waiting for "
                "approval; approve or reject it first."
            )
        version = _published_version(version, variant_id=current.variant_id)
        if version.pk == current.version_id:
            raise ApplicationError(
                f"“{current.name}” is already on version {version.version}.", field="version"
            )
        reason = (reason or "").strip()
        if not reason and rollout is not None:
            reason = f"Rollout #{rollout.pk} of {current.variant.key} to {rollout.target_version.version}"
        if _requires_approval(client):
            current.pending_version = version
            current.pending_requested_by = actor
            _save(current, ["pending_version", "pending_requested_by"])
            _record(
                current,
                action=ACTION_CHANGE_REQUESTED,
                from_status=current.status,
                actor=actor,
                reason=reason,
                to_version_id=version.pk,
            )
            outcome: Literal["moved", "needs_approval"] = "needs_approval"
        else:
            previous = current.version
            current.version = version
            _save(current, ["version"])
            _record(
                current,
                action=_direction(previous, version),
                from_status=current.status,
                actor=actor,
                reason=reason,
                from_version_id=previous.pk,
            )
            outcome = "moved"
    _sync(deployment, current)
    return outcome


def deployment_approve_change(
    *, client: Client, deployment: Deployment, actor: User, reason: str = ""
) -> Deployment:
    """Approve the waiting version change: the pin moves (maker-checker, as for deployments)."""
    with _in_client(client):
        current = _lock(client, deployment)
        _check_pending("approve_change", current)
        _check_approver(
            client=client,
            actor=actor,
            maker_id=current.pending_requested_by_id,
            what="approve this version change",
        )
        previous, new = current.version, current.pending_version
        assert new is not None  # _check_pending
        current.version = new
        current.pending_version = None
        current.pending_requested_by = None
        _save(current, ["version", "pending_version", "pending_requested_by"])
        _record(
            current,
            action=ACTION_CHANGE_APPROVED,
            from_status=current.status,
            actor=actor,
            reason=reason.strip() or f"{_direction(previous, new).capitalize()} approved",
            from_version_id=previous.pk,
        )
    _sync(deployment, current)
    return current


def deployment_reject_change(
    *, client: Client, deployment: Deployment, actor: User, reason: str
) -> Deployment:
    """Reject the waiting version change with a reason; the pin stays where it is."""
    with _in_client(client):
        current = _lock(client, deployment)
        _check_pending("reject_change", current)
        _check_approver(
            client=client,
            actor=actor,
            maker_id=current.pending_requested_by_id,
            what="reject this version change",
        )
        reason = _require_reason(reason, "rejecting the version change")
        requested_id = current.pending_version_id
        current.pending_version = None
        current.pending_requested_by = None
        _save(current, ["pending_version", "pending_requested_by"])
        _record(
            current,
            action=ACTION_CHANGE_REJECTED,
            from_status=current.status,
            actor=actor,
            reason=reason,
            to_version_id=requested_id,
        )
    _sync(deployment, current)
    return current


def _check_pending(action: str, current: Deployment) -> None:
    _check_status(action, current, VERSION_CHANGE_STATUSES)
    if current.pending_version_id is None:
        raise ApplicationError(f"“{current.name}” has no version change waiting for approval.")


def deployment_withdraw_change(
    *, client: Client, deployment: Deployment, actor: User | None, reason: str
) -> Deployment:
    """Drop a waiting version change without deciding on it (a reverted rollout withdraws its requests)."""
    with _in_client(client):
        current = _lock(client, deployment)
        _check_pending("reject_change", current)
        requested_id = current.pending_version_id
        current.pending_version = None
        current.pending_requested_by = None
        _save(current, ["pending_version", "pending_requested_by"])
        _record(
            current,
            action=ACTION_CHANGE_WITHDRAWN,
            from_status=current.status,
            actor=actor,
            reason=reason,
            to_version_id=requested_id,
        )
    _sync(deployment, current)
    return current
