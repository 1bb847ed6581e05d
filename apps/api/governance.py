"""API v1, governance: decisions for outside execution planes, rulesets and their rules, test cases, the log.

- `governance/evaluate`, on a client's host: an execution plane outside the control plane asks for
  one decision. It authenticates with an evaluation key (`Authorization: Bearer tpk_<prefix>_<secret>`)
  and the key's deployment is the one decided for; no user session or API token may evaluate (403).
- The ruleset, its versions, the rules of the draft, publishing, test cases, replay, the shadow report
  and the decision log are served on both kinds of host, like the deployments API: the platform host
  under `clients/<client_id>/governance/` (platform admins read; the client's partner team reads and
  writes partner rules; anyone else 404 via `access_client`), and a client's host under `governance/`
  (every member reads; client admins write client rules, publish and manage test cases).
- Evaluation keys, on the platform host, for the client's partner team only.

Who may read or write is `permissions.GovernanceAccess`, and which layer a writer writes is
`permissions.governance_layer_for`; the product's rules (vendor rules locked, client rules only
stricter, nothing published while a test case fails) are the services', and their refusals are 400s
listing every problem as {path, message} (apps/api/exceptions.py).
"""

import io
from collections.abc import Sequence
from typing import overload

from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from apps.accounts.access import access_client
from apps.core.exceptions import ApplicationError
from apps.deployments.models import Deployment
from apps.deployments.selectors import deployment_get
from apps.governance import selectors, services
from apps.governance.context import CONTEXT_DOC, MAX_ACTION_BYTES, OPERATIONS, PRINCIPAL_KINDS
from apps.governance.models import DecisionLog, EvaluationKey, RulesetVersion, RuleTestCase
from apps.governance.rules import LAYERS, RulesetError
from apps.tenancy.models import Client

from .permissions import (
    GovernanceAccess,
    IsEvaluationKey,
    IsPartnerStaff,
    ReadsDecisionContents,
    governance_layer_for,
)

EFFECTS = [choice.value for choice in RuleTestCase.Effect]
# The most a decision request may carry: the action (at most 64 KB once cleaned) with room for the
# principal, the trace and JSON escaping. Anything bigger is refused before it is parsed.
MAX_EVALUATE_BODY = 2 * MAX_ACTION_BYTES
# Per evaluation key, unless settings say otherwise (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).
EVALUATE_RATE = "1200/min"
LAYER_AUTHORS = {
    "vendor": "the vendor, in its policy packs (they are locked here)",
    "partner": "the client's partner team",
    "client": "the client's admins",
}


# --- Evaluation: key authentication, body bound, throttle --------------------------------


class EvaluationKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer tpk_<prefix>_<secret>`: an evaluation key of the host's client.

    Answers with no user (the key is no person) and the key as `request.auth`. A bearer credential
    that is not an active key of this client fails outright (401) whatever else the request carries:
    a revoked key, another client's key and a made-up one all read the same.
    """

    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Send the key as `Authorization: Bearer tpk_<prefix>_<secret>`.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeError:
            raise AuthenticationFailed("Invalid or revoked evaluation key.") from None
        client = getattr(request, "tenant", None)
        key = services.evaluation_key_authenticate(client=client, raw=raw) if client is not None else None
        if key is None:
            raise AuthenticationFailed("Invalid or revoked evaluation key.")
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="evaluation"'


class EvaluationKeyScheme(OpenApiAuthenticationExtension):
    target_class = EvaluationKeyAuthentication
    name = "evaluationKey"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer", bearer_format="tpk_<prefix>_<secret>"
        )


class _EvaluationKeySchema(AutoSchema):
    """Documents the key as the only way in: user sessions and tokens are authenticated only to be refused."""

    def get_auth(self):
        return [auth for auth in super().get_auth() if EvaluationKeyScheme.name in auth]


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request is larger than {MAX_EVALUATE_BODY // 1024} KB."
    default_code = "payload_too_large"


class BoundedJSONParser(JSONParser):
    """JSON of at most MAX_EVALUATE_BODY bytes: a bigger body is refused (413) without being read whole."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        meta = request.META if request is not None else {}
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > MAX_EVALUATE_BODY:
            raise PayloadTooLarge()
        body = stream.read(MAX_EVALUATE_BODY + 1)
        if len(body) > MAX_EVALUATE_BODY:
            raise PayloadTooLarge()
        return super().parse(io.BytesIO(body), media_type, parser_context)


class EvaluationKeyThrottle(SimpleRateThrottle):
    """A rate per evaluation key, counted in the shared cache (Redis) so every web process agrees."""

    scope = "governance_evaluate"

    def get_rate(self) -> str:
        # Read when each request is checked, so settings (and tests overriding them) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or EVALUATE_RATE

    def get_cache_key(self, request, view) -> str | None:
        key = request.auth
        if not isinstance(key, EvaluationKey):
            return None
        ident = f"{request.tenant.schema_name}:{key.prefix}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ActionSerializer(serializers.Serializer):
    """The proposed action (documentation; `context.action_clean` checks it, so refusals read the same)."""

    tool = serializers.CharField(max_length=100, help_text="The tool, e.g. `db.update`.")
    operation = serializers.CharField(
        required=False, allow_blank=True, help_text=f"One of {', '.join(OPERATIONS)}, or empty."
    )
    entity = serializers.CharField(
        required=False, allow_null=True, help_text="The canonical entity, e.g. `ticket`."
    )
    params = serializers.DictField(required=False, help_text="The tool's parameters.")
    target_ids = serializers.ListField(
        child=serializers.JSONField(), required=False, help_text="Ids of the records it touches."
    )


@extend_schema_field(ActionSerializer)
class ActionField(serializers.JSONField):
    """An action as sent; checked by the governance services (`action_clean`), not here."""


class PrincipalSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PRINCIPAL_KINDS, required=False, default="api")
    id = serializers.CharField(
        max_length=254, required=False, allow_blank=True, help_text="The user's e-mail, the channel…"
    )
    role = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="The user's role in the client."
    )
    channel = serializers.CharField(max_length=40, required=False, allow_blank=True)


class TraceSerializer(serializers.Serializer):
    steps = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False, default=0)
    cost = serializers.FloatField(min_value=0, max_value=1e12, required=False, default=0.0)
    depth = serializers.IntegerField(min_value=0, max_value=1_000, required=False, default=0)


class EvaluationRequestSerializer(serializers.Serializer):
    action = ActionField()
    principal = PrincipalSerializer(required=False, help_text="Who or what asked for the task.")
    trace = TraceSerializer(required=False, help_text="The task so far.")
    trace_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        # Refused rather than ignored: a caller naming a deployment must learn that the key decides it.
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise ValidationError(
                {name: ["Unknown field; the evaluation key decides the deployment."] for name in unknown}
            )
        return attrs


class DecisionErrorSerializer(serializers.Serializer):
    rule = serializers.CharField()
    error = serializers.CharField()


class ShadowOutcomeSerializer(serializers.Serializer):
    matched = serializers.ListField(child=serializers.CharField())
    errors = DecisionErrorSerializer(many=True)
    effect = serializers.CharField()
    deciding_rule = serializers.CharField(allow_null=True)
    changed = serializers.BooleanField()


class GovernanceDecisionSerializer(serializers.Serializer):
    decision_id = serializers.IntegerField(help_text="The decision's entry in the client's decision log.")
    deployment = serializers.IntegerField(help_text="The deployment decided for (the key's).")
    ruleset_version = serializers.IntegerField(
        allow_null=True, help_text="The active ruleset version's number (null before any is published)."
    )
    effect = serializers.CharField(help_text="allow, deny, require_approval or redact.")
    reason = serializers.CharField()
    deciding_rule = serializers.CharField(allow_null=True)
    layer = serializers.CharField(allow_null=True, help_text="vendor, partner or client.")
    matched = serializers.ListField(child=serializers.CharField())
    errors = DecisionErrorSerializer(many=True)
    evaluated_count = serializers.IntegerField()
    elapsed_us = serializers.FloatField()
    action_hash = serializers.CharField()
    ruleset_key = serializers.CharField()
    approver_role = serializers.CharField(allow_null=True)
    approval_ttl_minutes = serializers.IntegerField(allow_null=True)
    redact_fields = serializers.ListField(child=serializers.CharField())
    shadow = ShadowOutcomeSerializer(allow_null=True)


class DecisionEvaluateApi(APIView):
    """Decide one proposed action of the evaluation key's deployment, and log the decision.

    The client's active ruleset decides, behind the deployment's locked vendor rules and with its
    tool allowlist; a deployment that is not deployed gets a deny. Only an evaluation key of this
    client may ask: the body cannot name another deployment.
    """

    authentication_classes = [EvaluationKeyAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    permission_classes = [IsEvaluationKey]
    throttle_classes = [EvaluationKeyThrottle]
    parser_classes = [BoundedJSONParser]
    schema = _EvaluationKeySchema()

    @extend_schema(request=EvaluationRequestSerializer, responses=GovernanceDecisionSerializer)
    def post(self, request: Request) -> Response:
        key: EvaluationKey = request.auth
        params = EvaluationRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        decision, log = services.decision_make(
            client=request.tenant,  # type: ignore[attr-defined]
            deployment=key.deployment,
            action=data["action"],
            principal=data.get("principal"),
            trace=data.get("trace"),
            trace_id=data["trace_id"],
        )
        version = log.ruleset_version
        body = {
            **decision.as_dict(),
            "decision_id": log.pk,
            "deployment": key.deployment_id,
            "ruleset_version": version.number if version is not None else None,
        }
        return Response(GovernanceDecisionSerializer(body).data)


# --- Which client: the host's own, or the one in the path ------------------------------------


class _InClient:
    """A client's governance: on its own host, or on the platform host as `clients/<client_id>/…`.

    The platform host's client is the one the user may see (404 otherwise, as `access_client`).
    Bodies are JSON.
    """

    permission_classes = [IsAuthenticated, GovernanceAccess]
    parser_classes = [JSONParser]

    def get_client(self) -> Client:
        client_id = self.kwargs.get("client_id")  # type: ignore[attr-defined]
        if client_id is None:
            return self.request.tenant  # type: ignore[attr-defined]
        client = access_client(self.request.user, client_id)  # type: ignore[attr-defined]
        # Governance lives in the client's schema, which exists once provisioning is done.
        if client.status != Client.Status.READY:
            raise Http404("The client's workspace is not ready.")
        return client

    def layer(self) -> str:
        """The layer the user writes (GovernanceAccess lets only writers past for unsafe methods)."""
        layer = governance_layer_for(self.request)  # type: ignore[attr-defined]
        if layer is None:
            raise ApplicationError("Your role may not change these rules.")
        return layer


# --- Rules -----------------------------------------------------------------------------------


class RuleSelectorSerializer(serializers.Serializer):
    variants = serializers.ListField(child=serializers.CharField(), help_text="Agent variants; empty: any.")
    tools = serializers.ListField(child=serializers.CharField(), help_text="Tools; empty: any.")
    operations = serializers.ListField(child=serializers.CharField(), help_text="Operations; empty: any.")
    entities = serializers.ListField(child=serializers.CharField(), help_text="Entities; empty: any.")


class GovernanceRuleSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="snake_case name, unique in the ruleset.")
    name = serializers.CharField()
    selector = RuleSelectorSerializer()
    condition = serializers.CharField(allow_null=True, help_text="A CEL expression; null: always.")
    effect = serializers.CharField(help_text="allow, deny, require_approval or redact.")
    approver_role = serializers.CharField(
        allow_null=True, help_text="client_admin or operator (require_approval)."
    )
    redact_fields = serializers.ListField(child=serializers.CharField(), help_text="For redact.")
    message = serializers.CharField()
    severity = serializers.CharField(help_text="low, medium, high or critical.")
    layer = serializers.CharField(help_text="vendor, partner or client.")
    mode = serializers.CharField(help_text="enforce, or shadow (evaluated and reported only).")
    fail_mode = serializers.CharField(help_text="closed or open: what a condition that errors means.")
    source = serializers.CharField(help_text="policy_pack, manual or document.")
    source_ref = serializers.CharField(allow_blank=True)
    approval_ttl_minutes = serializers.IntegerField()


class LayeredRuleSerializer(GovernanceRuleSerializer):
    locked = serializers.BooleanField(help_text="A vendor rule from a policy pack: never changed here.")
    packs = serializers.ListField(
        child=serializers.CharField(),
        default=list,
        help_text="Vendor rules: the policy packs (with versions) of the deployments it comes from.",
    )


class GovernanceRuleRequestSerializer(serializers.Serializer):
    """A rule as written (documentation; the governance services validate it and list every problem)."""

    key = serializers.CharField(help_text="snake_case name, unique in the ruleset.")
    name = serializers.CharField()
    selector = RuleSelectorSerializer(required=False)
    condition = serializers.CharField(required=False, allow_null=True, help_text="A CEL expression.")
    effect = serializers.CharField(help_text="allow, deny, require_approval or redact (client: not allow).")
    approver_role = serializers.CharField(required=False, allow_null=True)
    redact_fields = serializers.ListField(child=serializers.CharField(), required=False)
    message = serializers.CharField()
    severity = serializers.CharField(required=False)
    layer = serializers.CharField(
        required=False, help_text="Your own layer (partner on the platform host, client on a client's host)."
    )
    mode = serializers.CharField(required=False)
    fail_mode = serializers.CharField(required=False)
    source = serializers.CharField(required=False)
    source_ref = serializers.CharField(required=False, allow_blank=True)
    approval_ttl_minutes = serializers.IntegerField(required=False)


class RuleListSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        allow_null=True, help_text="The version edited: the draft, else the active one (null: none yet)."
    )
    status = serializers.CharField(allow_null=True, help_text="draft or published.")
    rules = LayeredRuleSerializer(many=True)


class RuleSavedSerializer(serializers.Serializer):
    draft_version = serializers.IntegerField()
    rule = LayeredRuleSerializer()


def _editing(client: Client) -> RulesetVersion | None:
    """The version an edit changes: the draft, or the active version a new draft starts from."""
    return selectors.ruleset_draft_get(client=client) or selectors.ruleset_active_get(client=client)


def _vendor_keys(client: Client) -> set[str]:
    return {rule["key"] for _, rules in selectors.vendor_rules_by_deployment(client=client) for rule in rules}


def _not_vendor(client: Client, key: str) -> None:
    if key in _vendor_keys(client):
        raise ApplicationError(
            f"'{key}' is a locked vendor rule from the policy pack; it cannot be changed or removed here."
        )


def _rule_body(data, layer: str) -> dict:
    """The rule in the request, for the author's `layer`: a rule claiming another layer is refused."""
    if not isinstance(data, dict):
        raise RulesetError([{"path": "rule", "message": "a rule is a JSON object"}])
    # What a GET adds (locked, packs) may come back unchanged; it is not part of a rule.
    rule = {name: value for name, value in data.items() if name not in ("locked", "packs")}
    claimed = rule.pop("layer", layer)
    if claimed != layer:
        if claimed in LAYER_AUTHORS:
            message = f"{claimed} rules are written by {LAYER_AUTHORS[claimed]}; you write {layer} rules"
        else:
            message = f"the layer is one of {', '.join(LAYERS)}; you write {layer} rules"
        raise RulesetError([{"path": "layer", "message": message}])
    return rule


def _saved(draft: RulesetVersion, key) -> dict:
    key = str(key).strip()
    rule = next(r for r in draft.rules if r["key"] == key)
    return {"draft_version": draft.number, "rule": {**rule, "locked": False}}


class RuleListCreateApi(_InClient, APIView):
    """The rules being edited, layered (GET); a new rule of your layer in the draft (POST).

    GET lists the vendor rules of the deployments' policy packs (locked), then the partner and client
    rules of the draft, or of the active version when there is no draft (the next edit starts one
    from it). POST adds a rule: partner teams write partner rules, client admins client rules (deny,
    require_approval or redact only); a vendor rule's key cannot be reused.
    """

    @extend_schema(operation_id="governance_rule_list", responses=RuleListSerializer)
    def get(self, request: Request, **scope) -> Response:
        client = self.get_client()
        version = _editing(client)
        data = {
            "version": version.number if version else None,
            "status": version.status if version else None,
            "rules": selectors.layered_rules(client=client, version=version),
        }
        return Response(RuleListSerializer(data).data)

    @extend_schema(request=GovernanceRuleRequestSerializer, responses={201: RuleSavedSerializer})
    def post(self, request: Request, **scope) -> Response:
        client, layer = self.get_client(), self.layer()
        rule = _rule_body(request.data, layer)
        draft = services.rule_save(client=client, rule=rule, layer=layer, actor=request.user)
        saved = RuleSavedSerializer(_saved(draft, rule.get("key"))).data
        return Response(saved, status=status.HTTP_201_CREATED)


class RuleDetailApi(_InClient, APIView):
    """One rule: read it (vendor rules too), replace it or remove it from the draft (your layer's only).

    Replacing or removing starts a draft from the active version when there is none. A vendor rule,
    or another layer's rule, is refused (400) with the reason.
    """

    @extend_schema(responses=LayeredRuleSerializer)
    def get(self, request: Request, key: str, **scope) -> Response:
        client = self.get_client()
        rules = selectors.layered_rules(client=client, version=_editing(client))
        rule = next((r for r in rules if r["key"] == key), None)
        if rule is None:
            raise Http404("No such rule.")
        return Response(LayeredRuleSerializer(rule).data)

    @extend_schema(request=GovernanceRuleRequestSerializer, responses=RuleSavedSerializer)
    def put(self, request: Request, key: str, **scope) -> Response:
        client, layer = self.get_client(), self.layer()
        _not_vendor(client, key)
        selectors.working_rule_get(client=client, key=key)  # 404 for a rule that is nowhere
        rule = _rule_body(request.data, layer)
        draft = services.rule_save(client=client, rule=rule, layer=layer, actor=request.user, replace_key=key)
        return Response(RuleSavedSerializer(_saved(draft, rule.get("key"))).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key: str, **scope) -> Response:
        client, layer = self.get_client(), self.layer()
        _not_vendor(client, key)
        selectors.working_rule_get(client=client, key=key)
        services.rule_delete(client=client, key=key, layer=layer, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- The ruleset and its versions --------------------------------------------------------------


class PickersSerializer(serializers.Serializer):
    variants = serializers.ListField(child=serializers.CharField())
    tools = serializers.ListField(child=serializers.CharField())
    operations = serializers.ListField(child=serializers.CharField())
    entities = serializers.ListField(child=serializers.CharField())


class ContextFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class ContextVariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    fields = ContextFieldSerializer(many=True)


class RulesetSerializer(serializers.Serializer):
    active_version = serializers.IntegerField(allow_null=True, help_text="Null before anything is published.")
    draft_version = serializers.IntegerField(allow_null=True)
    rules = LayeredRuleSerializer(many=True, help_text="What governs: vendor rules, then the active ones.")
    draft_rules = LayeredRuleSerializer(many=True, allow_null=True, help_text="The draft, layered alike.")
    pickers = PickersSerializer(help_text="What a selector can name, from the client's live deployments.")
    context_variables = ContextVariableSerializer(many=True, help_text="What a condition can read.")


CONTEXT_VARIABLES = [
    {
        "name": name,
        "description": description,
        "fields": [{"name": field, "description": text} for field, text in fields],
    }
    for name, description, fields in CONTEXT_DOC
]


class RulesetApi(_InClient, APIView):
    """The client's ruleset: its active and draft versions, their rules behind the locked vendor rules."""

    @extend_schema(responses=RulesetSerializer)
    def get(self, request: Request, **scope) -> Response:
        client = self.get_client()
        active = selectors.ruleset_active_get(client=client)
        draft = selectors.ruleset_draft_get(client=client)
        data = {
            "active_version": active.number if active else None,
            "draft_version": draft.number if draft else None,
            "rules": selectors.layered_rules(client=client, version=active),
            "draft_rules": selectors.layered_rules(client=client, version=draft) if draft else None,
            "pickers": selectors.pickers(client=client),
            "context_variables": CONTEXT_VARIABLES,
        }
        return Response(RulesetSerializer(data).data)


class RulesetVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.CharField(help_text="draft or published.")
    is_active = serializers.BooleanField()
    notes = serializers.CharField(allow_blank=True)
    rule_count = serializers.SerializerMethodField()
    rolled_back_from = serializers.SerializerMethodField(
        help_text="For a rollback: the number of the version whose rules it restored."
    )
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    published_by = serializers.EmailField(source="published_by.email", allow_null=True, default=None)
    published_at = serializers.DateTimeField(allow_null=True)

    def get_rule_count(self, version: RulesetVersion) -> int:
        return len(version.rules)

    def get_rolled_back_from(self, version: RulesetVersion) -> int | None:
        return self.context["numbers"].get(version.rolled_back_from_id)


class RulesetVersionDetailSerializer(RulesetVersionSerializer):
    rules = serializers.SerializerMethodField(
        help_text="Today's vendor rules (locked), then the version's partner and client rules."
    )

    @extend_schema_field(LayeredRuleSerializer(many=True))
    def get_rules(self, version: RulesetVersion) -> list:
        return LayeredRuleSerializer(self.context["rules"], many=True).data


def _version_detail(client: Client, version: RulesetVersion) -> dict:
    numbers = {v.pk: v.number for v in selectors.ruleset_versions(client=client)}
    rules = selectors.layered_rules(client=client, version=version)
    return RulesetVersionDetailSerializer(version, context={"numbers": numbers, "rules": rules}).data


class RulesetVersionListApi(_InClient, APIView):
    """Every version of the ruleset, newest first (the draft, when there is one, first)."""

    @extend_schema(responses=RulesetVersionSerializer(many=True))
    def get(self, request: Request, **scope) -> Response:
        versions = selectors.ruleset_versions(client=self.get_client())
        numbers = {v.pk: v.number for v in versions}
        return Response(RulesetVersionSerializer(versions, many=True, context={"numbers": numbers}).data)


class RulesetVersionDetailApi(_InClient, APIView):
    """One version with its rules."""

    @extend_schema(responses=RulesetVersionDetailSerializer)
    def get(self, request: Request, number: int, **scope) -> Response:
        client = self.get_client()
        return Response(_version_detail(client, selectors.ruleset_version_get(client=client, number=number)))


class RulesetPublishApi(_InClient, APIView):
    """Publish the draft and make it the active version.

    Refused (400, `errors` listing every reason) while a rule is invalid, collides with a locked
    vendor rule or does not compile, or a test case fails (path `test:<name>`).
    """

    @extend_schema(request=None, responses=RulesetVersionDetailSerializer)
    def post(self, request: Request, **scope) -> Response:
        client = self.get_client()
        layer = self.layer()
        draft = selectors.ruleset_draft_get(client=client)
        if draft is None:
            raise ApplicationError("There is no draft to publish: change a rule first.")
        version = services.ruleset_publish(client=client, version=draft, actor=request.user, layer=layer)
        return Response(_version_detail(client, version))


class RollbackRequestSerializer(serializers.Serializer):
    to_version = serializers.IntegerField(min_value=1, help_text="The published version whose rules return.")


class RulesetRollbackApi(_InClient, APIView):
    """Make an earlier published version's rules active again, as a new published version (partner teams).

    Test cases do not block a rollback: it is the way back when a publish went wrong.
    """

    permission_classes = [IsAuthenticated, IsPartnerStaff]

    @extend_schema(request=RollbackRequestSerializer, responses={201: RulesetVersionDetailSerializer})
    def post(self, request: Request, **scope) -> Response:
        client = self.get_client()
        params = RollbackRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        number = params.validated_data["to_version"]
        try:
            target = selectors.ruleset_version_get(client=client, number=number)
        except Http404:
            raise ValidationError({"to_version": [f"There is no version {number}."]}) from None
        version = services.ruleset_rollback(client=client, to_version=target, actor=request.user)
        return Response(_version_detail(client, version), status=status.HTTP_201_CREATED)


# --- Test cases ---------------------------------------------------------------------------------


class RuleTestCaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    deployment = serializers.IntegerField(
        source="deployment_id", allow_null=True, help_text="Runs with its vendor rules and tools."
    )
    action = serializers.JSONField()
    context = serializers.JSONField()
    expected_effect = serializers.CharField()
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class RuleTestCaseRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="A case with the same name is replaced.")
    action = ActionField()
    context = serializers.DictField(
        required=False, default=dict, help_text="Context variables (and `rates` for rate())."
    )
    expected_effect = serializers.ChoiceField(choices=EFFECTS)
    deployment = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="A deployment of this client, or none."
    )


class RuleTestCaseListCreateApi(_InClient, APIView):
    """The test cases every publish must pass (GET), and a new one, or one replaced by name (POST)."""

    @extend_schema(responses=RuleTestCaseSerializer(many=True))
    def get(self, request: Request, **scope) -> Response:
        cases = selectors.rule_test_cases(client=self.get_client())
        return Response(RuleTestCaseSerializer(cases, many=True).data)

    @extend_schema(request=RuleTestCaseRequestSerializer, responses={201: RuleTestCaseSerializer})
    def post(self, request: Request, **scope) -> Response:
        client = self.get_client()
        layer = self.layer()
        params = RuleTestCaseRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        deployment: Deployment | None = None
        if data["deployment"] is not None:
            try:
                deployment = deployment_get(client=client, pk=data["deployment"])
            except Http404:
                raise ValidationError({"deployment": ["This client has no such deployment."]}) from None
        case = services.rule_test_case_save(
            client=client,
            name=data["name"],
            action=data["action"],
            context=data["context"],
            expected_effect=data["expected_effect"],
            deployment=deployment,
            actor=request.user,
            layer=layer,
        )
        return Response(RuleTestCaseSerializer(case).data, status=status.HTTP_201_CREATED)


class RuleTestCaseDetailApi(_InClient, APIView):
    """One test case (GET); removing it (DELETE)."""

    @extend_schema(responses=RuleTestCaseSerializer)
    def get(self, request: Request, pk: int, **scope) -> Response:
        case = selectors.rule_test_case_get(client=self.get_client(), pk=pk)
        return Response(RuleTestCaseSerializer(case).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, **scope) -> Response:
        client = self.get_client()
        layer = self.layer()
        case = selectors.rule_test_case_get(client=client, pk=pk)
        services.rule_test_case_delete(client=client, case=case, actor=request.user, layer=layer)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Replay and the shadow report ---------------------------------------------------------------


class ReplayRequestSerializer(serializers.Serializer):
    last = serializers.IntegerField(min_value=1, max_value=5000, required=False, default=500)
    version = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="Default: the draft."
    )


class DecisionOutcomeSerializer(serializers.Serializer):
    effect = serializers.CharField()
    reason = serializers.CharField()
    deciding_rule = serializers.CharField(allow_null=True)
    layer = serializers.CharField(allow_null=True)


class ReplayChangeSerializer(serializers.Serializer):
    decision = serializers.IntegerField(help_text="The logged decision replayed.")
    created_at = serializers.DateTimeField()
    deployment = serializers.IntegerField(allow_null=True)
    trace_id = serializers.CharField(allow_blank=True)
    action = serializers.JSONField()
    before = DecisionOutcomeSerializer(help_text="As logged.")
    after = DecisionOutcomeSerializer(help_text="As the replayed version decides it.")


class ReplayResultSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    replayed = serializers.IntegerField()
    changes = ReplayChangeSerializer(many=True)


class RulesetReplayApi(_InClient, APIView):
    """Decide the last logged decisions again with a version (the draft by default): what would change.

    Nothing is written. Rates read the counts stored with each decision, so a replay is repeatable.
    """

    @extend_schema(request=ReplayRequestSerializer, responses=ReplayResultSerializer)
    def post(self, request: Request, **scope) -> Response:
        client = self.get_client()
        self.layer()
        params = ReplayRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        number = params.validated_data["version"]
        if number is None:
            version = selectors.ruleset_draft_get(client=client)
            if version is None:
                raise ApplicationError("There is no draft to replay: give a version, or change a rule first.")
        else:
            try:
                version = selectors.ruleset_version_get(client=client, number=number)
            except Http404:
                raise ValidationError({"version": [f"There is no version {number}."]}) from None
        result = services.ruleset_replay(client=client, version=version, last=params.validated_data["last"])
        data = {
            "version": result.version.number,
            "replayed": result.replayed,
            "changes": [
                {
                    "decision": change.log.pk,
                    "created_at": change.log.created_at,
                    "deployment": change.log.deployment_id,
                    "trace_id": change.log.trace_id,
                    "action": change.log.action,
                    "before": {
                        "effect": change.log.effect,
                        "reason": change.log.reason,
                        "deciding_rule": change.log.deciding_rule or None,
                        "layer": change.log.layer or None,
                    },
                    "after": {
                        "effect": change.effect,
                        "reason": change.reason,
                        "deciding_rule": change.deciding_rule,
                        "layer": change.layer,
                    },
                }
                for change in result.changes
            ],
        }
        return Response(ReplayResultSerializer(data).data)


class ShadowRuleStatsSerializer(serializers.Serializer):
    key = serializers.CharField()
    matched = serializers.IntegerField()
    changed = serializers.IntegerField(help_text="Decisions it would have decided differently.")
    errors = serializers.IntegerField()


class ShadowReportSerializer(serializers.Serializer):
    decisions = serializers.IntegerField(help_text="Decisions read.")
    with_shadow = serializers.IntegerField(help_text="Of which shadow rules were evaluated for.")
    changed = serializers.IntegerField(help_text="Of which the shadow rules would have changed.")
    rules = ShadowRuleStatsSerializer(many=True)


class ShadowReportQuerySerializer(serializers.Serializer):
    last = serializers.IntegerField(min_value=1, max_value=5000, required=False, default=1000)


class ShadowReportApi(_InClient, APIView):
    """How the shadow rules fared over the last decisions: matched, and would have changed the decision."""

    @extend_schema(
        parameters=[OpenApiParameter("last", int, description="How many recent decisions (default 1000).")],
        responses=ShadowReportSerializer,
    )
    def get(self, request: Request, **scope) -> Response:
        client = self.get_client()
        params = ShadowReportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = services.shadow_report(client=client, last=params.validated_data["last"])
        return Response(ShadowReportSerializer(report).data)


# --- The decision log -----------------------------------------------------------------------


class DecisionLogEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    effect = serializers.CharField()
    reason = serializers.CharField()
    deciding_rule = serializers.CharField(allow_blank=True)
    layer = serializers.CharField(allow_blank=True)
    approver_role = serializers.CharField(allow_blank=True)
    redact_fields = serializers.JSONField()
    deployment = serializers.IntegerField(source="deployment_id", allow_null=True)
    deployment_name = serializers.CharField(source="deployment.name", allow_null=True, default=None)
    ruleset_version = serializers.IntegerField(source="ruleset_version.number", allow_null=True, default=None)
    trace_id = serializers.CharField(allow_blank=True)
    action_hash = serializers.CharField()
    action = serializers.JSONField()
    evaluated_count = serializers.IntegerField()
    elapsed_us = serializers.FloatField()


class DecisionLogEntryDetailSerializer(DecisionLogEntrySerializer):
    ruleset_key = serializers.CharField()
    context = serializers.JSONField(help_text="The context the rules read.")
    matched = serializers.JSONField()
    errors = serializers.JSONField()
    shadow_results = serializers.JSONField(allow_null=True)


class DecisionFilterSerializer(serializers.Serializer):
    effect = serializers.ChoiceField(choices=EFFECTS, required=False)
    deployment = serializers.IntegerField(required=False, min_value=1)
    layer = serializers.ChoiceField(choices=LAYERS, required=False)
    trace_id = serializers.CharField(max_length=64, required=False)


class _DecisionPages(Sequence):
    """The filtered log as the paginator sees it: a count and slices, each read from the client's schema."""

    def __init__(self, client: Client, filters: dict):
        self.client, self.filters = client, filters

    def __len__(self) -> int:
        return selectors.decision_count(client=self.client, filters=self.filters)

    @overload
    def __getitem__(self, index: int) -> DecisionLog: ...

    @overload
    def __getitem__(self, index: slice) -> list[DecisionLog]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return selectors.decision_window(
                client=self.client, filters=self.filters, start=index.start or 0, stop=index.stop or 0
            )
        client, filters = self.client, self.filters
        return selectors.decision_window(client=client, filters=filters, start=index, stop=index + 1)[0]


class DecisionListApi(_InClient, ListAPIView):
    """The decision log, newest first, a page at a time; filter by effect, deployment, layer or trace id."""

    serializer_class = DecisionLogEntrySerializer
    permission_classes = [*_InClient.permission_classes, ReadsDecisionContents]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's pass: no client
            return DecisionLog.objects.none()
        params = DecisionFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return _DecisionPages(self.get_client(), params.validated_data)

    @extend_schema(
        parameters=[
            OpenApiParameter("effect", str, enum=EFFECTS),
            OpenApiParameter("deployment", int, description="A deployment id."),
            OpenApiParameter("layer", str, enum=list(LAYERS), description="The deciding rule's layer."),
            OpenApiParameter("trace_id", str),
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class DecisionDetailApi(_InClient, APIView):
    """One decision with the context the rules read, every rule matched, errors and shadow results."""

    permission_classes = [*_InClient.permission_classes, ReadsDecisionContents]

    @extend_schema(responses=DecisionLogEntryDetailSerializer)
    def get(self, request: Request, pk: int, **scope) -> Response:
        entry = selectors.decision_get(client=self.get_client(), pk=pk)
        return Response(DecisionLogEntryDetailSerializer(entry).data)


# --- Evaluation keys (platform host, the client's partner team) -------------------------------------


class EvaluationKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="Identifies the key in lists and logs; the secret is not kept.")
    deployment = serializers.IntegerField(source="deployment_id")
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    is_active = serializers.BooleanField()


class EvaluationKeyCreatedSerializer(EvaluationKeySerializer):
    key = serializers.CharField(
        help_text="The full key (`tpk_<prefix>_<secret>`), shown only this once: store it now."
    )


class EvaluationKeyRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, help_text="The system that will use it.")


class EvaluationKeyListCreateApi(_InClient, APIView):
    """A deployment's evaluation keys (GET), and a new one, whose full key is answered only once (POST)."""

    permission_classes = [IsAuthenticated, IsPartnerStaff]

    @extend_schema(responses=EvaluationKeySerializer(many=True))
    def get(self, request: Request, deployment_id: int, **scope) -> Response:
        client = self.get_client()
        deployment = deployment_get(client=client, pk=deployment_id)
        keys = selectors.evaluation_keys(client=client, deployment=deployment)
        return Response(EvaluationKeySerializer(keys, many=True).data)

    @extend_schema(request=EvaluationKeyRequestSerializer, responses={201: EvaluationKeyCreatedSerializer})
    def post(self, request: Request, deployment_id: int, **scope) -> Response:
        client = self.get_client()
        deployment = deployment_get(client=client, pk=deployment_id)
        params = EvaluationKeyRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        key, secret = services.evaluation_key_create(
            client=client, deployment=deployment, name=params.validated_data["name"], actor=request.user
        )
        key.key = secret  # type: ignore[attr-defined]
        return Response(EvaluationKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class EvaluationKeyRevokeApi(_InClient, APIView):
    """Revoke a key for good: it stops working at once."""

    permission_classes = [IsAuthenticated, IsPartnerStaff]

    @extend_schema(request=None, responses=EvaluationKeySerializer)
    def post(self, request: Request, deployment_id: int, pk: int, **scope) -> Response:
        client = self.get_client()
        deployment = deployment_get(client=client, pk=deployment_id)
        key = selectors.evaluation_key_get(client=client, deployment=deployment, pk=pk)
        key = services.evaluation_key_revoke(client=client, key=key, actor=request.user)
        return Response(EvaluationKeySerializer(key).data)
