"""Vendor rollouts: move every deployment of a variant pinned below a version to that version.

A rollout (public schema) has one RolloutTarget per client. `rollout_create`
picks the clients and schedules the Celery task; `rollout_execute` (the task's
body) visits the targets still `pending`, one client per transaction, entering
the client's schema and changing each deployment through
`deployment_change_version` — so a client that requires approval gets a
request, not a moved pin. A client that fails is recorded `failed` and the
others carry on. Finished targets are never visited again, so re-running the
task after a worker stopped (or a redelivered message) just continues.

`rollout_revert` returns every deployment the rollout moved to the version it
had before (the previous pins are recorded per target) and withdraws the
version-change requests it left waiting.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.factory.models import AgentVariant, AgentVersion, Rollout, RolloutTarget
from apps.tenancy.models import Client

from ..models import Deployment
from ..selectors import mark_client
from .deployments import (
    VERSION_CHANGE_STATUSES,
    VersionMovedError,
    deployment_change_version,
    deployment_withdraw_change,
)

logger = logging.getLogger(__name__)

Result = RolloutTarget.Result
# A rollout of a variant waits for the previous one to finish (or finish reverting).
ACTIVE_STATUSES = (Rollout.Status.PENDING, Rollout.Status.RUNNING, Rollout.Status.REVERTING)


def _versions_below(variant_id: int, target: AgentVersion) -> list[int]:
    """Ids of the variant's versions older than `target` (by semantic version)."""
    versions = AgentVersion.objects.filter(variant_id=variant_id).values_list("pk", "major", "minor", "patch")
    return [pk for pk, *semver in versions if tuple(semver) < target.semver]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return exc.message[:500]
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:500]


def _schedule(task_name: str, rollout_id: int, **kwargs) -> None:
    from .. import tasks

    task = getattr(tasks, task_name)
    # Public schema explicitly: a task sent from inside a client's context would otherwise run there.
    transaction.on_commit(
        lambda: task.apply_async(args=[rollout_id], kwargs=kwargs, headers={"_schema_name": "public"})
    )


# --- Creating -----------------------------------------------------------------------


def _lock_variant(variant_id: int) -> None:
    """Lock the variant's row until the transaction ends.

    Creating and reverting a rollout take this lock before checking that no other rollout
    of the variant is active, so two of them cannot both pass the check and overlap.
    The order is always variant, then rollout.
    """
    if not AgentVariant.objects.select_for_update().filter(pk=variant_id).exists():
        raise ApplicationError("This agent variant no longer exists.", field="variant")


def _refuse_while_active(variant: AgentVariant, *, exclude_pk: int | None = None) -> None:
    """Refuse when another rollout of the variant is pending, running or reverting."""
    active = Rollout.objects.filter(variant_id=variant.pk, status__in=ACTIVE_STATUSES)
    if exclude_pk is not None:
        active = active.exclude(pk=exclude_pk)
    first = active.order_by("pk").first()
    if first is not None:
        raise ApplicationError(
            f"Rollout #{first.pk} of {variant.name} is still {first.get_status_display().lower()}; "
            "wait until it has finished."
        )


def _has_deployments_below(client: Client, variant_id: int, below: list[int]) -> bool:
    """Whether the client has a non-retired deployment of the variant pinned below the target."""
    try:
        with tenant_context(client), transaction.atomic():
            return (
                Deployment.objects.filter(variant_id=variant_id, version_id__in=below)
                .exclude(status=Deployment.Status.RETIRED)
                .exists()
            )
    except DatabaseError:
        # Keep the client in the rollout: its target will record the failure for the vendor to see.
        logger.warning("Could not read the deployments of client %s", client.slug, exc_info=True)
        return True


def rollout_create(
    *,
    variant: AgentVariant,
    target_version: AgentVersion,
    actor: User | None,
    client_ids: list[int] | None = None,
    schedule: bool = True,
) -> Rollout:
    """Plan a rollout of `variant` to `target_version` and schedule it.

    Targets every ready client (only `client_ids`, for a canary) that has a
    non-retired deployment of the variant pinned below the target version.
    With `schedule=False` the caller runs `rollout_execute` itself (benchmarks).
    """
    with schema_context(get_public_schema_name()), transaction.atomic():
        return _rollout_create(
            variant=variant,
            target_version=target_version,
            actor=actor,
            client_ids=client_ids,
            schedule=schedule,
        )


def _rollout_create(
    *,
    variant: AgentVariant,
    target_version: AgentVersion,
    actor: User | None,
    client_ids: list[int] | None,
    schedule: bool,
) -> Rollout:
    target = AgentVersion.objects.filter(pk=target_version.pk).first()
    if target is None or target.variant_id != variant.pk:
        raise ApplicationError("Choose a version of this variant to roll out.", field="target_version")
    if target.status != AgentVersion.Status.PUBLISHED:
        raise ApplicationError(
            f"Version {target.version} is a draft; only published versions can be rolled out.",
            field="target_version",
        )
    _lock_variant(variant.pk)
    _refuse_while_active(variant)

    clients = Client.objects.filter(status=Client.Status.READY).exclude(
        schema_name__in=[get_public_schema_name(), settings.TENANT_BASE_SCHEMA]
    )
    canary = client_ids is not None
    if client_ids is not None:
        wanted = {int(pk) for pk in client_ids}
        if not wanted:
            raise ApplicationError("Choose at least one client for a canary rollout.", field="client_ids")
        clients = clients.filter(pk__in=wanted)
        unknown = wanted - {client.pk for client in clients}
        if unknown:
            raise ApplicationError(
                f"Not ready or unknown client ids: {', '.join(str(pk) for pk in sorted(unknown))}.",
                field="client_ids",
            )

    below = _versions_below(variant.pk, target)
    affected = [
        client for client in clients.order_by("pk") if _has_deployments_below(client, variant.pk, below)
    ]
    if not affected:
        where = "the chosen clients" if canary else "any client"
        raise ApplicationError(
            f"Nothing to roll out: no deployment of {variant.name} below {target.version} in {where}."
        )

    rollout = Rollout.objects.create(
        variant_id=variant.pk, target_version=target, canary=canary, created_by=actor
    )
    RolloutTarget.objects.bulk_create([RolloutTarget(rollout=rollout, client=client) for client in affected])
    if schedule:
        _schedule("rollout_run", rollout.pk)
    return rollout


# --- Running --------------------------------------------------------------------------


def _claim(rollout: Rollout, *, allowed: tuple[str, ...], status: str) -> Rollout | None:
    """Lock the rollout and move it to `status` when it is in one of `allowed`; else None."""
    with transaction.atomic():
        current = Rollout.objects.select_for_update().filter(pk=rollout.pk).first()
        if current is None or current.status not in allowed:
            return None
        fields = []
        if current.status != status:
            current.status = status
            fields.append("status")
        if status == Rollout.Status.RUNNING and current.started_at is None:
            current.started_at = timezone.now()
            fields.append("started_at")
        if fields:
            current.save(update_fields=fields)
        return current


def _finish(rollout: Rollout, *, expected: str, status: str, open_results: tuple[str, ...]) -> Rollout:
    """Mark the rollout `status` once no target is left in `open_results` (another worker may hold one)."""
    with transaction.atomic():
        current = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if current.status != expected or current.targets.filter(result__in=open_results).exists():
            return current
        current.status = status
        fields = ["status"]
        if status == Rollout.Status.COMPLETED:
            current.finished_at = timezone.now()
            fields.append("finished_at")
        current.save(update_fields=fields)
        return current


def _run_targets(
    rollout: Rollout,
    *,
    results: tuple[str, ...],
    work: Callable[[RolloutTarget], tuple[str, dict | None, str]],
    failure_prefix: str = "",
) -> None:
    """Visit each target whose result is in `results`, one transaction per target.

    A target another worker holds is skipped (it is being done); a client that
    raises is recorded `failed` with a short message and the loop carries on.
    """
    target_ids = list(
        RolloutTarget.objects.filter(rollout=rollout, result__in=results)
        .order_by("client__name", "pk")
        .values_list("pk", flat=True)
    )
    for target_id in target_ids:
        with transaction.atomic():
            target = (
                RolloutTarget.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("client")
                .filter(pk=target_id, result__in=results)
                .first()
            )
            if target is None:
                continue
            started = time.perf_counter()
            fields = ["result", "message", "elapsed_ms", "updated_at"]
            try:
                # A savepoint: whatever the client's part changed is undone if it fails.
                with transaction.atomic():
                    result, moved, message = work(target)
                if moved is not None:
                    target.moved = moved
                    fields.append("moved")
            except Exception as exc:  # one client's failure must not stop the others
                logger.warning("Rollout %s: client %s failed", rollout.pk, target.client.slug, exc_info=True)
                result, message = Result.FAILED, failure_prefix + _describe(exc)
            target.result = result
            target.message = message
            target.elapsed_ms = round((time.perf_counter() - started) * 1000)
            target.save(update_fields=fields)


def _roll_client(rollout: Rollout, target: RolloutTarget, below: list[int]) -> tuple[str, dict | None, str]:
    """Move one client's deployments of the variant to the target version."""
    client = target.client
    version = rollout.target_version
    if client.status != Client.Status.READY:
        raise ApplicationError(f"{client.name} is not ready ({client.get_status_display().lower()}).")
    moved: dict[str, int] = {}
    changed = requested = already = skipped = 0
    with tenant_context(client):
        deployments = list(
            Deployment.objects.filter(
                variant_id=rollout.variant_id, status__in=VERSION_CHANGE_STATUSES, version_id__in=below
            ).order_by("pk")
        )
        for deployment in deployments:
            if deployment.pending_version_id == version.pk:
                already += 1  # someone already asked for exactly this version
                continue
            previous = deployment.version_id
            try:
                outcome = deployment_change_version(
                    client=client,
                    deployment=mark_client(deployment, client),
                    version=version,
                    actor=rollout.created_by,
                    rollout=rollout,
                    # Read without a lock: if the pin moved since (an upgrade past the target), leave it.
                    expected_version_id=previous,
                )
            except VersionMovedError:
                skipped += 1
                continue
            except ApplicationError as exc:
                raise ApplicationError(f"{deployment.name}: {exc.message}") from exc
            moved[str(deployment.pk)] = previous
            if outcome == "moved":
                changed += 1
            else:
                requested += 1
    # A deployment whose version changed between reading and locking it is not ours to move.
    left = f" {_plural(skipped, 'deployment')} changed version meanwhile, left alone." if skipped else ""
    if changed:
        message = f"{_plural(changed, 'deployment')} moved to {version.version}."
        if requested:
            message += f" {_plural(requested, 'change')} waiting for approval."
        return Result.MOVED, moved, message + left
    if requested or already:
        waiting = f"{_plural(requested + already, 'change')} waiting for approval."
        return Result.NEEDS_APPROVAL, moved, waiting + left
    if skipped:
        return Result.NOTHING_TO_DO, moved, left.strip()
    return (
        Result.NOTHING_TO_DO,
        moved,
        f"No deployed or paused deployment below {version.version}.",
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def rollout_execute(*, rollout: Rollout) -> Rollout:
    """Run a rollout: every target still pending, client by client (the Celery task's body).

    Resumable and idempotent: targets already finished are skipped, and a
    completed or reverted rollout is left alone. Each client is its own
    transaction, so a stop half-way keeps what was done.
    """
    with schema_context(get_public_schema_name()):
        current = _claim(
            rollout, allowed=(Rollout.Status.PENDING, Rollout.Status.RUNNING), status=Rollout.Status.RUNNING
        )
        if current is None:
            return Rollout.objects.get(pk=rollout.pk)
        current = Rollout.objects.select_related("variant", "target_version", "created_by").get(pk=current.pk)
        below = _versions_below(current.variant_id, current.target_version)
        _run_targets(
            current,
            results=(Result.PENDING,),
            work=lambda target: _roll_client(current, target, below),
        )
        return _finish(
            current,
            expected=Rollout.Status.RUNNING,
            status=Rollout.Status.COMPLETED,
            open_results=(Result.PENDING,),
        )


def rollout_resume(*, rollout: Rollout, actor: User | None) -> Rollout:
    """Schedule an unfinished rollout (or revert) again, e.g. after its worker was lost."""
    with schema_context(get_public_schema_name()), transaction.atomic():
        current = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if current.status in (Rollout.Status.PENDING, Rollout.Status.RUNNING):
            _schedule("rollout_run", current.pk)
        elif current.status == Rollout.Status.REVERTING:
            _schedule("rollout_revert_run", current.pk)
        else:
            raise ApplicationError(f"Rollout #{current.pk} is {current.get_status_display().lower()}.")
    return current


# --- Reverting ----------------------------------------------------------------------


def rollout_revert(*, rollout: Rollout, actor: User | None) -> Rollout:
    """Schedule the return of every deployment the rollout moved to its previous version."""
    with schema_context(get_public_schema_name()), transaction.atomic():
        variant_id = Rollout.objects.filter(pk=rollout.pk).values_list("variant_id", flat=True).get()
        _lock_variant(variant_id)
        current = Rollout.objects.select_for_update().select_related("variant").get(pk=rollout.pk)
        if current.status != Rollout.Status.COMPLETED:
            raise ApplicationError(
                f"Rollout #{current.pk} is {current.get_status_display().lower()}; only a completed rollout "
                "can be reverted."
            )
        # Reverting while another rollout of the variant runs would undo part of it.
        _refuse_while_active(current.variant, exclude_pk=current.pk)
        current.status = Rollout.Status.REVERTING
        current.save(update_fields=["status"])
        _schedule("rollout_revert_run", current.pk, actor_id=actor.pk if actor else None)
    return current


def _revert_client(
    rollout: Rollout, target: RolloutTarget, actor: User | None
) -> tuple[str, dict | None, str]:
    """Return one client's deployments to their previous pins; withdraw the requests still waiting."""
    client = target.client
    version = rollout.target_version
    reason = f"Revert of rollout #{rollout.pk} ({rollout.variant.key} to {version.version})"
    back = asked = withdrawn = left = 0
    with tenant_context(client):
        previous_ids = {int(pk): int(prev) for pk, prev in target.moved.items()}
        deployments = Deployment.objects.select_related("version").in_bulk(list(previous_ids))
        previous_versions = AgentVersion.objects.in_bulk(list(previous_ids.values()))
        for pk, previous_id in sorted(previous_ids.items()):
            deployment = deployments.get(pk)
            if deployment is None:
                left += 1
                continue
            mark_client(deployment, client)
            if (
                deployment.pending_version_id == version.pk
                and deployment.pending_requested_by_id == rollout.created_by_id
            ):
                deployment_withdraw_change(client=client, deployment=deployment, actor=actor, reason=reason)
                withdrawn += 1
            elif deployment.version_id == version.pk and deployment.status in VERSION_CHANGE_STATUSES:
                if deployment.pending_version_id is not None:
                    raise ApplicationError(
                        f"{deployment.name}: another version change is waiting for approval; decide it first."
                    )
                try:
                    outcome = deployment_change_version(
                        client=client,
                        deployment=deployment,
                        version=previous_versions[previous_id],
                        actor=actor,
                        reason=reason,
                        expected_version_id=version.pk,
                    )
                except VersionMovedError:
                    left += 1  # moved on between reading and locking: not ours any more
                    continue
                if outcome == "moved":
                    back += 1
                else:
                    asked += 1
            else:
                left += 1  # moved on since (or retired): not ours to change any more
    parts = []
    if back:
        parts.append(f"{_plural(back, 'deployment')} back on the previous version")
    if asked:
        parts.append(f"{_plural(asked, 'rollback')} waiting for approval")
    if withdrawn:
        parts.append(f"{_plural(withdrawn, 'request')} withdrawn")
    if left:
        parts.append(f"{left} changed since, left alone")
    return Result.REVERTED, None, ("; ".join(parts) or "Nothing to revert") + "."


def rollout_revert_execute(*, rollout: Rollout, actor: User | None = None) -> Rollout:
    """Revert a rollout (the Celery task's body): each moved client back to its previous pins.

    Resumable like `rollout_execute`: targets already reverted are skipped. A
    client that fails is recorded `failed` ("Revert failed: …") and the others
    carry on. `actor` (who asked for the revert) defaults to the rollout's author.
    """
    with schema_context(get_public_schema_name()):
        current = _claim(rollout, allowed=(Rollout.Status.REVERTING,), status=Rollout.Status.REVERTING)
        if current is None:
            return Rollout.objects.get(pk=rollout.pk)
        current = Rollout.objects.select_related("variant", "target_version", "created_by").get(pk=current.pk)
        actor = actor if actor is not None else current.created_by
        open_results = (Result.MOVED, Result.NEEDS_APPROVAL)
        _run_targets(
            current,
            results=open_results,
            work=lambda target: _revert_client(current, target, actor),
            failure_prefix="Revert failed: ",
        )
        return _finish(
            current,
            expected=Rollout.Status.REVERTING,
            status=Rollout.Status.REVERTED,
            open_results=open_results,
        )
