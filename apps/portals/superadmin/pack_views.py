"""Super-admin portal, policy packs: a pack and its versions, and the editor that publishes a new version.

The factory page lists the packs. A pack's rules are edited as YAML; "Check" validates them as the
governance engine will run them (locked vendor rules) and shows the changes since the latest version,
without publishing; publishing makes a new, immutable pack version. Agent versions pin the pack
version they were published with, so a new pack version reaches agents with their next version.
"""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.decorators import vendor_portal
from apps.core.exceptions import ApplicationError
from apps.factory import selectors as factory_selectors
from apps.factory import services as factory_services
from apps.factory.models import PolicyPack, PolicyPackVersion
from apps.factory.spec import SpecError
from apps.governance import packs
from apps.governance.diff import rules_diff
from apps.governance.rules import RulesetError

from .forms import PolicyPackVersionForm
from .views import VendorRequest


def _crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Agent Factory", reverse("superadmin:factory")), *trail]


def _pack_crumb(pack: PolicyPack) -> tuple[str, str]:
    return (pack.name, reverse("superadmin:pack_detail", args=[pack.key]))


def _next_minor(latest: PolicyPackVersion | None) -> str:
    if latest is None:
        return "1.0.0"
    major, minor, _patch = factory_services.parse_semver(latest.version)
    return f"{major}.{minor + 1}.0"


@vendor_portal
@require_safe
def pack_detail(request: VendorRequest, key: str) -> HttpResponse:
    """A pack: its versions, the latest version's rules, the variants that name it and who published what."""
    pack = packs.access_policy_pack(key)
    context = {
        "pack": pack,
        "versions": packs.pack_versions(pack),
        "latest": factory_selectors.policy_pack_latest(pack),
        "usage": packs.policy_pack_usage(pack),
        "history": packs.policy_pack_history(pack),
        "crumbs": _crumbs((pack.name, None)),
    }
    return render(request, "portals/superadmin/packs/pack_detail.html", context)


@vendor_portal
@require_safe
def pack_version_detail(request: VendorRequest, key: str, version: str) -> HttpResponse:
    """One pack version: its rules, its changelog and what changed since the version before it."""
    pack = packs.access_policy_pack(key)
    obj = packs.pack_version_get(pack, version)
    versions = packs.pack_versions(pack)
    position = next(i for i, v in enumerate(versions) if v.pk == obj.pk)
    previous = versions[position + 1] if position + 1 < len(versions) else None
    context = {
        "pack": pack,
        "version": obj,
        "previous": previous,
        "is_latest": position == 0,
        "changes": rules_diff(previous.rules if previous else [], obj.rules),
        "rules_yaml": packs.rules_to_yaml(obj.rules),
        "crumbs": _crumbs(_pack_crumb(pack), (obj.version, None)),
    }
    return render(request, "portals/superadmin/packs/pack_version_detail.html", context)


@vendor_portal
@require_http_methods(["GET", "POST"])
def pack_version_new(request: VendorRequest, key: str) -> HttpResponse:
    """The new-version editor: the rules as YAML, checked as governance rules, then published."""
    pack = packs.access_policy_pack(key)
    latest = factory_selectors.policy_pack_latest(pack)
    errors: list[dict] = []
    if request.method == "POST":
        form = PolicyPackVersionForm(request.POST)
        if form.is_valid():
            try:
                published = packs.policy_pack_publish_checked(
                    pack_key=pack.key, **form.cleaned_data, actor=request.user
                )
            except RulesetError as error:
                errors = error.errors
                form.add_error("rules", "The rules have errors; see the list beside them.")
            except SpecError as error:
                errors = error.errors
                form.add_error("rules", "The rules have errors; see the list beside them.")
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, f"{pack.name} {published.version} is published.")
                return redirect("superadmin:pack_version_detail", key=pack.key, version=published.version)
    else:
        form = PolicyPackVersionForm(
            initial={
                "rules": packs.rules_to_yaml(latest.rules) if latest else "rules: []\n",
                "version": _next_minor(latest),
            }
        )
    context = {
        "pack": pack,
        "latest": latest,
        "form": form,
        "errors": errors,
        "changes": None,
        "crumbs": _crumbs(_pack_crumb(pack), ("New version", None)),
    }
    return render(request, "portals/superadmin/packs/pack_version_form.html", context)


@vendor_portal
@require_POST
def pack_version_check(request: VendorRequest, key: str) -> HttpResponse:
    """The editor's Check: every error (with its rule path and line), or the changes since the latest
    version. Nothing is written."""
    pack = packs.access_policy_pack(key)
    check = packs.policy_pack_check(
        pack=pack, rules=request.POST.get("rules", ""), version=request.POST.get("version") or None
    )
    context = {
        "pack": pack,
        "latest": check.latest,
        "errors": check.errors,
        "changes": None if check.errors else check.changes,
        "checked": True,
    }
    return render(request, "portals/superadmin/packs/pack_version_form.html#preview", context)
