"""The SAM transform, run locally: moto's CloudFormation cannot run transforms, so the
``AWS::Serverless-2016-10-31`` transform runs here with ``samtranslator`` (the library
CloudFormation's own Serverless transform is built on), and AWS and the emulator both receive
plain CloudFormation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from swr.deploy.model import TemplateInvalid

SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"


class _NoManagedPolicies:
    """samtranslator knows the AWS managed policies by name from its own data and asks IAM
    only for a name it does not know. swr's template uses explicit policies, so that lookup
    is refused here rather than made against whatever endpoint we deploy to."""

    def load(self) -> dict[str, str]:
        raise TemplateInvalid(
            "the template names a managed policy samtranslator does not know (Policies: [SomeName]); "
            "name it by ARN or write the policy statements out"
        )


def transform(template: dict[str, Any], parameters: Mapping[str, str], region: str, account_id: str) -> dict[str, Any]:
    """The template with the SAM transform applied: plain CloudFormation. A template without
    the Serverless transform is returned unchanged (a copy)."""
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import ExceptionWithMessage, InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    template = json.loads(json.dumps(template))  # samtranslator edits its input in place
    transforms = template.get("Transform")
    names = transforms if isinstance(transforms, list) else [transforms] if transforms else []
    if not names:
        return template
    others = [name for name in names if name != SERVERLESS_TRANSFORM]
    if others:
        raise TemplateInvalid(
            f"only the {SERVERLESS_TRANSFORM} transform runs locally; the template also uses {others}"
        )
    values: dict[str, Any] = dict(parameters)
    values.update(
        {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": partition(region),
            "AWS::URLSuffix": url_suffix(region),
        }
    )
    policies = _NoManagedPolicies()
    # samtranslator counts what it does into a metrics sink and warns at exit if nobody
    # published them; a dummy publisher, published below, keeps that quiet.
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    # A session carrying only the region: samtranslator reads its region_name, nothing else.
    session = boto3.session.Session(region_name=region)
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    # As samtranslator's own transform(): the py27 marks keep generated logical ids (hashes)
    # identical to the ones CloudFormation's transform produces.
    to_py27_compatible_template(template, values)
    try:
        translated = translator.translate(template, parameter_values=values, get_managed_policy_map=policies.load)
    except InvalidDocumentException as error:
        messages = "\n".join(f"  - {cause.message}" for cause in error.causes)
        raise TemplateInvalid(f"the SAM transform refused the template:\n{messages}") from None
    except ExceptionWithMessage as error:
        raise TemplateInvalid(f"the SAM transform refused the template: {error.message}") from None
    finally:
        metrics.publish()
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    # samtranslator passes through types it does not know; CloudFormation would refuse them later.
    unknown = sorted(
        f"{logical_id} ({resource.get('Type')})"
        for logical_id, resource in (result.get("Resources") or {}).items()
        if isinstance(resource, dict) and str(resource.get("Type", "")).startswith("AWS::Serverless::")
    )
    if unknown:
        raise TemplateInvalid(f"the SAM transform does not know the resource types of {', '.join(unknown)}")
    return result


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def url_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
