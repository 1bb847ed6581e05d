"""API v1, Agent Factory: a version names the policy pack version it was published with."""

from apps.factory import services
from apps.factory.models import AgentVersion, PolicyPackVersion


def test_version_detail_names_its_pinned_policy_pack_version(world, platform):
    vendor = world.users["vendor_admin"]
    first = PolicyPackVersion.objects.get(pack__key="itsm-baseline", version="1.0.0")
    services.policy_pack_publish(
        pack_key="itsm-baseline", name=first.pack.name, version="1.1.0", rules=first.rules, changelog="New."
    )
    # Published before the pack's 1.1.0: it keeps 1.0.0.
    body = platform("partner_a_admin").get("/api/v1/variants/itsm/versions/1.0.0").json()
    assert body["policy_pack_version"] == "1.0.0" and body["spec"]["policy_pack"] == "itsm-baseline"
    v100 = AgentVersion.objects.get(variant__key="itsm", version="1.0.0")
    draft = services.version_save_draft(
        variant=v100.variant, spec=v100.spec, version="1.1.0", changelog="Same spec.", actor=vendor
    )
    # A draft is pinned when it is published.
    admin = platform("vendor_admin")
    assert admin.get("/api/v1/variants/itsm/versions/1.1.0").json()["policy_pack_version"] is None
    services.version_publish(version=draft, actor=vendor)
    assert admin.get("/api/v1/variants/itsm/versions/1.1.0").json()["policy_pack_version"] == "1.1.0"
