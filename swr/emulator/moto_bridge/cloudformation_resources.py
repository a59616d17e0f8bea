"""Patch 15's resource types: what moto's CloudFormation skips or mishandles, created through
the service's API as CloudFormation does on AWS (their base class is in cloudformation.py)."""

from __future__ import annotations

import json
from typing import Any

from swr.emulator.moto_bridge._state import LOG, _api_client, _Patches, _require
from swr.emulator.moto_bridge.cloudformation import _api_created, _ApiResource, _ip_permission, _policy_text

# --------------------------------------------------------------------------------------------------
# 15. CloudFormation creates through the API what moto's CloudFormation skips or misplaces
# --------------------------------------------------------------------------------------------------
# The types, each with the API calls CloudFormation makes for it on AWS (see cloudformation.py).


class _StateMachineResource(_ApiResource):
    resource_type = "AWS::StepFunctions::StateMachine"
    name_property = "StateMachineName"

    @staticmethod
    def _definition(name: str, properties: dict[str, Any], region: str) -> str:
        definition = properties.get("DefinitionString") or properties.get("Definition")
        if isinstance(definition, dict):
            definition = json.dumps(definition)
        location = properties.get("DefinitionS3Location")
        if not definition and location:
            body = _api_client("s3", region).get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"]
            definition = body.read().decode()
        if not definition:
            raise RuntimeError(f"state machine {name}: no DefinitionString, Definition or DefinitionS3Location")
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        return str(definition)

    @staticmethod
    def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
        return [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags") or []]

    @staticmethod
    def _observability(properties: dict[str, Any]) -> dict[str, Any]:
        """LoggingConfiguration and TracingConfiguration, in the API's spelling."""
        request: dict[str, Any] = {}
        logging_ = properties.get("LoggingConfiguration")
        if logging_:
            request["loggingConfiguration"] = {
                "level": logging_.get("Level", "OFF"),
                "includeExecutionData": bool(logging_.get("IncludeExecutionData", False)),
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                    for d in logging_.get("Destinations") or []
                ],
            }
        tracing = properties.get("TracingConfiguration")
        if tracing:
            request["tracingConfiguration"] = {"enabled": bool(tracing.get("Enabled", False))}
        return request

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        request: dict[str, Any] = {
            "name": name,
            "definition": cls._definition(name, properties, region),
            "roleArn": properties.get("RoleArn", ""),
            "type": properties.get("StateMachineType", "STANDARD"),
            **cls._observability(properties),
        }
        if cls._tags(properties):
            request["tags"] = cls._tags(properties)
        arn = _api_client("stepfunctions", region).create_state_machine(**request)["stateMachineArn"]
        return cls(arn, region, {"Arn": arn, "Name": name}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        machine_type = properties.get("StateMachineType", "STANDARD")
        if name != original.name or machine_type != original.properties.get("StateMachineType", "STANDARD"):
            return super().update(original, name, properties, account_id, region)
        arn = original.physical_resource_id
        sfn = _api_client("stepfunctions", region)
        request = {
            "stateMachineArn": arn,
            "definition": cls._definition(name, properties, region),
            **cls._observability(properties),
        }
        sfn.update_state_machine(**request, **({"roleArn": properties["RoleArn"]} if properties.get("RoleArn") else {}))
        tags = cls._tags(properties)
        dropped = {t["key"] for t in cls._tags(original.properties)} - {t["key"] for t in tags}
        if dropped:
            sfn.untag_resource(resourceArn=arn, tagKeys=sorted(dropped))
        if tags:
            sfn.tag_resource(resourceArn=arn, tags=tags)
        return cls(arn, region, original.attributes, name, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("stepfunctions", region_name).delete_state_machine(stateMachineArn=self.physical_resource_id)


class _AlarmResource(_ApiResource):
    resource_type = "AWS::CloudWatch::Alarm"
    name_property = "AlarmName"
    _API_FIELDS = (
        *("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions"),
        *("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit"),
        *("EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData"),
        *("EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId"),
    )

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        request = {k: properties[k] for k in cls._API_FIELDS if k in properties}
        for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if number in request:
                request[number] = int(request[number])
        if "Threshold" in request:
            request["Threshold"] = float(request["Threshold"])
        _api_client("cloudwatch", region).put_metric_alarm(AlarmName=name, **request)
        arn = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"
        return cls(name, region, {"Arn": arn}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        if name != original.name:
            return super().update(original, name, properties, account_id, region)
        return cls.create(name, properties, account_id, region)  # PutMetricAlarm overwrites it

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("cloudwatch", region_name).delete_alarms(AlarmNames=[self.physical_resource_id])


class _TrailResource(_ApiResource):
    resource_type = "AWS::CloudTrail::Trail"
    name_property = "TrailName"

    @staticmethod
    def _request(name: str, properties: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"Name": name, "S3BucketName": properties["S3BucketName"]}
        for key in ("S3KeyPrefix", "SnsTopicName", "KMSKeyId", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
            if key in properties:
                request["KmsKeyId" if key == "KMSKeyId" else key] = properties[key]
        for flag in ("IsMultiRegionTrail", "IncludeGlobalServiceEvents", "EnableLogFileValidation"):
            if flag in properties:
                request[flag] = str(properties[flag]).lower() == "true"
        return request

    @staticmethod
    def _set_logging(client: Any, name: str, properties: dict[str, Any]) -> None:
        if str(properties.get("IsLogging", "false")).lower() == "true":
            client.start_logging(Name=name)
        else:
            client.stop_logging(Name=name)

    @staticmethod
    def _select_events(client: Any, name: str, properties: dict[str, Any]) -> None:
        if properties.get("AdvancedEventSelectors"):
            client.put_event_selectors(TrailName=name, AdvancedEventSelectors=properties["AdvancedEventSelectors"])
        elif properties.get("EventSelectors"):
            client.put_event_selectors(TrailName=name, EventSelectors=properties["EventSelectors"])

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        client = _api_client("cloudtrail", region)
        arn = client.create_trail(**cls._request(name, properties))["TrailARN"]
        cls._select_events(client, name, properties)
        if str(properties.get("IsLogging", "false")).lower() == "true":
            client.start_logging(Name=name)
        return cls(name, region, {"Arn": arn}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        if name != original.name:
            return super().update(original, name, properties, account_id, region)
        client = _api_client("cloudtrail", region)
        client.update_trail(**cls._request(name, properties))
        cls._select_events(client, name, properties)
        cls._set_logging(client, name, properties)
        return cls(name, region, original.attributes, name, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("cloudtrail", region_name).delete_trail(Name=self.physical_resource_id)


class _BucketPolicyResource(_ApiResource):
    resource_type = "AWS::S3::BucketPolicy"  # physical id: the bucket's name
    gone_codes = frozenset({"NoSuchBucket"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        bucket = str(properties["Bucket"])
        _api_client("s3", region).put_bucket_policy(Bucket=bucket, Policy=_policy_text(properties["PolicyDocument"]))
        return cls(bucket, region, {}, bucket, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        if str(properties["Bucket"]) != original.physical_resource_id:
            return super().update(original, name, properties, account_id, region)
        return cls.create(name, properties, account_id, region)  # PutBucketPolicy replaces the policy

    def delete(self, account_id: str, region_name: str) -> None:
        with self.unless_gone(f"bucket {self.physical_resource_id}"):
            _api_client("s3", region_name).delete_bucket_policy(Bucket=self.physical_resource_id)


class _QueuePolicyResource(_ApiResource):
    # Physical id: the URLs of its queues, comma-separated (what stack_check probes). On AWS it is
    # an id of its own (the type's primary identifier, /properties/Id).
    resource_type = "AWS::SQS::QueuePolicy"
    gone_codes = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        queues = [str(q) for q in properties["Queues"]]
        sqs, policy = _api_client("sqs", region), _policy_text(properties["PolicyDocument"])
        for queue_url in queues:
            sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": policy})
        return cls(",".join(queues), region, {}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        kept = {str(q) for q in properties["Queues"]}
        cls._clear([q for q in original.physical_resource_id.split(",") if q and q not in kept], region)
        return cls.create(name, properties, account_id, region)  # SetQueueAttributes replaces the policy

    @classmethod
    def _clear(cls, queues: list[str], region: str) -> None:
        sqs = _api_client("sqs", region)
        for queue_url in queues:
            with cls.unless_gone(f"queue {queue_url}"):
                sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": ""})

    def delete(self, account_id: str, region_name: str) -> None:
        self._clear([q for q in self.physical_resource_id.split(",") if q], region_name)


class _LambdaPermissionResource(_ApiResource):
    # Physical id: "<function>|<statement id>", the type's primary identifier; the statement id is
    # the logical id here (CloudFormation generates one on AWS).
    resource_type = "AWS::Lambda::Permission"
    gone_codes = frozenset({"ResourceNotFoundException"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        function = str(properties["FunctionName"])
        request = {
            "FunctionName": function,
            "StatementId": name,
            "Action": str(properties["Action"]),
            "Principal": str(properties["Principal"]),
        }
        request |= {key: str(properties[key]) for key in ("SourceArn", "SourceAccount") if key in properties}
        _api_client("lambda", region).add_permission(**request)
        return cls(f"{function}|{name}", region, {}, name, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        function, statement = self.physical_resource_id.split("|", 1)
        with self.unless_gone(f"function {function}"):
            _api_client("lambda", region_name).remove_permission(FunctionName=function, StatementId=statement)


class _TopicPolicyResource(_ApiResource):
    # Physical id: the ARNs of its topics, comma-separated (what stack_check probes). On AWS it is
    # an id of its own. Deleting it gives the topics back their default policy, as on AWS.
    resource_type = "AWS::SNS::TopicPolicy"
    gone_codes = frozenset({"NotFound"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        topics = [str(t) for t in properties["Topics"]]
        sns, policy = _api_client("sns", region), _policy_text(properties["PolicyDocument"])
        for topic_arn in topics:
            sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=policy)
        return cls(",".join(topics), region, {}, name, properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        kept = {str(t) for t in properties["Topics"]}
        cls._restore([t for t in original.physical_resource_id.split(",") if t and t not in kept], region)
        return cls.create(name, properties, account_id, region)

    @classmethod
    def _restore(cls, topics: list[str], region: str) -> None:
        from moto.sns.models import sns_backends

        for topic_arn in topics:
            account = topic_arn.split(":")[4]
            topic = sns_backends[account][region].topics.get(topic_arn)
            if topic is None:
                LOG.info("%s: topic %s is already gone", cls.resource_type, topic_arn)
                continue
            topic._policy_json = topic._create_default_topic_policy(region, account, topic.name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._restore([t for t in self.physical_resource_id.split(",") if t], region_name)


class _KmsKeyResource(_ApiResource):
    # moto's own model keeps a KeyPolicy given as an object, and DescribeKey then fails on it.
    resource_type = "AWS::KMS::Key"  # physical id: the KeyId

    @staticmethod
    def _set_rotation(kms: Any, key_id: str, properties: dict[str, Any]) -> None:
        if str(properties.get("EnableKeyRotation", "false")).lower() == "true":
            kms.enable_key_rotation(KeyId=key_id)
        else:
            kms.disable_key_rotation(KeyId=key_id)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        kms = _api_client("kms", region)
        policy = properties.get("KeyPolicy")
        request: dict[str, Any] = {"Description": properties.get("Description", "")}
        if policy:
            request["Policy"] = _policy_text(policy)
        key = kms.create_key(**request)["KeyMetadata"]
        if str(properties.get("EnableKeyRotation", "false")).lower() == "true":
            kms.enable_key_rotation(KeyId=key["KeyId"])
        return cls(key["KeyId"], region, {"Arn": key["Arn"], "KeyId": key["KeyId"]}, key["KeyId"], properties)

    @classmethod
    def update(
        cls, original: _ApiResource, name: str, properties: dict[str, Any], account_id: str, region: str
    ) -> _ApiResource:
        kms, key_id = _api_client("kms", region), original.physical_resource_id
        kms.update_key_description(KeyId=key_id, Description=properties.get("Description", ""))
        if properties.get("KeyPolicy"):
            kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=_policy_text(properties["KeyPolicy"]))
        cls._set_rotation(kms, key_id, properties)
        return cls(key_id, region, original.attributes, key_id, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        _api_client("kms", region_name).schedule_key_deletion(KeyId=self.physical_resource_id, PendingWindowInDays=7)


class _SecurityGroupIngressResource(_ApiResource):
    # moto's own model has no physical id, so nothing could tell that the rule exists.
    resource_type = "AWS::EC2::SecurityGroupIngress"  # physical id: the rule's sgr- id
    gone_codes = frozenset({"InvalidSecurityGroupRuleId.NotFound", "InvalidGroup.NotFound"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _ApiResource:
        permission = _ip_permission(properties, "SourceSecurityGroupId", "SourcePrefixListId")
        rules = _api_client("ec2", region).authorize_security_group_ingress(
            GroupId=properties["GroupId"], IpPermissions=[permission]
        )["SecurityGroupRules"]
        rule_id = rules[0]["SecurityGroupRuleId"]
        return cls(rule_id, region, {"Id": rule_id}, rule_id, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        ec2 = _api_client("ec2", region_name)
        with self.unless_gone(f"rule {self.physical_resource_id} (or its group)"):
            found = ec2.describe_security_group_rules(SecurityGroupRuleIds=[self.physical_resource_id])
            for rule in found["SecurityGroupRules"]:
                group, rule_id = rule["GroupId"], rule["SecurityGroupRuleId"]
                ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[rule_id])


_API_RESOURCES: dict[str, type[_ApiResource]] = {
    cls.resource_type: cls
    for cls in (
        _StateMachineResource,
        _AlarmResource,
        _TrailResource,
        _BucketPolicyResource,
        _QueuePolicyResource,
        _TopicPolicyResource,
        _LambdaPermissionResource,
        _KmsKeyResource,
        _SecurityGroupIngressResource,
    )
}


def _patch_cloudformation_api_resources(p: _Patches) -> None:
    from moto.cloudformation import parsing

    original = _require(parsing, "resource_class_from_type")

    def resource_class_from_type(resource_type: str) -> Any:
        return _API_RESOURCES.get(resource_type) or original(resource_type)

    _api_created.clear()
    p.set(parsing, "resource_class_from_type", resource_class_from_type)
