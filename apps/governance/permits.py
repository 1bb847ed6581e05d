"""Permits: the only thing a tool executor accepts as leave to run.

A permit is minted here, and only from a recorded decision that allowed the action (or from a held
decision a person approved). It is signed, names the client schema, the decision and the SHA-256 of
the exact action, expires within a minute, and can be redeemed once: redeeming records its nonce in
Redis with SET NX, so a second redemption — a replay, a retried worker, a copied token — fails. An
executor redeems the permit against the action it is about to run; a changed action has another
hash and is refused.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core import signing

from apps.core.db import tenant_connection

from .engine import action_hash
from .models import DecisionLog

SALT = "triplane.governance.permit"
PERMIT_TTL_SECONDS = 60
# Effects a decision can carry and still let its action run (require_approval only once approved).
RUNNABLE_EFFECTS = frozenset({"allow", "redact"})


class PermitError(Exception):
    """A permit that does not let this action run (forged, expired, used, for another action or client)."""


@dataclass(frozen=True)
class Permit:
    token: str
    decision_id: int
    action_hash: str
    expires_at: float


@dataclass(frozen=True)
class PermitClaims:
    decision_id: int
    action_hash: str
    schema: str
    approved_by: int | None


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def permit_mint(*, decision: DecisionLog, action: dict, approved_by: int | None = None) -> Permit:
    """A single-use permit to run `action`, which `decision` (in the current client schema) allowed.

    A `require_approval` decision yields a permit only with `approved_by` (the approving user's id);
    the runtime's approval service is the one caller that passes it. Anything else raises PermitError.
    """
    digest = action_hash(action)
    if digest != decision.action_hash:
        raise PermitError("The action is not the one that was decided.")
    if decision.effect == "require_approval":
        if approved_by is None:
            raise PermitError("A held action runs only once a person approved it.")
    elif decision.effect not in RUNNABLE_EFFECTS:
        raise PermitError(f"A {decision.effect} decision lets nothing run.")
    expires_at = time.time() + PERMIT_TTL_SECONDS
    payload: dict[str, Any] = {
        "d": decision.pk,
        "h": digest,
        "s": tenant_connection().schema_name,
        "n": secrets.token_hex(16),
        "e": expires_at,
        "a": approved_by,
    }
    token = signing.dumps(payload, salt=SALT, compress=True)
    return Permit(token=token, decision_id=decision.pk, action_hash=digest, expires_at=expires_at)


def permit_redeem(*, permit: Permit | str, action: dict) -> PermitClaims:
    """Check a permit for `action` in the current schema and use it up; PermitError when it does not hold."""
    token = permit.token if isinstance(permit, Permit) else permit
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise PermitError("The permit is not genuine.") from None
    if not isinstance(payload, dict) or not {"d", "h", "s", "n", "e"} <= set(payload):
        raise PermitError("The permit is not genuine.")
    if payload["s"] != tenant_connection().schema_name:
        raise PermitError("The permit was issued for another client.")
    if payload["e"] < time.time():
        raise PermitError("The permit has expired.")
    if payload["h"] != action_hash(action):
        raise PermitError("The permit was issued for another action.")
    ttl = max(1, int(payload["e"] - time.time()) + PERMIT_TTL_SECONDS)
    if not _redis().set(f"triplane:permit:{payload['n']}", payload["d"], nx=True, ex=ttl):
        raise PermitError("The permit has already been used.")
    return PermitClaims(
        decision_id=int(payload["d"]),
        action_hash=payload["h"],
        schema=payload["s"],
        approved_by=payload.get("a"),
    )
