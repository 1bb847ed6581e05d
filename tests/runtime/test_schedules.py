"""Schedules: a deployed agent's workflow that runs by itself every N minutes with fixed inputs.

The services (create, pause/resume, delete) validate and write the audit trail; `schedules_run_due`
(what the Celery beat sweep calls every minute) starts a task for each enabled schedule that is due,
as the principal kind `schedule`, and moves the schedule to its next time on its own grid without
making up missed runs. The agent is the notice agent of tests/matrix/cases_runtime.py (notify.email only).
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.governance import services as governance
from apps.runtime import selectors, services
from apps.runtime.models import Step, Task, TaskSchedule
from apps.runtime.tasks import runtime_sweep
from tests.matrix.cases_runtime import WORKFLOW, mail_agent
from tests.matrix.cases_schedules import NOTICE_INPUTS, a_schedule

T0 = timezone.now().replace(microsecond=0) + timedelta(days=1)


def schedules(world) -> list[TaskSchedule]:
    with tenant_context(world.client_a):
        return list(TaskSchedule.objects.order_by("pk"))


def fresh(world, schedule: TaskSchedule) -> TaskSchedule:
    with tenant_context(world.client_a):
        return TaskSchedule.objects.select_related("last_task").get(pk=schedule.pk)


def tasks(world) -> list[Task]:
    with tenant_context(world.client_a):
        return list(Task.objects.order_by("pk"))


def events(world, kind_prefix: str = "schedule.") -> list[AuditEvent]:
    with tenant_context(world.client_a):
        return list(AuditEvent.objects.filter(kind__startswith=kind_prefix).order_by("seq"))


def due_at(world, schedule: TaskSchedule, when) -> None:
    with tenant_context(world.client_a):
        TaskSchedule.objects.filter(pk=schedule.pk).update(next_run_at=when)


def set_agent_status(world, status: str) -> None:
    with tenant_context(world.client_a):
        Deployment.objects.filter(pk=mail_agent(world).pk).update(status=status)


def create(world, **overrides) -> TaskSchedule:
    arguments = {
        "client": world.client_a,
        "deployment": mail_agent(world),
        "name": "Weekly notice",
        "workflow": WORKFLOW,
        "inputs": dict(NOTICE_INPUTS),
        "every_minutes": 60,
        "actor": world.users["client_a_admin"],
    }
    arguments.update(overrides)
    return services.schedule_create(**arguments)


# --- Creating -------------------------------------------------------------------------------------


def test_a_schedule_starts_now_and_is_in_the_audit_trail(world):
    before = timezone.now()
    schedule = create(world, inputs={**NOTICE_INPUTS, "subject": "  Weekly notice  "})
    stored = fresh(world, schedule)
    assert stored.enabled and stored.workflow == WORKFLOW and stored.every_minutes == 60
    assert stored.inputs == NOTICE_INPUTS  # cleaned like a task's inputs (trimmed)
    assert before <= stored.next_run_at <= timezone.now()
    assert stored.created_by == world.users["client_a_admin"] and stored.last_task is None
    [event] = events(world)
    assert event.kind == "schedule.created" and event.actor == "client.a.admin@example.com"
    assert event.deployment_id == stored.deployment_id and event.data["schedule_id"] == stored.pk
    assert event.data["inputs"] == NOTICE_INPUTS


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"every_minutes": 4}, "every_minutes", "at most once every 5 minutes"),
        ({"every_minutes": 0}, "every_minutes", "at most once every 5 minutes"),
        ({"every_minutes": 60 * 24 * 32}, "every_minutes", "at least once a month"),
        ({"name": "   "}, "name", "Give the schedule a name"),
        ({"name": "x" * 121}, "name", "up to 120 characters"),
        ({"workflow": "no_such_workflow"}, "workflow", "Notice agent has no workflow no_such_workflow."),
        ({"inputs": {"to": "ops@acme.test", "subject": "Hi"}}, "body", "The input body is required."),
        ({"inputs": {**NOTICE_INPUTS, "cc": "x"}}, "inputs", "Unknown input: cc."),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_and_nothing_is_saved(world, overrides, field, message):
    with pytest.raises(ApplicationError) as refused:
        create(world, **overrides)
    assert refused.value.field == field and message in refused.value.message
    assert schedules(world) == [] and events(world) == []


def test_two_schedules_cannot_share_a_name(world):
    create(world)
    with pytest.raises(ApplicationError) as refused:
        create(world, workflow=WORKFLOW, every_minutes=5)
    assert refused.value.field == "name" and refused.value.message == "A schedule with this name exists."
    assert len(schedules(world)) == 1 and len(events(world)) == 1


@pytest.mark.parametrize("status", [Deployment.Status.PAUSED, Deployment.Status.RETIRED])
def test_only_a_deployed_agent_gets_a_schedule(world, status):
    mail_agent(world)
    set_agent_status(world, status)
    with pytest.raises(ApplicationError) as refused:
        create(world)
    assert refused.value.message == "Notice agent is not deployed."
    assert schedules(world) == [] and events(world) == []


# --- Running when due -----------------------------------------------------------------------------


def test_a_due_schedule_starts_a_task_as_the_schedule(world, django_capture_on_commit_callbacks):
    schedule = a_schedule(world, every_minutes=15)
    due_at(world, schedule, T0)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert services.schedules_run_due(client=world.client_a, now=T0) == 1
    [task] = tasks(world)
    assert len(queued) == 1  # the task goes to the workers once the transaction commits
    assert task.source == Task.Source.SCHEDULE and task.status == Task.Status.QUEUED
    assert task.requested_by is None and task.workflow == WORKFLOW and task.inputs == NOTICE_INPUTS
    assert task.principal == {"kind": "schedule", "id": "Weekly notice", "role": "", "channel": ""}
    stored = fresh(world, schedule)
    assert stored.last_task == task and stored.next_run_at == T0 + timedelta(minutes=15)
    [created] = events(world, "task.created")
    assert created.actor == "schedule" and created.data["source"] == "schedule"

    # The task runs like any other: the notice is mailed through the gateway.
    services.task_advance(client=world.client_a, task_id=task.pk)
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]


def test_nothing_starts_before_the_schedule_is_due(world):
    schedule = a_schedule(world)
    due_at(world, schedule, T0)
    assert services.schedules_run_due(client=world.client_a, now=T0 - timedelta(seconds=1)) == 0
    assert tasks(world) == [] and fresh(world, schedule).next_run_at == T0


def test_missed_runs_are_not_made_up_and_the_grid_is_kept(world):
    schedule = a_schedule(world, every_minutes=10)
    due_at(world, schedule, T0)
    late = T0 + timedelta(minutes=35)  # the sweep did not run for 35 minutes: three runs were missed
    assert services.schedules_run_due(client=world.client_a, now=late) == 1
    assert fresh(world, schedule).next_run_at == T0 + timedelta(minutes=40)
    assert services.schedules_run_due(client=world.client_a, now=late + timedelta(minutes=4)) == 0
    assert services.schedules_run_due(client=world.client_a, now=T0 + timedelta(minutes=40)) == 1
    assert fresh(world, schedule).next_run_at == T0 + timedelta(minutes=50)
    assert len(tasks(world)) == 2


def test_disabled_schedules_are_skipped(world):
    paused = a_schedule(world, "Paused notice", enabled=False)
    due_at(world, paused, T0)
    assert services.schedules_run_due(client=world.client_a, now=T0 + timedelta(hours=5)) == 0
    assert tasks(world) == [] and fresh(world, paused).next_run_at == T0


def test_a_schedule_whose_agent_is_no_longer_deployed_is_paused_and_says_why(world):
    schedule = a_schedule(world)
    other = a_schedule(world, "Other notice")
    due_at(world, schedule, T0)
    due_at(world, other, T0 + timedelta(days=1))
    set_agent_status(world, Deployment.Status.PAUSED)
    assert services.schedules_run_due(client=world.client_a, now=T0) == 0
    assert tasks(world) == []
    stored = fresh(world, schedule)
    assert not stored.enabled and stored.last_task is None
    assert fresh(world, other).enabled  # not due yet: left alone
    paused = [e for e in events(world) if e.kind == "schedule.paused"]
    assert len(paused) == 1 and paused[0].actor == "system"
    assert paused[0].data == {
        "schedule_id": schedule.pk,
        "reason": "Notice agent is not deployed; it cannot run tasks.",
    }
    # Later sweeps do not try again (nor record it again).
    assert services.schedules_run_due(client=world.client_a, now=T0 + timedelta(hours=1)) == 0
    assert len([e for e in events(world) if e.kind == "schedule.paused"]) == 1


def test_rules_see_scheduled_work_as_the_schedule(world):
    """A rule may treat scheduled tasks differently: here it denies mail that a schedule sends."""
    engineer = world.users["partner_a_engineer"]
    mail_agent(world)
    governance.rule_save(
        client=world.client_a,
        rule={
            "key": "rt_no_scheduled_mail",
            "name": "Schedules send no mail",
            "effect": "deny",
            "message": "Scheduled work may not mail anyone.",
            "selector": {"tools": ["notify.email"]},
            "condition": "principal.kind == 'schedule'",
        },
        layer="partner",
        actor=engineer,
    )
    governance.ruleset_publish(
        client=world.client_a,
        version=governance.ruleset_draft(client=world.client_a, actor=engineer),
        actor=engineer,
    )
    schedule = a_schedule(world)
    due_at(world, schedule, T0)
    services.schedules_run_due(client=world.client_a, now=T0)
    [task] = tasks(world)
    task = services.task_advance(client=world.client_a, task_id=task.pk)
    assert task.status == Task.Status.STOPPED and mail.outbox == []
    with tenant_context(world.client_a):
        step = Step.objects.get(task=task)
    assert step.status == Step.Status.DENIED and "Scheduled work may not mail anyone." in step.error


def test_the_beat_sweep_starts_due_schedules(world):
    schedule = a_schedule(world, every_minutes=5)
    start = timezone.now()
    totals = runtime_sweep()  # what Celery beat runs every minute (here in this process)
    assert totals["scheduled"] == 1
    [task] = tasks(world)
    stored = fresh(world, schedule)
    assert task.source == Task.Source.SCHEDULE and stored.last_task == task
    assert start < stored.next_run_at <= timezone.now() + timedelta(minutes=5)
    assert runtime_sweep()["scheduled"] == 0  # not due again for five minutes


# --- Pause, resume, delete ------------------------------------------------------------------------


def test_pausing_and_resuming_are_recorded_and_missed_runs_are_not_made_up(world):
    admin = world.users["client_a_admin"]
    schedule = a_schedule(world)
    long_ago = timezone.now() - timedelta(days=3)
    due_at(world, schedule, long_ago)
    services.schedule_set_enabled(client=world.client_a, schedule_id=schedule.pk, enabled=False, actor=admin)
    assert not fresh(world, schedule).enabled
    before = timezone.now()
    services.schedule_set_enabled(client=world.client_a, schedule_id=schedule.pk, enabled=True, actor=admin)
    stored = fresh(world, schedule)
    assert stored.enabled and stored.next_run_at >= before  # runs once now, not 864 times
    assert [e.kind for e in events(world)] == ["schedule.created", "schedule.paused", "schedule.enabled"]
    assert services.schedules_run_due(client=world.client_a) == 1
    assert len(tasks(world)) == 1

    # Asking for the state it is in changes nothing and records nothing.
    services.schedule_set_enabled(client=world.client_a, schedule_id=schedule.pk, enabled=True, actor=admin)
    assert len(events(world)) == 3


def test_a_schedule_resumes_only_while_its_agent_is_deployed(world):
    admin = world.users["client_a_admin"]
    schedule = a_schedule(world, enabled=False)
    set_agent_status(world, Deployment.Status.PAUSED)
    with pytest.raises(ApplicationError) as refused:
        services.schedule_set_enabled(
            client=world.client_a, schedule_id=schedule.pk, enabled=True, actor=admin
        )
    assert "Notice agent is not deployed" in refused.value.message
    assert not fresh(world, schedule).enabled
    assert [e.kind for e in events(world)] == ["schedule.created", "schedule.paused"]


def test_deleting_a_schedule_keeps_its_tasks(world):
    schedule = a_schedule(world)
    due_at(world, schedule, T0)
    services.schedules_run_due(client=world.client_a, now=T0)
    services.schedule_delete(
        client=world.client_a, schedule_id=schedule.pk, actor=world.users["client_a_admin"]
    )
    assert schedules(world) == [] and len(tasks(world)) == 1
    deleted = events(world)[-1]
    assert deleted.kind == "schedule.deleted" and deleted.subject == "Weekly notice"
    with pytest.raises(ApplicationError, match="no longer exists"):
        services.schedule_delete(client=world.client_a, schedule_id=schedule.pk, actor=None)
    with pytest.raises(ApplicationError, match="no longer exists"):
        services.schedule_set_enabled(
            client=world.client_a, schedule_id=schedule.pk, enabled=False, actor=None
        )


def test_schedules_are_read_inside_their_own_client(world):
    a_schedule(world, "B notice")
    assert [s.name for s in selectors.schedule_list(client=world.client_a)] == ["B notice"]
    assert selectors.schedule_list(client=world.client_b) == []
    schedule = schedules(world)[0]
    assert selectors.schedule_get(client=world.client_a, schedule_id=schedule.pk) == schedule
    assert selectors.schedule_get(client=world.client_b, schedule_id=schedule.pk) is None
