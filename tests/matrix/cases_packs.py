"""Permission matrix: the super-admin policy-pack pages (vendor platform admins only)."""

from apps.factory.models import PolicyPackVersion
from apps.governance.packs import rules_to_yaml
from tests.matrix.base import Case, vendor_only

PACK = "itsm-baseline"


def _publishable(w) -> dict:
    """A valid new version of the pack: publishing it as a refused persona would add a version."""
    rules = PolicyPackVersion.objects.get(pack__key=PACK, version="1.0.0").rules
    return {
        "rules": rules_to_yaml(rules[:-1]),
        "version": "1.1.0",
        "changelog": "Refused personas publish nothing.",
    }


CASES = [
    Case("public:superadmin:pack_detail", lambda w: {"key": PACK}, get=vendor_only),
    Case(
        "public:superadmin:pack_version_detail",
        lambda w: {"key": PACK, "version": "1.0.0"},
        get=vendor_only,
    ),
    Case(
        "public:superadmin:pack_version_new",
        lambda w: {"key": PACK},
        get=vendor_only,
        post=vendor_only,
        data=_publishable,
    ),
    Case(
        "public:superadmin:pack_version_check", lambda w: {"key": PACK}, post=vendor_only, data=_publishable
    ),
]
