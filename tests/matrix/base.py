"""What the permission matrix is made of: cases, expected answers per persona, and shared fixtures.

Case modules beside this one (`tests/matrix/cases_*.py`) each define `CASES`; the
matrix test (tests/test_permission_matrix.py) collects them with its own.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from apps.accounts.models import ClientMembership, PartnerMembership
from apps.deployments import services as deployment_services
from apps.deployments.models import Deployment
from apps.factory.models import AgentVersion
from tests.conftest import PERSONAS

R, OK, MOVED, FORBIDDEN, NOT_FOUND = "login", 200, 302, 403, 404
VENDOR = {"vendor_admin"}
PARTNER_A = {"partner_a_admin", "partner_a_engineer"}
CLIENT_A = {"client_a_admin", "client_a_operator", "client_a_viewer"}


def answers(default, **overrides) -> dict:
    """Expected answer per persona: anonymous → login unless overridden; `default` for the rest."""
    table = dict.fromkeys(PERSONAS, default)
    table["anonymous"] = R
    table.update(overrides)
    return table


def only(allowed: set, *, denied=FORBIDDEN, allowed_answer=OK, **overrides) -> dict:
    table = answers(denied)
    for persona in allowed:
        table[persona] = allowed_answer
    table.update(overrides)
    return table


@dataclass
class Case:
    route: str  # "<urlconf>:<namespace:name>"
    kwargs: Callable = lambda w: {}
    host: str = "platform"  # or "client_a"
    get: dict | None = None  # expected GET answers; None = GET not tested (POST-only view)
    post: dict | None = None  # expected POST answers for refused personas (nothing may change)
    data: dict | Callable = field(default_factory=dict)  # or w → dict, for ids made by `kwargs`


def a_engineer_membership(w):
    return {"pk": PartnerMembership.objects.get(user=w.users["partner_a_engineer"]).pk}


def a_viewer_membership(w):
    return {"pk": ClientMembership.objects.get(user=w.users["client_a_viewer"]).pk}


def itsm(version: str = "1.0.0") -> AgentVersion:
    return AgentVersion.objects.get(variant__key="itsm", version=version)


def a_deployment(w, status: str = Deployment.Status.DRAFT) -> Deployment:
    """An ITSM deployment in client A's schema, brought to `status` through the services.

    Made inside the test's transaction (kwargs run per test), so it is rolled back after it.
    """
    engineer, admin, version = w.users["partner_a_engineer"], w.users["client_a_admin"], itsm()
    deployment = deployment_services.deployment_create(
        client=w.client_a, variant=version.variant, version=version, name="Matrix agent", actor=engineer
    )
    steps = {
        Deployment.Status.SUBMITTED: ["submit"],
        Deployment.Status.DEPLOYED: ["submit", "approve", "deploy"],
    }.get(status, [])
    for action in steps:
        service = getattr(deployment_services, f"deployment_{action}")
        service(client=w.client_a, deployment=deployment, actor=admin if action == "approve" else engineer)
    return deployment


def a_deployment_page(status: str = Deployment.Status.DRAFT, **extra) -> Callable:
    """kwargs for a management deployment URL: client A and a fresh deployment in `status`."""
    return lambda w: {"pk": w.client_a.pk, "deployment_id": a_deployment(w, status).pk, **extra}


def a_deployed_with_newer_version(w) -> dict:
    """A deployed ITSM 1.0.0 deployment, and a published ITSM 1.1.0 to move it to."""
    v100 = itsm()
    AgentVersion.objects.create(
        variant=v100.variant,
        version="1.1.0",
        major=1,
        minor=1,
        patch=0,
        status=AgentVersion.Status.PUBLISHED,
        spec={**v100.spec, "instructions": "Changed."},
        changelog="Matrix.",
        derived_from=v100,
    )
    return {"pk": w.client_a.pk, "deployment_id": a_deployment(w, Deployment.Status.DEPLOYED).pk}


# --- Common answer tables

vendor_only = only(VENDOR)
partner_team = only(PARTNER_A | {"partner_b_admin"})
partner_admins = only({"partner_a_admin", "partner_b_admin"})
client_a_all = only(CLIENT_A)
client_a_admin = only({"client_a_admin"})
# A client of partner A: partner A's admin and assigned engineer see it, partner B gets 404.
client_a_in_portal = only(PARTNER_A, partner_b_admin=NOT_FOUND)
client_a_admin_only = only({"partner_a_admin"}, partner_b_admin=NOT_FOUND)
everyone = answers(OK, anonymous=OK)
# API (anonymous: 403, there is no login page to send it to). The factory: vendor and every partner team.
api_factory_readers = only(VENDOR | PARTNER_A | {"partner_b_admin"}, anonymous=FORBIDDEN)
# Client A's deployments on the platform host: the vendor and partner A; partner B gets 404.
api_client_a_readers = only(VENDOR | PARTNER_A, partner_b_admin=NOT_FOUND, anonymous=FORBIDDEN)
api_client_a_partner = only(PARTNER_A, partner_b_admin=NOT_FOUND, anonymous=FORBIDDEN)


def api_deployment(status: str = Deployment.Status.DRAFT, *, platform: bool = True) -> Callable:
    """kwargs for an API deployment URL: a fresh deployment of client A in `status`."""
    if platform:
        return lambda w: {"client_id": w.client_a.pk, "pk": a_deployment(w, status).pk}
    return lambda w: {"pk": a_deployment(w, status).pk}
