"""The one package that knows about moto: starts it and patches its gaps for the SWR emulator.

moto 5.2.5 is pinned; every patch below reaches into moto's private internals and has a canary
test in ``tests/emulator/test_moto_bridge*.py`` so that an upgrade that moves them fails loudly.

Each patch lives in the module of its service (in brackets below); around them:

- ``bridge``: :func:`start` and :func:`stop` (every patch installed, in the order its
  ``_install_patches`` gives, and removed), the HTTP server, snapshots of moto's backends.
- ``_state``: what the modules share (the running bridge, the record of patches) and the helpers
  they all use; ``hooks``: :class:`BridgeHooks` and :class:`ApiFault`, the simulation's say.
- ``timing``: the emulator's time (patch 4), which every module's waits, threads and ids follow.

Every name other code uses is here, as ``moto_bridge.<name>``.

Patches (installed by :func:`start`, removed by :func:`stop`), and why each exists:

1. [lambda_runtime] Lambda runs real code in-process: moto's docker-less Lambda only echoes the
   payload. The function's Environment.Variables are put in ``os.environ`` before its handler runs
   (one process: swr's functions share one set of variables, so they never disagree). An
   asynchronous invocation that fails is run twice more, a minute and two minutes later, as on AWS;
   then it is kept in ``discarded_async_events`` (moto drops a function's DeadLetterConfig).
2. [events] EventBridge rules start executions / invoke Lambdas / publish to SNS topics: moto raises
   NotImplementedError for ``states``/``lambda``/``sns`` targets and fails the whole ``put_events``,
   ignores DISABLED rules, and reads every InputTemplate as JSON (AWS also takes plain text). An SNS
   target is refused, as on AWS, unless the topic's policy lets events.amazonaws.com publish from
   the rule. As on AWS, a delivery that fails is retried (throttling, 5xx) per the target's
   RetryPolicy and then, or at once for any other error, sent to its DeadLetterConfig queue with the
   error.
3. [cloudwatch] CloudWatch alarm state changes emit events: moto's ``set_alarm_state`` publishes
   nothing.
4. [timing] Time: moto's interpreter waits (Wait, Retry, TimeoutSeconds, HeartbeatSeconds) in real
   time and stamps histories and resources with the wall clock. With ``hooks.scheduler`` (virtual
   time, the default in process) its threads, events, sleeps and clocks are the scheduler's: one
   actor runs at a time, simulated time jumps to the next deadline when all wait, and moto's random
   numbers and uuids are seeded, so a seed replays to the same history. Without it
   (``swr emulator``, whose clients act in real time) waits are scaled by ``1 / hooks.warp()``.
   Either way the declared seconds in history are unchanged.
5. [stepfunctions] Cached interpreter clients: the interpreter builds a new boto3 client per Task
   (3-10x slower).
6. [ec2] Idempotent RunInstances: moto ignores ``ClientToken`` and launches again on a retry.
7. [ec2] EC2 lifecycle is not instant: moto makes instances ``running``/``terminated`` at once; here
   they start ``pending`` / stop at ``shutting-down`` and the simulation moves them on.
8. [elbv2] Target health from the simulation: moto reports every registered instance ``healthy``.
9. [faults] API fault injection: lets the simulation answer any API call with a throttle/server
   error in the service's own protocol (in-process and server mode, including the interpreter's own
   calls).
10. [stepfunctions] Named executions by default: unnamed ``start_execution`` gets ARN ``...:None``
    and a second one raises ExecutionAlreadyExists.
11. [stepfunctions] Heartbeat timeouts are ``States.HeartbeatTimeout`` (moto says
    ``States.Timeout``); as on AWS, ``ErrorEquals: ["States.Timeout"]`` still matches them.
12. [ec2] An instance's security groups are its primary ENI's: moto reports the union of the launch
    groups and the ENI's, so ``ModifyNetworkInterfaceAttribute(Groups=...)`` could never fence.
13. [dynamodb] Conditional writes are atomic: moto checks a ConditionExpression and writes without a
    lock, so two threads could both pass the same condition; DynamoDB does not allow that, and the
    lease (one failover per application) depends on it.
14. [stepfunctions] Lambda tasks run inside ``hooks.invoking()``: the simulation's clock can stand
    still while the emulator computes a step (see BridgeHooks.invoking).
15. [cloudformation_resources] CloudFormation creates through the API what moto's CloudFormation
    skips (alarms, trails, bucket, queue and topic policies, Lambda permissions) or mishandles (KMS
    key policies, ingress rules without an id), and puts state machines in the executing backend,
    with their definition read from S3 and substituted. Each has the physical id it has on AWS
    (queue and topic policies excepted); a stack update keeps its logical id and name and changes in
    place what AWS changes in place; deleting it succeeds when moto deleted its bucket, queue or
    group first (see resources_created_through_api()).
16. [cloudformation] CloudFormation security groups with SecurityGroupEgress rules lose the default
    allow-all rule, as on AWS (an empty list keeps it); the rules keep their Description and may
    name an IPv6 range or a prefix list.
17. [cloudformation] A stack created through a change set gets its template parsed, so it has
    outputs: moto creates it with an empty template and never parses the change set's.
18. [cloudformation] An update change set that changes nothing fails with "didn't contain changes",
    as on AWS: moto compares the given parameters with those given at creation, not the effective
    values.
19. [lambda_runtime] Another account's Lambda layer (AWS's Powertools layer) exists: moto refuses it
    on update.
20. [ec2] RunInstances applies "network-interface" TagSpecifications: moto drops them.
21. [stepfunctions] A waitForTaskToken task takes heartbeats while its Lambda still runs: moto says
    InvalidToken.
22. [cloudformation] CloudFormation roles get their ManagedPolicyArns (moto drops them) and an
    update syncs their managed and inline policies (moto changes neither).
23. [iam] IAM SimulatePrincipalPolicy: moto does not implement it; evaluated with moto's policy
    statement matching and AWS's condition semantics (see the patch).
24. [cloudwatch] Embedded metric format becomes metrics: on AWS, CloudWatch Logs turns the EMF
    documents a function writes to its log into CloudWatch metrics; here Powertools' flush of an
    in-process handler puts the same data points into moto's CloudWatch (PutMetricData), unless the
    function's own environment disables metrics.
25. [stepfunctions] StopExecution aborts an execution whose task waits for its token at once, as on
    AWS.
26. [stepfunctions] RedriveExecution answers UnknownOperationException (moto has none) instead of a
    500.
27. [ec2] StopInstances leaves instances "stopping" until the simulation stops them, and refuses an
    instance that is shutting down or terminated (IncorrectInstanceState), as AWS does.
28. [elbv2] Deregistered targets are "draining" for the target group's deregistration delay
    (simulated time), then "unused"; a terminated registered instance is deregistered.
29. [network] Network ACLs take at most 20 entries each way (the AWS quota, default deny included):
    NetworkAclEntryLimitExceeded beyond.
30. [network] DeleteMountTarget leaves the mount target "deleting" until the simulation lets it go.
31. [network] Network interfaces keep the ConnectionTrackingSpecification they are given and report
    it.
32. [stepfunctions] A Lambda task given as a bare function ARN whose invoke fails names the error as
    AWS does, ``Lambda.<code>`` (e.g. Lambda.ServiceException, Lambda.TooManyRequestsException), so
    that the ASL's Retry on those names matches; moto names every such failure ``Exception``.
33. [timing] The SDK's own retries (botocore standard mode, as the handlers run on AWS) wait in the
    emulator's time, with seeded jitter: botocore sleeps for real and draws from the global random
    generator, which would stall virtual time and make a seed replay differently.
34. [events] PutEvents refuses what EventBridge refuses: a request whose entries total 256 KB or
    more (ValidationException) and, per entry, a source starting with ``aws.`` from a caller that is
    not an AWS service (NotAuthorizedForSourceException). The simulation publishes AWS's own events
    inside :func:`as_aws_service`.
35. [network] A subnet hands out the lowest released private address first: moto pops an arbitrary
    one from a set of strings, whose order changes with the process's hash seed, so a seed would not
    replay alike in another process (AWS documents no order; any is as true).
36. [stepfunctions] A state machine definition (and each intrinsic function) is parsed once per
    process: moto parses the definition again for every execution (a third of the CPU of the
    shortest seeds). Each execution still gets fresh components built from the cached tree.
37. [responses] moto's response serializer works out each member's possible attribute names once per
    class, shape and parent, not for every value of every response (a quarter of the CPU of reading
    a record from DynamoDB went to aliases of absent members). The output is the same.
38. [responses] moto lists a response class's methods (``inspect.getmembers``) on every request;
    here once per class and bridge.
39. [kms] KMS key material is made once per key spec and process: moto generates a 2048-bit RSA key
    for every key, symmetric ones included (about 0.1 s each; the EBS default key of every encrypted
    launch paid it). swr only asks KMS to encrypt, never to sign, so keys sharing material changes
    nothing it can see.
40. [iam] In-process requests are not signed: moto checks no signature, and SigV4's canonical
    request and HMAC chain cost more than moto's handling of a small call. The Authorization header
    keeps its credential scope (moto reads the access key and region from it); the signature is a
    fixed word. Clients outside the process (``swr emulator``) sign as always.
41. [cloudformation] A resource whose Condition is false is not a stack resource: moto lists it,
    with no logical id or type, in DescribeStackResources and ListStackResources (CloudFormation
    creates and lists none).
42. [authorization] Every call made with a role's credentials is authorized against that role with
    patch 23's evaluator (the resource ARNs and condition keys AWS would use); a refused call fails
    as AWS fails it and is listed in ``denials``. moto enforces no IAM on its own. The callers: a
    Lambda step's handler (the function's role), the interpreter's Lambda invokes and SDK
    integrations (the state machine's role), EventBridge deliveries (a target's role, or a
    function's resource policy; refused deliveries go to the dead-letter queue), and whatever runs
    inside :func:`acting_as` (the emulator's instances: the instance profile's role with the VPC,
    address and instance its credentials are used from), and requests signed with an IAM user's
    access key (an operator's command line: the user's inline and attached policies). Not requests
    signed with any other key (the drivers' test credentials), nor the emulator's bookkeeping
    (:func:`as_emulator`).
43. [dynamodb] DynamoDB item results (GetItem, PutItem, Query, ...) are written as JSON directly
    rather than member by member through moto's model-driven serializer; results holding bytes or
    datetimes still go through moto's. The response a client parses is the same.
44. [dynamodb] An item read converts each value to plain JSON once (moto deep-copies a nested map
    once per level of depth), and a projection converts only the attributes it returns (moto
    converts the whole item first). The result is the same.
45. [cloudformation] CloudFormation reads a template with libyaml's parser (``yaml.CLoader``, the
    same constructor and resolver) rather than PyYAML's pure-Python one: reading swr's template
    three times was most of the time it took to build a world.
46. [stepfunctions] A JSONPath (InputPath, OutputPath, ResultPath, a Parameters path) is parsed
    once per process: jsonpath_ng builds its PLY parser for every parse, and moto's interpreter
    parses each path every time it evaluates it. A parsed path is immutable.
47. [responses] A request's URL is routed to its service's handler once per URL: moto's stubber
    matches every service's pattern and rebuilds and compiles the service's URL table on every
    request. The handler is the same module-level function each time; what moto does around it
    is unchanged, and URLs it passes through, refuses or answers with 404 still go its way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from swr.emulator.moto_bridge import _state, stepfunctions
from swr.emulator.moto_bridge._state import _require_bridge as _require_bridge
from swr.emulator.moto_bridge._state import backends_epoch as backends_epoch
from swr.emulator.moto_bridge.authorization import Authorization as Authorization
from swr.emulator.moto_bridge.authorization import denials as denials
from swr.emulator.moto_bridge.bridge import BackendSnapshot as BackendSnapshot
from swr.emulator.moto_bridge.bridge import (
    reseed,
    restore_backends,
    snapshot_backends,
    start,
    start_server,
    stop,
    stop_server,
)
from swr.emulator.moto_bridge.cloudformation import ApiCreatedResource, resources_created_through_api, tag_stack
from swr.emulator.moto_bridge.cloudformation_resources import _TopicPolicyResource as _TopicPolicyResource
from swr.emulator.moto_bridge.cloudwatch import emf_metric_data as emf_metric_data
from swr.emulator.moto_bridge.ec2 import instance_state, security_groups_by_instance, set_instance_state
from swr.emulator.moto_bridge.elbv2 import draining_targets as draining_targets
from swr.emulator.moto_bridge.elbv2 import registered_targets
from swr.emulator.moto_bridge.elbv2 import target_group_attributes as target_group_attributes
from swr.emulator.moto_bridge.events import as_aws_service
from swr.emulator.moto_bridge.events import put_events_entry_size as put_events_entry_size
from swr.emulator.moto_bridge.hooks import ApiFault, BridgeHooks
from swr.emulator.moto_bridge.iam import UNSIGNED as UNSIGNED
from swr.emulator.moto_bridge.iam import acting_as, as_emulator
from swr.emulator.moto_bridge.lambda_runtime import ASYNC_RETRY_WAITS as ASYNC_RETRY_WAITS
from swr.emulator.moto_bridge.lambda_runtime import LambdaContext
from swr.emulator.moto_bridge.lambda_runtime import discarded_async_events as discarded_async_events
from swr.emulator.moto_bridge.network import NETWORK_ACL_RULES_PER_DIRECTION as NETWORK_ACL_RULES_PER_DIRECTION
from swr.emulator.moto_bridge.network import availability_zone_of as availability_zone_of
from swr.emulator.moto_bridge.network import finish_mount_target_deletion as finish_mount_target_deletion
from swr.emulator.moto_bridge.network import mount_targets as mount_targets
from swr.emulator.moto_bridge.network import network_acls_by_subnet as network_acls_by_subnet
from swr.emulator.moto_bridge.responses import _possible_keys as _possible_keys
from swr.emulator.moto_bridge.stepfunctions import _parse_trees as _parse_trees
from swr.emulator.moto_bridge.stepfunctions import execution_events as execution_events
from swr.emulator.moto_bridge.stepfunctions import execution_list as execution_list
from swr.emulator.moto_bridge.timing import WarpedEvent

__all__ = [
    "ApiCreatedResource",
    "ApiFault",
    "BridgeHooks",
    "LambdaContext",
    "WarpedEvent",
    "acting_as",
    "as_aws_service",
    "as_emulator",
    "instance_state",
    "registered_targets",
    "reseed",
    "resources_created_through_api",
    "restore_backends",
    "security_groups_by_instance",
    "set_instance_state",
    "snapshot_backends",
    "start",
    "start_server",
    "stop",
    "stop_server",
    "tag_stack",
]

# start() and stop() rebind the running bridge, and the interpreter's client cache rebinds its
# count of clients: a copy bound here would go stale, so these two are read from their module on
# every access (mypy sees their types; every other name stays checked).
_LIVE: dict[str, Any] = {"_bridge": _state, "_client_creations": stepfunctions}
if TYPE_CHECKING:
    from swr.emulator.moto_bridge._state import _bridge as _bridge
    from swr.emulator.moto_bridge.stepfunctions import _client_creations as _client_creations
else:

    def __getattr__(name: str) -> Any:
        if name in _LIVE:
            return getattr(_LIVE[name], name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
