"""Writes for the Agent Factory: clone variants, edit and publish versions, roll back, rebase, policy packs.

History is never rewritten: a published version is immutable (the services
refuse it and a database trigger rejects any change), so a rollback or a rebase
makes a *new* version. Each variant has at most one draft, always numbered above
every published version. Callers check that the actor is a vendor platform admin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.exceptions import ApplicationError

from . import selectors
from .diff import Conflict, apply_resolutions, three_way_merge
from .models import SEMVER_RE, AgentTemplate, AgentVariant, AgentVersion, PolicyPack, PolicyPackVersion
from .policy import validate_rules
from .spec import SpecError, validate_spec
from .yaml_spec import line_of_path, parse_spec_yaml

PUBLISHED = AgentVersion.Status.PUBLISHED
DRAFT = AgentVersion.Status.DRAFT


# ---------------------------------------------------------------- helpers


def parse_semver(version: str, *, field: str = "version") -> tuple[int, int, int]:
    """Parse "1.2.0" into (1, 2, 0); ApplicationError(field=…) when it is not MAJOR.MINOR.PATCH."""
    version = (version or "").strip()
    if not re.match(SEMVER_RE, version):
        raise ApplicationError("Use a semantic version: MAJOR.MINOR.PATCH, e.g. 1.2.0.", field=field)
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


def next_minor(version: AgentVersion | None) -> str:
    """The next minor version after this one (1.2.3 → 1.3.0); 1.0.0 when there is none."""
    if version is None:
        return "1.0.0"
    return f"{version.major}.{version.minor + 1}.0"


def _lock(variant: AgentVariant) -> AgentVariant:
    # Serialises version writes per variant: numbering and "one draft" are decided under this lock.
    return AgentVariant.objects.select_for_update().get(pk=variant.pk)


def _check_new_number(variant: AgentVariant, version: str, *, draft: AgentVersion | None = None) -> tuple:
    """The version number must be new and above every published version of the variant."""
    semver = parse_semver(version)
    latest = selectors.latest_published(variant)
    if latest is not None and semver <= latest.semver:
        raise ApplicationError(
            f"The version must be above the latest published version, {latest.version}.", field="version"
        )
    taken = variant.versions.filter(version=version.strip())
    if draft is not None:
        taken = taken.exclude(pk=draft.pk)
    if taken.exists():
        raise ApplicationError(f"Version {version} already exists.", field="version")
    return semver


def _validated(spec: dict | str) -> dict:
    """Validate a spec given as a dict or YAML text; also check that the policy pack it names exists."""
    text = spec if isinstance(spec, str) else None
    normalised = parse_spec_yaml(spec) if isinstance(spec, str) else validate_spec(spec)
    pack = normalised.get("policy_pack")
    if pack and not PolicyPack.objects.filter(key=pack).exists():
        line = line_of_path(text, "policy_pack") if text is not None else None
        raise SpecError([{"path": "policy_pack", "message": f"unknown policy pack '{pack}'", "line": line}])
    return normalised


def _pack_version_for(spec: dict) -> PolicyPackVersion | None:
    """The latest published version of the policy pack the spec names (None when it names none).

    Called when a version is published: the version is pinned to it, so a later
    pack version never changes the rules an already published version ships with.
    """
    pack = selectors.policy_pack_get(spec["policy_pack"]) if spec.get("policy_pack") else None
    return selectors.policy_pack_latest(pack) if pack is not None else None


def _new_version(
    *,
    variant: AgentVariant,
    version: str,
    spec: dict,
    changelog: str,
    status: str,
    actor,
    derived_from: AgentVersion | None,
    base_version: AgentVersion | None,
    policy_pack_version: PolicyPackVersion | None = None,
) -> AgentVersion:
    major, minor, patch = parse_semver(version)
    created = AgentVersion(
        variant=variant,
        version=version.strip(),
        major=major,
        minor=minor,
        patch=patch,
        status=status,
        spec=spec,
        changelog=changelog,
        author=actor,
        derived_from=derived_from,
        base_version=base_version,
        policy_pack_version=policy_pack_version,
        published_at=timezone.now() if status == PUBLISHED else None,
    )
    created.full_clean()
    created.save()
    return created


# ---------------------------------------------------------------- variants


@transaction.atomic
def variant_create(
    *,
    template: AgentTemplate,
    key: str,
    name: str,
    spec: dict | str,
    domain: str = "",
    description: str = "",
    parent: AgentVariant | None = None,
    base_version: AgentVersion | None = None,
    version: str = "1.0.0",
    changelog: str = "Initial release.",
    actor,
) -> AgentVariant:
    """Create a variant with its own spec, published at once as its first version.

    For the built-in agents (seed) and for a new base agent; a domain variant made
    from an existing one is `variant_clone`. `base_version` is the parent's version
    the spec builds on (for rebase).
    """
    if parent is not None and (base_version is None or base_version.variant_id != parent.pk):
        raise ApplicationError("A variant with a parent needs a base version of that parent.")
    if base_version is not None and not base_version.is_published:
        raise ApplicationError("The base version must be published.")
    variant = _variant(
        template=template,
        key=key,
        name=name,
        domain=domain,
        description=description,
        parent=parent,
        actor=actor,
    )
    normalised = _validated(spec)
    _new_version(
        variant=variant,
        version=version,
        spec=normalised,
        changelog=changelog.strip() or "Initial release.",
        status=PUBLISHED,
        actor=actor,
        derived_from=None,
        base_version=base_version,
        policy_pack_version=_pack_version_for(normalised),
    )
    return variant


def _variant(*, template, key, name, domain, description, parent, actor) -> AgentVariant:
    key = (key or "").strip().lower()
    if AgentVariant.objects.filter(key=key).exists():
        raise ApplicationError(f"A variant with the key “{key}” already exists.", field="key")
    variant = AgentVariant(
        template=template,
        key=key,
        name=(name or "").strip(),
        domain=(domain or "").strip(),
        description=(description or "").strip(),
        parent=parent,
        created_by=actor,
    )
    variant.full_clean()
    variant.save()
    return variant


@transaction.atomic
def variant_clone(
    *, source: AgentVariant, key: str, name: str, domain: str = "", description: str = "", actor
) -> AgentVariant:
    """Clone a variant: the new one's 1.0.0 is published at once with the source's current spec.

    The clone records the source as its parent and that source version as the
    version it derives from and builds on, so later source versions can be rebased in.
    """
    source_version = selectors.latest_published(source)
    if source_version is None:
        raise ApplicationError(f"{source.name} has no published version to clone.")
    # Published at once, so checked like a rollback: still valid under today's schema, stored as it was.
    validate_spec(source_version.spec)
    variant = _variant(
        template=source.template,
        key=key,
        name=name,
        domain=domain or source.domain,
        description=description,
        parent=source,
        actor=actor,
    )
    _new_version(
        variant=variant,
        version="1.0.0",
        spec=source_version.spec,
        changelog=f"Cloned from {source.key} {source_version.version}.",
        status=PUBLISHED,
        actor=actor,
        derived_from=source_version,
        base_version=source_version,
        policy_pack_version=_pack_version_for(source_version.spec),
    )
    return variant


# ---------------------------------------------------------------- versions


@transaction.atomic
def version_save_draft(
    *, variant: AgentVariant, spec: dict | str, version: str, changelog: str, actor
) -> AgentVersion:
    """Create the variant's draft or update it: a spec (YAML text or dict), a new number, a changelog.

    YAML errors and validation errors raise SpecError (with lines for YAML). The
    number must be above every published version. A new draft derives from the
    latest published version and builds on the same base version; editing a draft
    keeps both (a rebased draft keeps its new base).
    """
    variant = _lock(variant)
    draft = selectors.draft_of(variant)
    changelog = (changelog or "").strip()
    if not changelog:
        raise ApplicationError("Say what changed in this version.", field="changelog")
    semver = _check_new_number(variant, version, draft=draft)
    normalised = _validated(spec)
    if draft is None:
        latest = selectors.latest_published(variant)
        return _new_version(
            variant=variant,
            version=version,
            spec=normalised,
            changelog=changelog,
            status=DRAFT,
            actor=actor,
            derived_from=latest,
            base_version=latest.base_version if latest else None,
        )
    draft.version = version.strip()
    draft.major, draft.minor, draft.patch = semver
    draft.spec = normalised
    draft.changelog = changelog
    draft.author = actor
    draft.full_clean()
    draft.save(update_fields=["version", "major", "minor", "patch", "spec", "changelog", "author"])
    return draft


@transaction.atomic
def version_publish(*, version: AgentVersion, actor) -> AgentVersion:
    """Publish a draft: its spec is validated again and from now on it never changes."""
    _lock(version.variant)
    version = AgentVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != DRAFT:
        raise ApplicationError(f"Version {version.version} is already published; it cannot change.")
    _check_new_number(version.variant, version.version, draft=version)
    version.spec = _validated(version.spec)
    version.policy_pack_version = _pack_version_for(version.spec)
    version.status = PUBLISHED
    version.published_at = timezone.now()
    version.full_clean()
    version.save(update_fields=["spec", "policy_pack_version", "status", "published_at"])
    return version


@transaction.atomic
def version_save_and_publish(
    *, variant: AgentVariant, spec: dict | str, version: str, changelog: str, actor
) -> AgentVersion:
    """Save the draft (as `version_save_draft`) and publish it, in one transaction.

    What is published is exactly what was given; if publishing is refused, the
    draft is left as it was before (nothing of this call is kept).
    """
    draft = version_save_draft(variant=variant, spec=spec, version=version, changelog=changelog, actor=actor)
    return version_publish(version=draft, actor=actor)


@transaction.atomic
def version_discard(*, version: AgentVersion, actor) -> None:
    """Delete a draft; published versions stay forever."""
    version = AgentVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != DRAFT:
        raise ApplicationError(
            f"Version {version.version} is published; published versions are never deleted."
        )
    # A plain DELETE: the ORM's cascade check would look for deployments, which live in the
    # clients' schemas (not on this search path); they and rollouts only pin published versions.
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {AgentVersion._meta.db_table} WHERE id = %s AND status = %s",  # noqa: S608
            [version.pk, DRAFT],
        )


@transaction.atomic
def version_rollback(
    *, variant: AgentVariant, to_version: AgentVersion, actor, version: str | None = None, note: str = ""
) -> AgentVersion:
    """Make an earlier spec current again as a NEW published version; history is untouched.

    The new version (by default the next minor after the latest published) has
    the earlier version's spec, derives from it, builds on its base version and
    ships with the same policy pack version.
    """
    variant = _lock(variant)
    if to_version.variant_id != variant.pk:
        raise ApplicationError("That version belongs to another variant.")
    if to_version.status != PUBLISHED:
        raise ApplicationError("Only a published version can be rolled back to.")
    if selectors.draft_of(variant) is not None:
        raise ApplicationError("This variant has a draft: discard or publish the draft first.")
    latest = selectors.latest_published(variant)
    if latest is not None and latest.pk == to_version.pk:
        raise ApplicationError(f"{to_version.version} is already the current version.")
    number = (version or "").strip() or next_minor(latest)
    _check_new_number(variant, number)
    validate_spec(to_version.spec)  # still valid under today's schema; stored exactly as it was
    changelog = f"Rollback to {to_version.version}."
    if note.strip():
        changelog = f"{changelog} {note.strip()}"
    return _new_version(
        variant=variant,
        version=number,
        spec=to_version.spec,
        changelog=changelog,
        status=PUBLISHED,
        actor=actor,
        derived_from=to_version,
        base_version=to_version.base_version,
        # Versions published before packs were pinned have none: pin them to today's pack version.
        policy_pack_version=to_version.policy_pack_version or _pack_version_for(to_version.spec),
    )


# ---------------------------------------------------------------- rebase


@dataclass(frozen=True)
class RebasePlan:
    """A three-way merge of the parent's changes (old base → new base) onto the variant's current spec."""

    merged: dict
    conflicts: list[Conflict]
    old_base: AgentVersion
    new_base: AgentVersion
    current: AgentVersion | None = None  # the variant's latest published version ("ours")

    @property
    def is_clean(self) -> bool:
        return not self.conflicts


@transaction.atomic
def variant_rebase(*, variant: AgentVariant, actor) -> RebasePlan:
    """Plan a rebase of the variant onto its parent's latest published version (nothing is written).

    Refused when the variant is a base agent, is not behind its parent, or has a draft.
    """
    parent = variant.parent
    if parent is None:
        raise ApplicationError("A base agent has no parent to rebase onto.")
    current = selectors.latest_published(variant)
    if current is None:
        raise ApplicationError(f"{variant.name} has no published version.")
    old_base = current.base_version
    if old_base is None:
        raise ApplicationError(f"{variant.name} {current.version} records no base version to merge from.")
    new_base = selectors.latest_published(parent)
    if new_base is None or old_base.variant_id != variant.parent_id or new_base.semver <= old_base.semver:
        raise ApplicationError(f"{variant.name} is up to date with {parent.name}.")
    if selectors.draft_of(variant) is not None:
        raise ApplicationError("This variant has a draft: discard or publish the draft first.")
    merged, conflicts = three_way_merge(old_base.spec, current.spec, new_base.spec)
    return RebasePlan(
        merged=merged, conflicts=conflicts, old_base=old_base, new_base=new_base, current=current
    )


@transaction.atomic
def variant_rebase_apply(
    *,
    variant: AgentVariant,
    resolutions: dict[str, str],
    version: str | None = None,
    expected_base_id: int | None = None,
    actor,
) -> AgentVersion:
    """Carry out a rebase: every conflict needs a resolution ("ours" or "theirs"); the result is a DRAFT.

    The draft builds on the new base version, derives from the variant's current
    version, and is numbered the next minor by default. An invalid merged spec
    raises SpecError. `expected_base_id` is the new base version the person saw
    the plan for: if the parent has published again since, the resolutions were
    chosen for other values and the rebase is refused.
    """
    variant = _lock(variant)
    plan = variant_rebase(variant=variant, actor=actor)
    if expected_base_id is not None and plan.new_base.pk != expected_base_id:
        raise ApplicationError("The base changed since you opened this page; review the new plan.")
    missing = [conflict.path for conflict in plan.conflicts if conflict.path not in resolutions]
    if missing:
        raise ApplicationError(
            f"Resolve every conflict first ({len(missing)} left).", extra={"missing": missing}
        )
    wrong = [path for path, choice in resolutions.items() if choice not in ("ours", "theirs")]
    if wrong:
        raise ApplicationError("A resolution is either “ours” or “theirs”.", extra={"invalid": wrong})
    chosen: dict[str, Any] = {c.path: resolutions[c.path] for c in plan.conflicts}
    spec = _validated(apply_resolutions(plan.merged, plan.conflicts, chosen))
    number = (version or "").strip() or next_minor(plan.current)
    _check_new_number(variant, number)
    return _new_version(
        variant=variant,
        version=number,
        spec=spec,
        changelog=f"Rebased onto {plan.new_base.variant.key} {plan.new_base.version}.",
        status=DRAFT,
        actor=actor,
        derived_from=plan.current,
        base_version=plan.new_base,
    )


# ---------------------------------------------------------------- policy packs


@transaction.atomic
def policy_pack_publish(
    *, pack_key: str, name: str, version: str, rules: list[dict], changelog: str, description: str = ""
) -> PolicyPackVersion:
    """Publish a version of a policy pack (creating the pack on its first version).

    Rules are validated (SpecError with field-level errors); the number must be
    above the pack's latest version. The pack's name and description follow the
    latest publication.
    """
    semver = parse_semver(version)
    if not (changelog or "").strip():
        raise ApplicationError("Say what changed in this version.", field="changelog")
    validated = validate_rules(rules)
    pack = PolicyPack.objects.select_for_update().filter(key=pack_key).first()
    if pack is None:
        pack = PolicyPack(key=pack_key, name=name.strip(), description=description.strip())
        pack.full_clean()
        pack.save()
    else:
        latest = selectors.policy_pack_latest(pack)
        if pack.versions.filter(version=version.strip()).exists():
            raise ApplicationError(f"{pack.key} {version} already exists.", field="version")
        if latest is not None and semver <= parse_semver(latest.version):
            raise ApplicationError(
                f"The version must be above the latest published version, {latest.version}.", field="version"
            )
        pack.name, pack.description = name.strip(), description.strip()
        pack.full_clean()
        pack.save(update_fields=["name", "description", "updated_at"])
    published = PolicyPackVersion(
        pack=pack,
        version=version.strip(),
        rules=validated,
        changelog=changelog.strip(),
        status=PUBLISHED,
        published_at=timezone.now(),
    )
    published.full_clean()
    published.save()
    return published
