"""Client dashboard, schedules: the list (every member), and creating, pausing, resuming and deleting
(client admins). The agent is the notice agent of tests/matrix/cases_runtime.py (notify.email only).
"""

import re
from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment
from apps.runtime import services
from apps.runtime.models import Task, TaskSchedule
from tests.matrix.cases_runtime import WORKFLOW, mail_agent
from tests.matrix.cases_schedules import NOTICE_INPUTS, a_schedule


def schedules(world, client=None) -> list[TaskSchedule]:
    with tenant_context(client or world.client_a):
        return list(TaskSchedule.objects.order_by("pk"))


def fresh(world, schedule: TaskSchedule) -> TaskSchedule:
    with tenant_context(world.client_a):
        return TaskSchedule.objects.get(pk=schedule.pk)


def schedule_events(world) -> list[str]:
    with tenant_context(world.client_a):
        return list(
            AuditEvent.objects.filter(kind__startswith="schedule.")
            .order_by("seq")
            .values_list("kind", flat=True)
        )


def choice(world) -> str:
    return f"{mail_agent(world).pk}:{WORKFLOW}"


def form_data(world, **overrides) -> dict:
    data = {
        "workflow": choice(world),
        "name": "Morning notice",
        "in_to": "ops@acme.test",
        "in_subject": "Good morning",
        "in_body": "Hello.",
        "every_minutes": "1440",
    }
    data.update(overrides)
    return data


def field_error(page: str, field: str) -> str:
    """The error text shown under a form field (empty when there is none)."""
    match = re.search(rf'id="id_schedule_{field}_error">(.*?)</div>\s*</div>', page, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def listed(page: str) -> dict[int, str]:
    return {int(pk): state for pk, state in re.findall(r'data-schedule="(\d+)" data-enabled="(\w+)"', page)}


# --- The list -------------------------------------------------------------------------------------


def test_the_list_has_an_empty_state_and_only_admins_are_offered_a_new_schedule(world, client_host):
    page = client_host("client_a_admin").get("/schedules/").content.decode()
    assert "No schedules yet" in page and 'href="/schedules/new/"' in page
    page = client_host("client_a_viewer").get("/schedules/").content.decode()
    assert "No schedules yet" in page and "/schedules/new/" not in page


def test_the_list_shows_what_runs_when_and_the_last_task(world, client_host):
    weekly = a_schedule(world, every_minutes=60)
    paused = a_schedule(world, "Quiet notice", enabled=False)
    services.schedules_run_due(client=world.client_a, now=timezone.now() + timedelta(seconds=1))
    with tenant_context(world.client_a):
        [task] = Task.objects.all()
    page = client_host("client_a_operator").get("/schedules/").content.decode()
    assert listed(page) == {weekly.pk: "true", paused.pk: "false"}
    row = page.split(f'data-schedule="{weekly.pk}"')[1].split("</tr>")[0]
    assert "Weekly notice" in row and "Notice agent" in row and f"<code>{WORKFLOW}</code>" in row
    assert "ops@acme.test" in row and "60 min" in row and ">Enabled<" in row
    assert f'href="/tasks/{task.pk}/"' in row and 'data-status="queued"' in row
    next_run = fresh(world, weekly).next_run_at
    assert f'datetime="{timezone.localtime(next_run).isoformat()}"' in row
    quiet = page.split(f'data-schedule="{paused.pk}"')[1].split("</tr>")[0]
    assert ">Paused<" in quiet and "Not run yet" in quiet
    # Operators and viewers read; the buttons are the client admins'.
    assert "/pause/" not in page and "/delete/" not in page and "/schedules/new/" not in page
    admin_page = client_host("client_a_admin").get("/schedules/").content.decode()
    assert f'action="/schedules/{weekly.pk}/pause/"' in admin_page
    assert f'action="/schedules/{paused.pk}/resume/"' in admin_page


def test_the_tasks_page_links_to_the_schedules(world, client_host):
    page = client_host("client_a_viewer").get("/tasks/").content.decode()
    assert 'href="/schedules/"' in page


# --- Creating -------------------------------------------------------------------------------------


def test_the_form_offers_deployed_workflows_and_their_inputs(world, client_host):
    mail_agent(world)
    browser = client_host("client_a_admin")
    page = browser.get("/schedules/new/").content.decode()
    assert f'value="{choice(world)}"' in page and 'name="in_to"' not in page
    page = browser.get("/schedules/new/", {"workflow": choice(world)}).content.decode()
    names = re.findall(r'<input[^>]+name="(\w+)"', page)
    assert [n for n in names if n != "csrfmiddlewaretoken"] == [
        "workflow",
        "name",
        "in_to",
        "in_subject",
        "in_body",
        "every_minutes",
    ]
    # htmx swaps only the schedule card when the choice changes.
    fragment = browser.get(
        "/schedules/new/", {"workflow": choice(world)}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="schedule-card"' in fragment and "<html" not in fragment and 'name="every_minutes"' in fragment


def test_a_paused_agent_offers_nothing_to_schedule(world, client_host):
    mail_agent(world)
    with tenant_context(world.client_a):
        Deployment.objects.filter(name="Notice agent").update(status=Deployment.Status.PAUSED)
    browser = client_host("client_a_admin")
    assert "No workflows to schedule" in browser.get("/schedules/new/").content.decode()
    response = browser.post("/schedules/new/", form_data(world))
    assert response.status_code == 200 and "not one of a deployed agent" in response.content.decode()
    assert schedules(world) == []


def test_creating_a_schedule(world, client_host):
    browser = client_host("client_a_admin")
    response = browser.post("/schedules/new/", form_data(world))
    assert response.status_code == 302 and response["Location"] == "/schedules/"
    [schedule] = schedules(world)
    assert schedule.name == "Morning notice" and schedule.every_minutes == 1440 and schedule.enabled
    assert schedule.inputs == {"to": "ops@acme.test", "subject": "Good morning", "body": "Hello."}
    assert schedule.created_by == world.users["client_a_admin"]
    assert schedule_events(world) == ["schedule.created"]
    page = browser.get("/schedules/").content.decode()
    assert "Morning notice: Notice agent runs send_notice every 1440 minutes" in page


def test_service_refusals_are_shown_on_the_form_and_nothing_is_saved(world, client_host):
    a_schedule(world, "Morning notice")
    browser = client_host("client_a_admin")

    page = browser.post("/schedules/new/", form_data(world, every_minutes="3", name="Other")).content.decode()
    assert "at most once every 5 minutes" in field_error(page, "every_minutes")

    page = browser.post("/schedules/new/", form_data(world)).content.decode()
    assert field_error(page, "name") == "A schedule with this name exists."
    assert 'value="Good morning"' in page  # what was typed is kept

    page = browser.post("/schedules/new/", form_data(world, name="Other", in_body="   ")).content.decode()
    assert field_error(page, "in_body") == "This field is required."

    page = browser.post(
        "/schedules/new/", form_data(world, name="Other", every_minutes="often")
    ).content.decode()
    assert field_error(page, "every_minutes") == "Enter a whole number."

    page = browser.post("/schedules/new/", form_data(world, workflow="999999:send_notice")).content.decode()
    assert "not one of a deployed agent" in page

    assert [s.name for s in schedules(world)] == ["Morning notice"]
    assert schedule_events(world) == ["schedule.created"]


def test_operators_cannot_create_schedules(world, client_host):
    response = client_host("client_a_operator").post("/schedules/new/", form_data(world))
    assert response.status_code == 403 and schedules(world) == []


# --- Pause, resume, delete ------------------------------------------------------------------------


def test_pausing_and_resuming(world, client_host):
    schedule = a_schedule(world)
    browser = client_host("client_a_admin")
    response = browser.post(f"/schedules/{schedule.pk}/pause/")
    assert response.status_code == 302 and response["Location"] == "/schedules/"
    assert not fresh(world, schedule).enabled
    page = browser.get("/schedules/").content.decode()
    assert "Weekly notice is paused" in page and listed(page) == {schedule.pk: "false"}

    browser.post(f"/schedules/{schedule.pk}/resume/")
    assert fresh(world, schedule).enabled
    assert schedule_events(world) == ["schedule.created", "schedule.paused", "schedule.enabled"]

    # htmx posts are answered with HX-Redirect.
    response = browser.post(f"/schedules/{schedule.pk}/pause/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"] == "/schedules/"


def test_a_schedule_of_an_agent_no_longer_deployed_does_not_resume(world, client_host):
    schedule = a_schedule(world, enabled=False)
    with tenant_context(world.client_a):
        Deployment.objects.filter(pk=schedule.deployment_id).update(status=Deployment.Status.PAUSED)
    browser = client_host("client_a_admin")
    page = browser.post(f"/schedules/{schedule.pk}/resume/", follow=True).content.decode()
    assert "Notice agent is not deployed; the schedule can resume once it is." in page
    assert not fresh(world, schedule).enabled
    assert schedule_events(world) == ["schedule.created", "schedule.paused"]
    row = page.split(f'data-schedule="{schedule.pk}"')[1].split("</tr>")[0]
    assert "Paused" in row  # the agent's own status shows beside its name


def test_deleting_asks_first_and_keeps_the_tasks(world, client_host):
    schedule = a_schedule(world)
    services.schedules_run_due(client=world.client_a, now=timezone.now() + timedelta(seconds=1))
    browser = client_host("client_a_admin")
    listing = browser.get("/schedules/").content.decode()
    delete_form = re.search(rf'<form[^>]+action="/schedules/{schedule.pk}/delete/"[^>]*>', listing, re.S)
    assert delete_form and "data-confirm=" in delete_form.group(0)
    page = browser.get(f"/schedules/{schedule.pk}/delete/").content.decode()
    assert "Delete the schedule" in page and f'action="/schedules/{schedule.pk}/delete/"' in page
    assert fresh(world, schedule).enabled  # asking deletes nothing

    response = browser.post(f"/schedules/{schedule.pk}/delete/")
    assert response.status_code == 302 and schedules(world) == []
    with tenant_context(world.client_a):
        assert Task.objects.count() == 1
    assert schedule_events(world) == ["schedule.created", "schedule.deleted"]
    assert browser.post(f"/schedules/{schedule.pk}/delete/").status_code == 404


def test_pages_carry_no_inline_script_or_style(world, client_host):
    schedule = a_schedule(world)
    browser = client_host("client_a_admin")
    for url in (
        "/schedules/",
        f"/schedules/new/?workflow={choice(world)}",
        f"/schedules/{schedule.pk}/delete/",
    ):
        page = browser.get(url).content.decode()
        assert " style=" not in page and "<style" not in page, url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), url
        assert not re.search(r"\son[a-z]+=", page), url


def test_another_clients_schedule_is_not_found(world, client_host):
    """Client B's schedule ids mean nothing on client A's host (its schema has no such row)."""
    mail_agent(world)
    with tenant_context(world.client_a):
        agent = Deployment.objects.get(name="Notice agent")
    with tenant_context(world.client_b):
        b_agent = Deployment.objects.create(
            name="B agent", variant_id=agent.variant_id, version_id=agent.version_id, status="deployed"
        )
    foreign = services.schedule_create(
        client=world.client_b,
        deployment=b_agent,
        name="B schedule",
        workflow=WORKFLOW,
        inputs=NOTICE_INPUTS,
        every_minutes=30,
        actor=None,
    )
    browser = client_host("client_a_admin")
    assert "B schedule" not in browser.get("/schedules/").content.decode()
    for action in ("pause", "resume", "delete"):
        assert browser.post(f"/schedules/{foreign.pk}/{action}/").status_code == 404
    assert browser.get(f"/schedules/{foreign.pk}/delete/").status_code == 404
    [kept] = schedules(world, world.client_b)
    assert kept.enabled and kept.name == "B schedule"
