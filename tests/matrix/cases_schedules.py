"""Permission matrix: schedules on the client dashboard (client A's host).

Every member of client A reads the schedules; only its client admins create, pause, resume and delete
them (operators and viewers get 403). Client B's admin (the foreign tenant), partner A's and B's staff
(its own and a foreign partner) and the vendor get 403; anonymous goes to the login page. Each kwargs
helper makes, inside the test's transaction, the schedule a refused POST must leave as it was: an
enabled one to pause or delete, a paused one to resume. The helpers also serve the schedule tests
(tests/runtime/test_schedules.py, tests/portals/test_runtime_schedules.py).
"""

from __future__ import annotations

from apps.runtime import services
from apps.runtime.models import TaskSchedule
from tests.matrix.base import Case, client_a_admin, client_a_all
from tests.matrix.cases_runtime import WORKFLOW, mail_agent

NOTICE_INPUTS = {"to": "ops@acme.test", "subject": "Weekly notice", "body": "Hello."}


def a_schedule(
    w, name: str = "Weekly notice", *, every_minutes: int = 60, enabled: bool = True, **inputs
) -> TaskSchedule:
    """A schedule of the notice agent's workflow in client A, made by its client admin."""
    admin = w.users["client_a_admin"]
    schedule = services.schedule_create(
        client=w.client_a,
        deployment=mail_agent(w),
        name=name,
        workflow=WORKFLOW,
        inputs={**NOTICE_INPUTS, **inputs},
        every_minutes=every_minutes,
        actor=admin,
    )
    if not enabled:
        schedule = services.schedule_set_enabled(
            client=w.client_a, schedule_id=schedule.pk, enabled=False, actor=admin
        )
    return schedule


# --- kwargs makers


def _agent(w) -> dict:
    """No URL kwargs, but the notice agent exists (the page has a workflow to offer) and a schedule too."""
    a_schedule(w)
    return {}


def _enabled(w) -> dict:
    return {"schedule_id": a_schedule(w).pk}


def _paused(w) -> dict:
    return {"schedule_id": a_schedule(w, enabled=False).pk}


def _create_data(w) -> dict:
    return {
        "workflow": f"{mail_agent(w).pk}:{WORKFLOW}",
        "name": "Refused personas must not schedule this",
        "in_to": "ops@acme.test",
        "in_subject": "Evil",
        "in_body": "x",
        "every_minutes": "5",
    }


CASES = [
    Case("tenant:dashboard:schedule_list", _agent, host="client_a", get=client_a_all),
    Case(
        "tenant:dashboard:schedule_create",
        _agent,
        host="client_a",
        get=client_a_admin,
        post=client_a_admin,
        data=_create_data,
    ),
    Case("tenant:dashboard:schedule_pause", _enabled, host="client_a", post=client_a_admin),
    Case("tenant:dashboard:schedule_resume", _paused, host="client_a", post=client_a_admin),
    Case(
        "tenant:dashboard:schedule_delete", _enabled, host="client_a", get=client_a_admin, post=client_a_admin
    ),
]
