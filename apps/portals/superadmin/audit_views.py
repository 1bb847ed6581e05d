"""Super-admin portal: how many audit events each client recorded per day and kind — counts, never contents.

The counts are public rows filled by the `audit_counts_aggregate` task from each client's trail; this
page never enters a client's schema.
"""

from datetime import timedelta

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from apps.accounts.access import client_list
from apps.accounts.decorators import vendor_portal
from apps.audit import selectors as audit_selectors
from apps.core.forms import StyledForm
from apps.core.pagination import paginate
from apps.tenancy.models import Client

from .views import VendorRequest

PERIODS = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days")]
DEFAULT_DAYS = 7


class AuditCountFilterForm(StyledForm):
    client = forms.ModelChoiceField(queryset=Client.objects.none(), required=False, empty_label="All clients")
    days = forms.TypedChoiceField(choices=PERIODS, coerce=int, required=False, empty_value=None)

    def __init__(self, *args, clients, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["client"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = clients


@vendor_portal
@require_safe
def audit_counts(request: VendorRequest) -> HttpResponse:
    """Per client and day: events in its audit trail, by kind (refreshed every 15 minutes)."""
    form = AuditCountFilterForm(request.GET, clients=client_list(actor=request.user).order_by("name"))
    cleaned = form.cleaned_data if form.is_valid() else {}
    days = cleaned.get("days") or DEFAULT_DAYS
    client = cleaned.get("client")
    since = timezone.now().date() - timedelta(days=days - 1)
    client_id = client.pk if client else None
    context = {
        "form": form,
        "days": days,
        "since": since,
        "page_obj": paginate(request, audit_selectors.audit_count_days(since=since, client_id=client_id)),
        "totals": audit_selectors.audit_count_totals(since=since, client_id=client_id),
    }
    return render(request, "portals/superadmin/audit_counts.html", context)
