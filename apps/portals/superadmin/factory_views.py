"""Super-admin portal, Agent Factory: variants, versions, the spec editor, diffs, rollback, rebase."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.decorators import vendor_portal
from apps.core.exceptions import ApplicationError
from apps.deployments.selectors import deployment_counts_by_variant
from apps.factory import selectors, services
from apps.factory.diff import spec_diff
from apps.factory.models import AgentVariant
from apps.factory.spec import SpecError
from apps.factory.yaml_spec import parse_spec_yaml, spec_to_yaml

from .forms import RebaseResolutionForm, VariantCloneForm, VersionForm
from .views import VendorRequest


def _crumbs(*trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [("Agent Factory", reverse("superadmin:factory")), *trail]


def _variant_crumb(variant: AgentVariant) -> tuple[str, str]:
    return (variant.name, reverse("superadmin:variant_detail", args=[variant.key]))


@vendor_portal
@require_safe
def factory(request: VendorRequest) -> HttpResponse:
    """Factory home: every variant with its latest versions, deployments and whether it is behind its base."""
    counts = deployment_counts_by_variant()
    behind = selectors.variants_behind()
    behind_ids = {variant.pk for variant, _old, _new in behind}
    # variant_list() annotates each variant with its latest published and its draft version numbers.
    rows = [
        {"variant": variant, "deployments": counts.get(variant.pk, 0), "behind": variant.pk in behind_ids}
        for variant in selectors.variant_list()
    ]
    packs = [(pack, selectors.policy_pack_latest(pack)) for pack in selectors.policy_pack_list()]
    context = {"rows": rows, "behind": behind, "packs": packs}
    return render(request, "portals/superadmin/variant_list.html", context)


@vendor_portal
@require_safe
def variant_detail(request: VendorRequest, key: str) -> HttpResponse:
    variant = selectors.access_variant(key)
    versions = list(selectors.version_list(variant=variant))
    # Each version is compared with the one listed below it (the previous one).
    history = list(zip(versions, [*versions[1:], None], strict=True))
    published = selectors.latest_published(variant)
    context = {
        "variant": variant,
        "history": history,
        "published": published,
        "draft": next((v for v in versions if not v.is_published), None),
        "is_behind": any(v.pk == variant.pk for v, _old, _new in selectors.variants_behind()),
        "deployments": deployment_counts_by_variant().get(variant.pk, 0),
        "crumbs": _crumbs((variant.name, None)),
    }
    return render(request, "portals/superadmin/variant_detail.html", context)


@vendor_portal
@require_http_methods(["GET", "POST"])
def variant_clone(request: VendorRequest, key: str) -> HttpResponse:
    source = selectors.access_variant(key)
    form = VariantCloneForm(
        request.POST if request.method == "POST" else None,
        initial={"domain": source.domain, "description": source.description},
    )
    if request.method == "POST" and form.is_valid():
        try:
            variant = services.variant_clone(source=source, **form.cleaned_data, actor=request.user)
        except SpecError as error:
            # The source's spec no longer passes today's checks: clone it after publishing a fix.
            details = "; ".join(f"{e['path'] or '(spec)'}: {e['message']}" for e in error.errors)
            form.add_error(None, f"{source.name}'s published spec is not valid any more: {details}")
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, f"“{variant.name}” cloned from {source.name}.")
            return redirect("superadmin:variant_detail", key=variant.key)
    context = {"form": form, "variant": source, "crumbs": _crumbs(_variant_crumb(source), ("Clone", None))}
    return render(request, "portals/superadmin/variant_form.html", context)


@vendor_portal
@require_http_methods(["GET", "POST"])
def version_edit(request: VendorRequest, key: str) -> HttpResponse:
    """The new-version editor: save the draft (with line-level errors) or save and publish it."""
    variant = selectors.access_variant(key)
    draft = selectors.draft_of(variant)
    published = selectors.latest_published(variant)
    spec_errors: list[dict] = []
    entries = None  # the draft's changes, shown beside the editor until the first live preview
    if request.method == "POST":
        form = VersionForm(request.POST)
        if form.is_valid():
            publish = request.POST.get("action") == "publish"
            # Publishing saves the text first (one transaction): what is published is what is on screen.
            save = services.version_save_and_publish if publish else services.version_save_draft
            try:
                saved = save(variant=variant, **form.cleaned_data, actor=request.user)
            except SpecError as error:
                spec_errors = error.errors
                form.add_error("spec", "The spec has errors; see the list beside it.")
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                if publish:
                    messages.success(request, f"{variant.name} {saved.version} is published.")
                    return redirect("superadmin:version_detail", key=variant.key, version=saved.version)
                messages.success(request, f"Draft {saved.version} saved. Publish it when it is ready.")
                return redirect("superadmin:version_edit", key=variant.key)
            draft = selectors.draft_of(variant)
    else:
        source = draft or published
        if draft is not None:
            entries = spec_diff(published.spec if published else {}, draft.spec)
        form = VersionForm(
            initial={
                "spec": spec_to_yaml(source.spec) if source else "",
                "version": draft.version if draft else services.next_minor(published),
                "changelog": draft.changelog if draft else "",
            }
        )
    context = {
        "variant": variant,
        "form": form,
        "draft": draft,
        "published": published,
        "spec_errors": spec_errors,
        "entries": entries,
        "crumbs": _crumbs(_variant_crumb(variant), ("New version", None)),
    }
    return render(request, "portals/superadmin/version_form.html", context)


@vendor_portal
@require_POST
def version_preview(request: VendorRequest, key: str) -> HttpResponse:
    """The editor's live preview: the diff of the typed spec against the latest published one. No writes."""
    variant = selectors.access_variant(key)
    published = selectors.latest_published(variant)
    context: dict = {"variant": variant, "published": published, "entries": [], "spec_errors": []}
    try:
        spec = parse_spec_yaml(request.POST.get("spec", ""))
    except SpecError as error:
        context["spec_errors"] = error.errors
    else:
        context["entries"] = spec_diff(published.spec if published else {}, spec)
    return render(request, "portals/superadmin/version_form.html#preview", context)


@vendor_portal
@require_POST
def version_discard(request: VendorRequest, key: str) -> HttpResponse:
    variant = selectors.access_variant(key)
    draft = selectors.draft_of(variant)
    if draft is None:
        messages.info(request, f"{variant.name} has no draft to discard.")
        return redirect("superadmin:variant_detail", key=variant.key)
    try:
        services.version_discard(version=draft, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("superadmin:version_edit", key=variant.key)
    messages.success(request, f"Draft {draft.version} discarded.")
    return redirect("superadmin:variant_detail", key=variant.key)


@vendor_portal
@require_safe
def version_detail(request: VendorRequest, key: str, version: str) -> HttpResponse:
    variant = selectors.access_variant(key)
    obj = selectors.access_version(variant=variant, version=version)
    context = {
        "variant": variant,
        "version": obj,
        "spec_yaml": spec_to_yaml(obj.spec),
        "crumbs": _crumbs(_variant_crumb(variant), (obj.version, None)),
    }
    return render(request, "portals/superadmin/version_detail.html", context)


@vendor_portal
@require_safe
def version_diff(request: VendorRequest, key: str) -> HttpResponse:
    """Two versions side by side: the changed paths, then both specs as YAML."""
    variant = selectors.access_variant(key)
    versions = list(selectors.version_list(variant=variant))
    if not versions:
        raise Http404("This variant has no versions.")
    # Without parameters: the newest version against the one before it (or itself, when it is the only one).
    newest, previous = versions[0], versions[min(1, len(versions) - 1)]
    old = selectors.access_version(variant=variant, version=request.GET.get("from") or previous.version)
    new = selectors.access_version(variant=variant, version=request.GET.get("to") or newest.version)
    context = {
        "variant": variant,
        "versions": versions,
        "old": old,
        "new": new,
        "entries": spec_diff(old.spec, new.spec),
        "old_yaml": spec_to_yaml(old.spec),
        "new_yaml": spec_to_yaml(new.spec),
        "crumbs": _crumbs(_variant_crumb(variant), ("Diff", None)),
    }
    return render(request, "portals/superadmin/version_diff.html", context)


@vendor_portal
@require_http_methods(["GET", "POST"])
def version_rollback(request: VendorRequest, key: str, version: str) -> HttpResponse:
    """Make an earlier spec current again, as a new version (history is never rewritten)."""
    variant = selectors.access_variant(key)
    target = selectors.access_version(variant=variant, version=version)
    if request.method == "POST":
        try:
            created = services.version_rollback(variant=variant, to_version=target, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        except SpecError as error:
            # An old spec that today's rules reject: say why instead of failing.
            messages.error(request, f"{target.version} cannot be made current again: {error}")
        else:
            messages.success(
                request, f"Rolled back: {created.version} has the spec of {target.version} and is current."
            )
        return redirect("superadmin:variant_detail", key=variant.key)
    current = selectors.latest_published(variant)
    context = {
        "variant": variant,
        "target": target,
        "current": current,
        "entries": spec_diff(current.spec, target.spec) if current else [],
        "crumbs": _crumbs(_variant_crumb(variant), (f"Roll back to {target.version}", None)),
    }
    return render(request, "portals/superadmin/version_rollback.html", context)


@vendor_portal
@require_http_methods(["GET", "POST"])
def variant_rebase(request: VendorRequest, key: str) -> HttpResponse:
    """Three-way merge of the base's new version onto this variant; conflicts are resolved path by path."""
    variant = selectors.access_variant(key)
    try:
        plan = services.variant_rebase(variant=variant, actor=request.user)
    except ApplicationError as error:
        # Up to date, a base agent, or a draft in the way: the page says why (nothing to resolve).
        plan, refusal = None, error.message
    else:
        refusal = ""
    # The page posts the base version its plan was made for; if the parent published again since,
    # the person chose for values they never saw: show the new plan instead of applying the choices.
    stale = ""
    posted = request.POST if request.method == "POST" else None
    if posted is not None and plan is not None and posted.get("base_version") != str(plan.new_base.pk):
        posted, stale = None, "The base changed since you opened this page; review the new plan."
    form = RebaseResolutionForm(posted, conflicts=plan.conflicts if plan else ())
    if posted is not None and plan is not None and form.is_valid():
        try:
            draft = services.variant_rebase_apply(
                variant=variant,
                resolutions=form.resolutions(),
                expected_base_id=plan.new_base.pk,
                actor=request.user,
            )
        except SpecError as error:
            form.add_error(None, "; ".join(f"{e['path'] or '(spec)'}: {e['message']}" for e in error.errors))
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request, f"Draft {draft.version} rebased on {plan.new_base.version}. Review it and publish."
            )
            return redirect("superadmin:version_edit", key=variant.key)
    context = {
        "variant": variant,
        "plan": plan,
        "refusal": refusal,
        "stale": stale,
        "form": form,
        # What the rebase brings into the variant (conflicting paths keep ours until resolved).
        "entries": spec_diff(plan.current.spec, plan.merged) if plan and plan.current else [],
        "crumbs": _crumbs(_variant_crumb(variant), ("Rebase", None)),
    }
    return render(request, "portals/superadmin/variant_rebase.html", context)
