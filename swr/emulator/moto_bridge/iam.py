"""IAM: whose calls these are (:func:`acting_as`, :func:`as_emulator`), the policy evaluator
behind SimulatePrincipalPolicy (patch 23), and in-process requests left unsigned (patch 40).
Each call's authorization with that evaluator (patch 42) is in authorization.py; CloudFormation
roles' policies (patch 22) in cloudformation.py."""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from swr.emulator.moto_bridge._state import _Patches, _require
from swr.emulator.moto_bridge.timing import _utcnow

# --------------------------------------------------------------------------------------------------
# Whose calls these are: a role's (acting_as), or nobody's (as_emulator)
# --------------------------------------------------------------------------------------------------

_principal = threading.local()  # .current: (role ARN, condition context) this thread's calls are made as


@contextmanager
def acting_as(role_arn: str, context: dict[str, list[str]] | None = None) -> Iterator[None]:
    """The calls this thread makes inside are made with ``role_arn``'s credentials: patch 42
    authorizes each against the role, with ``context``'s global condition keys (for an instance's
    credentials: the VPC, address and instance they are used from). Nests: a Lambda the
    interpreter invokes acts as its own role, then the interpreter again."""
    with _principal_is((role_arn, {k.lower(): list(v) for k, v in (context or {}).items()})):
        yield


@contextmanager
def _principal_is(current: tuple[str, dict[str, list[str]]] | None) -> Iterator[None]:
    saved = getattr(_principal, "current", None)
    _principal.current = current
    try:
        yield
    finally:
        _principal.current = saved


@contextmanager
def as_emulator() -> Iterator[None]:
    """The emulator's own calls (the simulated world's bookkeeping, the harness's reads) are made
    under no caller's role, even on a thread that acts as one (a boot gate's)."""
    with _principal_is(None):
        yield


# --------------------------------------------------------------------------------------------------
# 23. IAM SimulatePrincipalPolicy
# --------------------------------------------------------------------------------------------------
# moto does not implement it. Here it evaluates the principal's identity policies (a role's or a
# user's inline and attached ones, plus any PolicyInputList) as IAM does: an explicit Deny wins,
# then an Allow, else implicitDeny; one result per action with the most restrictive decision
# across the resources and each resource's in ResourceSpecificResults. moto's own evaluator
# (moto.iam.access_control.IAMPolicyStatement) matches actions and resources and applies the
# effect; conditions are evaluated here, because moto's (written for trust policies) treats a
# missing context key as satisfied and an unmet condition on an Allow as a Deny. A key missing
# from ContextEntries makes its condition false (true for the negated operators) and is listed in
# MissingContextValues. Null, IfExists, ForAllValues/ForAnyValue and policy variables in
# condition values, NotAction and NotResource are modelled. Not modelled: permissions boundaries,
# SCPs, resource policies, and the numeric, date and IP address operators (a condition using one
# fails closed).

_DECISION_ORDER = ("allowed", "implicitDeny", "explicitDeny")  # least to most restrictive


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _substitute(value: str, context: dict[str, list[str]]) -> str | None:
    """``value`` with its policy variables (``${aws:SourceVpc}``) replaced from the context; None
    when one names a key the request lacks (or holds several values): the condition then
    matches nothing (IAM User Guide, "IAM policy elements: Variables and tags")."""

    def one(match: re.Match[str]) -> str:
        found = context.get(match.group(1).lower())
        if found is None or len(found) != 1:
            raise KeyError(match.group(1))
        return found[0]

    try:
        return _VARIABLE.sub(one, value)
    except KeyError:
        return None


def _matches(plain: str, value: str, expected: list[str]) -> bool | None:
    if plain in ("StringEquals", "ArnEquals"):
        return value in expected
    if plain == "StringEqualsIgnoreCase":
        return value.lower() in [e.lower() for e in expected]
    if plain in ("StringLike", "ArnLike"):
        from fnmatch import fnmatchcase

        return any(fnmatchcase(value, e) for e in expected)
    if plain == "Bool":
        return value.lower() in [e.lower() for e in expected]
    return None  # an operator not modelled here


def _condition_holds(operator: str, wanted: Any, given: list[str] | None) -> bool:
    """One operator on one key, with AWS's semantics for a missing key, IfExists, the negated
    operators, Null and the ForAllValues/ForAnyValue set operators (IAM User Guide, "Condition
    operators" and "Multivalued context keys"). ``wanted`` has its variables substituted (a
    None in it could not be)."""
    qualifier, _, operator = operator.rpartition(":")
    if operator == "Null":
        flag = wanted[0] if isinstance(wanted, list) and wanted else wanted
        return (given is None) == (str(flag).lower() == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    negated = "Not" in base
    plain = base.replace("Not", "")
    expected = [v for v in (wanted if isinstance(wanted, list) else [wanted])]
    if any(v is None for v in expected):
        return False
    expected = [str(v) for v in expected]
    if qualifier == "ForAllValues":
        if not given:  # true with no values in the request, as AWS documents
            return True
        results = [_matches(plain, g, expected) for g in given]
        if any(r is None for r in results):
            return False
        return all(r != negated for r in results)
    if qualifier == "ForAnyValue":
        if not given:
            return False
        results = [_matches(plain, g, expected) for g in given]
        if any(r is None for r in results):
            return False
        return any(r != negated for r in results)
    if given is None:
        return if_exists or negated
    results = [_matches(plain, g, expected) for g in given]
    if any(r is None for r in results):
        return False  # an operator not modelled here fails closed
    return any(results) != negated


def _conditions_hold(conditions: dict[str, Any], context: dict[str, list[str]], missing: set[str]) -> bool:
    holds = True
    for operator, keys in conditions.items():
        for key, wanted in keys.items():
            given = context.get(key.lower())
            if given is None:
                missing.add(key)
            values = wanted if isinstance(wanted, list) else [wanted]
            substituted = [_substitute(str(v), context) if isinstance(v, str) else v for v in values]
            holds = holds and _condition_holds(operator, substituted, given)
    return holds


def _simulate(
    policies: list[tuple[str, str, dict[str, Any]]], action: str, resource: str, context: dict[str, list[str]]
) -> tuple[str, list[dict[str, str]], set[str]]:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    allowed: list[dict[str, str]] = []
    denied: list[dict[str, str]] = []
    missing: set[str] = set()
    for policy_id, policy_type, document in policies:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            plain = {k: v for k, v in statement.items() if k != "Condition"}
            for key in ("Action", "NotAction"):  # action names are case-insensitive in IAM
                if key in plain:
                    names = plain[key] if isinstance(plain[key], list) else [plain[key]]
                    plain[key] = [str(n).lower() for n in names]
            if "NotResource" in plain:
                # Every resource but those listed (moto reads a statement without Resource as a
                # trust policy's, which applies to everything).
                listed = IAMPolicyStatement({"Effect": "Allow", "Action": "*", "Resource": plain.pop("NotResource")})
                if listed.is_action_permitted("*", resource) != PermissionResult.NEUTRAL:
                    continue
                plain["Resource"] = "*"
            result = IAMPolicyStatement(plain).is_action_permitted(action.lower(), resource)
            if result == PermissionResult.NEUTRAL:
                continue
            if not _conditions_hold(statement.get("Condition") or {}, context, missing):
                continue
            matched = {"SourcePolicyId": policy_id, "SourcePolicyType": policy_type}
            (denied if result == PermissionResult.DENIED else allowed).append(matched)
    if denied:
        return "explicitDeny", denied, missing
    if allowed:
        return "allowed", allowed, missing
    return "implicitDeny", [], missing


PolicyText = tuple[str, str, str]  # (policy id, policy type, document as stored)


def _principal_policy_texts(backend: Any, arn: str) -> tuple[PolicyText, ...]:
    """The role's or user's inline and attached policies, as IAM holds them now."""
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    if kind == "role":
        principal = backend.get_role(name)
    elif kind == "user":
        principal = backend.get_user(name)
    else:
        from moto.iam.exceptions import InvalidInput

        raise InvalidInput(f"PolicySourceArn {arn} is not a role or a user")
    found: list[PolicyText] = []
    for policy_name, document in principal.policies.items():
        found.append((policy_name, kind, document if isinstance(document, str) else json.dumps(document)))
    for policy in principal.managed_policies.values():
        policy_type = "aws-managed" if ":aws:policy/" in policy.arn else "user-managed"
        default = next(version for version in policy.versions if version.is_default)
        found.append((policy.name, policy_type, default.document))
    return tuple(found)


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(text))  # shared: nothing here changes a document


_Decision = tuple[str, list[dict[str, str]], set[str]]
_decisions: dict[tuple[Any, ...], _Decision] = {}


def decide(texts: tuple[PolicyText, ...], action: str, resource: str, context: dict[str, list[str]]) -> _Decision:
    """_simulate, remembered: a decision is a function of the policies' text, the action, the
    resource and the context, so the same request under the same policies is not evaluated
    again (a change to any policy is a new key)."""
    key = (texts, action, resource, tuple(sorted((k, tuple(v)) for k, v in context.items())))
    found = _decisions.get(key)
    if found is None:
        if len(_decisions) > 65536:  # bounded: a long campaign meets few distinct requests
            _decisions.clear()
        policies = [(policy_id, kind, _parsed(text)) for policy_id, kind, text in texts]
        found = _decisions[key] = _simulate(policies, action, resource, context)
    return found


def _patch_iam_simulate_principal_policy(p: _Patches) -> None:
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse

    if "simulate_principal_policy" in vars(IamResponse):
        raise RuntimeError("moto implements SimulatePrincipalPolicy now: retire bridge patch 23")

    def simulate_principal_policy(self: Any) -> Any:
        source = str(self._get_param("PolicySourceArn"))
        given = enumerate(self._get_param("PolicyInputList") or [], start=1)
        policies = (
            *_principal_policy_texts(self.backend, source),
            *((f"PolicyInputList.{n}", "none", str(text)) for n, text in given),
        )
        context: dict[str, list[str]] = {}
        for entry in self._get_param("ContextEntries") or []:
            context[str(entry["ContextKeyName"]).lower()] = [str(v) for v in entry.get("ContextKeyValues") or []]
        resources = [str(r) for r in self._get_param("ResourceArns") or ["*"]]
        results = []
        for action in self._get_param("ActionNames") or []:
            per_resource = []
            for resource in resources:
                decision, matched, missing = decide(policies, str(action), resource, context)
                per_resource.append((resource, decision, matched, missing))
            worst = max(per_resource, key=lambda r: _DECISION_ORDER.index(r[1]))
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resources[0] if len(resources) == 1 else "*",
                    "EvalDecision": worst[1],
                    "MatchedStatements": worst[2],
                    "MissingContextValues": sorted(set().union(*(r[3] for r in per_resource))),
                    "ResourceSpecificResults": [
                        {
                            "EvalResourceName": resource,
                            "EvalResourceDecision": decision,
                            "MatchedStatements": matched,
                            "MissingContextValues": sorted(missing),
                        }
                        for resource, decision, matched, missing in per_resource
                    ],
                }
            )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    p.set(IamResponse, "simulate_principal_policy", simulate_principal_policy)


# --------------------------------------------------------------------------------------------------
# 40. In-process requests carry a credential scope, not a signature
# --------------------------------------------------------------------------------------------------

UNSIGNED = "unsigned-in-emulator"


def _patch_unsigned_requests(p: _Patches) -> None:
    from botocore import auth
    from moto.core.models import botocore_stubber

    sign = _require(auth.SigV4Auth, "add_auth")

    def add_auth(self: Any, request: Any) -> Any:
        if not botocore_stubber.enabled or self.credentials is None or isinstance(self, auth.SigV4QueryAuth):
            return sign(self, request)  # a presigned URL carries its signature in the query
        request.context["timestamp"] = _utcnow().strftime(auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, SignedHeaders=host, Signature={UNSIGNED}"
        )
        return request

    p.set(auth.SigV4Auth, "add_auth", add_auth)
