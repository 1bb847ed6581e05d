"""Permission matrix: the audit trail — the client dashboard's audit log, export and verify, its API, and
the vendor's per-client counts.

Client A's host: its three roles read, export and verify (viewers are the auditor role); client B's
admin (the foreign tenant), partner A and B staff (its own and a foreign partner) and the vendor get 403,
anonymous goes to the login page (the API: 403). The vendor's counts page is the vendor's only.
Each kwargs helper appends events to client A's trail inside the test's transaction, so a page has
rows to show and a refused POST has something it must not change.
"""

from django_tenants.utils import tenant_context

from apps.audit.services import audit_append
from tests.matrix.base import CLIENT_A, FORBIDDEN, Case, client_a_all, only, vendor_only


def some_events(w, **extra) -> dict:
    """Two events in client A's trail (a task and its decision)."""
    with tenant_context(w.client_a):
        audit_append(kind="task.created", actor="client.a.operator@example.com", trace_id="tr-matrix")
        audit_append(kind="decision", actor="agent:Matrix", trace_id="tr-matrix", effect="deny")
    return extra


api_members = only(CLIENT_A, anonymous=FORBIDDEN)

CASES = [
    # Client dashboard (client A's host)
    Case("tenant:dashboard:audit_list", some_events, host="client_a", get=client_a_all),
    Case(
        "tenant:dashboard:audit_export",
        lambda w: some_events(w, fmt="jsonl"),
        host="client_a",
        get=client_a_all,
    ),
    Case(
        "tenant:dashboard:audit_export",
        lambda w: some_events(w, fmt="csv"),
        host="client_a",
        get=client_a_all,
    ),
    Case("tenant:dashboard:audit_verify", some_events, host="client_a", post=client_a_all),
    # Super-admin portal: counts only
    Case("public:superadmin:audit_counts", get=vendor_only),
    # API (client A's host)
    Case("tenant:api:audit_event_list", some_events, host="client_a", get=api_members),
    Case("tenant:api:audit_export", some_events, host="client_a", get=api_members),
    Case("tenant:api:audit_verify", some_events, host="client_a", post=api_members),
]
