"""Client dashboard: the audit log — every event of the client's tamper-evident trail, its export and a check.

Every member of the client reads, exports and verifies it (viewers are the auditor role);
`@client_portal` refuses anyone else, vendor and partner staff included. Nothing here writes.
"""

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.decorators import client_portal
from apps.audit import selectors as audit_selectors
from apps.audit import services as audit_services
from apps.audit.forms import KINDS_LIST_ID, AuditFilterForm
from apps.core.htmx import redirect_after_post, render_page
from apps.deployments import selectors as deployment_selectors

from .views import ClientRequest, _crumbs

PAGE_SIZE = 50
CONTENT_TYPES = {"jsonl": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
TEMPLATE = "portals/dashboard/audit_list.html"


def _filter_form(request: ClientRequest) -> tuple[AuditFilterForm, dict[int, str]]:
    """The filters from the query string, and the client's agents by id (names for the table)."""
    names = {d.pk: d.name for d in deployment_selectors.deployment_list(client=request.tenant)}
    return AuditFilterForm(request.GET, deployments=list(names.items())), names


def _verify_message(result: audit_services.VerifyResult) -> str:
    if result.ok:
        return f"Chain intact — {result.checked} events"
    return f"Broken at event #{result.first_broken_seq}: {result.reason}"


@client_portal()
@require_safe
def audit_list(request: ClientRequest) -> HttpResponse:
    """The trail, newest first, filtered by date range, trace, agent, effect and kind; export and verify."""
    form, names = _filter_form(request)
    filters = form.filters()
    page_obj = audit_selectors.audit_event_page(
        client=request.tenant, filters=filters, page=request.GET.get("page"), per_page=PAGE_SIZE
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page_obj": page_obj,
        "rows": [(event, names.get(event.deployment_id)) for event in page_obj],
        "filtered": bool(filters),
        "export_query": query.urlencode(),
        "known_kinds": audit_selectors.KNOWN_KINDS,
        "kinds_list_id": KINDS_LIST_ID,
        "crumbs": _crumbs(("Audit log", None)),
    }
    return render_page(request, TEMPLATE, context)


@client_portal()
@require_safe
def audit_export(request: ClientRequest, fmt: str) -> HttpResponse:
    """The filtered events as a JSONL or CSV download, oldest first, streamed batch by batch."""
    if fmt not in audit_services.EXPORT_FORMATS:
        raise Http404("Export as JSONL or CSV.")
    form, _names = _filter_form(request)
    filters = form.filters()
    if form.errors:
        # Never a silently wider export than the filters asked for.
        messages.error(request, "Fix the filters before exporting: " + " ".join(_form_errors(form)))
        return redirect(f"{reverse('dashboard:audit_list')}?{request.GET.urlencode()}")
    chunks = audit_services.audit_export_client(client=request.tenant, fmt=fmt, filters=filters)
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPES[fmt])
    filename = f"audit-{request.tenant.slug}-{timezone.localdate().isoformat()}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The portal decorators are typed for HttpResponse; a streamed one is served the same way.
    return response  # type: ignore[return-value]


def _form_errors(form: AuditFilterForm) -> list[str]:
    labels = {name: f"{field.label}: " for name, field in form.fields.items()}
    return [f"{labels.get(name, '')}{error}" for name, errors in form.errors.items() for error in errors]


@client_portal()
@require_POST
def audit_verify(request: ClientRequest) -> HttpResponse:
    """Walk the whole chain; htmx swaps in the result, a plain POST shows it as a message on the log."""
    result = audit_services.audit_verify_client(client=request.tenant)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.boosted:
        return render_page(
            request,
            TEMPLATE,
            {"verify": result, "verify_message": _verify_message(result)},
            partial="verify_result",
        )
    if result.ok:
        messages.success(request, _verify_message(result))
    else:
        messages.error(request, _verify_message(result))
    return redirect_after_post(request, reverse("dashboard:audit_list"))
