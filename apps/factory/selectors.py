"""Reads for the Agent Factory: variants, their versions, what is behind its parent, policy packs.

The factory is vendor-wide (public schema): every vendor platform admin sees
all of it, so these selectors take no actor; the portals and API check the
actor's role before calling them. Deployment counts live in the clients'
schemas and are computed by the deployments app.
"""

from __future__ import annotations

from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from .models import AgentVariant, AgentVersion, PolicyPack, PolicyPackVersion

PUBLISHED = AgentVersion.Status.PUBLISHED
DRAFT = AgentVersion.Status.DRAFT
NEWEST_FIRST = ("-major", "-minor", "-patch")


def variant_list() -> QuerySet[AgentVariant]:
    """Every variant, the base ones first, annotated with `latest_version` (latest published, or None)
    and `draft_version` (its draft's version, or None)."""
    published = AgentVersion.objects.filter(variant=OuterRef("pk"), status=PUBLISHED).order_by(*NEWEST_FIRST)
    draft = AgentVersion.objects.filter(variant=OuterRef("pk"), status=DRAFT)
    return (
        AgentVariant.objects.select_related("template", "parent")
        .annotate(
            latest_version=Subquery(published.values("version")[:1]),
            draft_version=Subquery(draft.values("version")[:1]),
        )
        .order_by(F("parent_id").asc(nulls_first=True), "name")
    )


def latest_published(variant: AgentVariant) -> AgentVersion | None:
    """The variant's current version: its highest published one."""
    return variant.versions.filter(status=PUBLISHED).order_by(*NEWEST_FIRST).first()


def latest_version(variant: AgentVariant) -> AgentVersion | None:
    """The variant's highest version, draft or published (a draft is always above every published one)."""
    return variant.versions.order_by(*NEWEST_FIRST).first()


def draft_of(variant: AgentVariant) -> AgentVersion | None:
    """The variant's draft, if it has one (there is at most one)."""
    return variant.versions.filter(status=DRAFT).first()


def version_list(*, variant: AgentVariant) -> QuerySet[AgentVersion]:
    """The variant's versions, newest first, with what they derive from and build on."""
    return variant.versions.select_related("author", "derived_from", "base_version__variant").order_by(
        *NEWEST_FIRST
    )


def access_variant(key_or_pk: str | int) -> AgentVariant:
    """The variant with this key (or primary key); 404 if there is none."""
    lookup = {"key": key_or_pk}
    if isinstance(key_or_pk, int) or (isinstance(key_or_pk, str) and key_or_pk.isdigit()):
        lookup = {"pk": int(key_or_pk)}
    variant = AgentVariant.objects.select_related("template", "parent").filter(**lookup).first()
    if variant is None:
        raise Http404("No such agent variant.")
    return variant


def access_version(*, variant: AgentVariant, version: str) -> AgentVersion:
    """The variant's version with this number (e.g. "1.2.0"), with its policy pack version; 404 if none."""
    found = (
        variant.versions.select_related(
            "variant", "author", "derived_from", "base_version__variant", "policy_pack_version__pack"
        )
        .filter(version=version)
        .first()
    )
    if found is None:
        raise Http404("No such version.")
    return found


def variants_behind() -> list[tuple[AgentVariant, AgentVersion, AgentVersion]]:
    """Variants whose parent published a newer version than the one they build on.

    Each entry is (variant, the parent version its latest published version builds
    on, the parent's latest published version). Variants without a recorded base
    version are left out: there is nothing to merge from.
    """
    latest: dict[int, AgentVersion] = {}
    for version in (
        AgentVersion.objects.filter(status=PUBLISHED)
        .select_related("base_version")
        .order_by("variant_id", *NEWEST_FIRST)
    ):
        latest.setdefault(version.variant_id, version)
    behind = []
    for variant in (
        AgentVariant.objects.filter(parent__isnull=False).select_related("parent").order_by("name")
    ):
        own = latest.get(variant.pk)
        parents = latest.get(variant.parent_id) if variant.parent_id is not None else None
        if own is None or parents is None or own.base_version is None:
            continue
        base = own.base_version
        if base.variant_id == variant.parent_id and parents.semver > base.semver:
            behind.append((variant, base, parents))
    return behind


def published_versions_below(*, variant: AgentVariant, version: AgentVersion) -> QuerySet[AgentVersion]:
    """The variant's published versions older than `version`, newest first (rollout candidates)."""
    major, minor, patch = version.semver
    older = (
        Q(major__lt=major) | Q(major=major, minor__lt=minor) | Q(major=major, minor=minor, patch__lt=patch)
    )
    return variant.versions.filter(older, status=PUBLISHED).order_by(*NEWEST_FIRST)


def policy_pack_list() -> QuerySet[PolicyPack]:
    """Every policy pack, annotated with `latest_version` (its newest published version number)."""
    newest = PolicyPackVersion.objects.filter(pack=OuterRef("pk"), status=PUBLISHED).order_by(
        "-created_at", "-pk"
    )
    return PolicyPack.objects.annotate(latest_version=Subquery(newest.values("version")[:1])).order_by("name")


def policy_pack_latest(pack: PolicyPack) -> PolicyPackVersion | None:
    """The pack's highest published version."""
    versions = list(pack.versions.filter(status=PUBLISHED))
    return max(versions, key=lambda v: _semver(v.version), default=None)


def policy_pack_get(key: str) -> PolicyPack | None:
    """The pack with this key, or None."""
    return PolicyPack.objects.filter(key=key).first()


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
