"""Onboarding: bring an application under swr's protection (register), release it
(unregister), and refresh the AMI its replacements launch from.

Nothing here knows about the CLI: every function takes ``client(service)`` (a callable that
returns boto3 clients) and the deployed stack's outputs, so the CLI, the emulator and the
tests share one implementation.

Registration first validates everything with read-only calls and reports every problem at
once (``RegistrationInvalid``, ``validate``); only a clean plan changes anything. A step that
fails midway undoes what registration did before it (``RegistrationFailed``,
``registering``), so nothing is left half-registered. ``unregistering`` releases an
application, ``ami`` makes the AMI replacements launch from and marks it for them.
"""

from swr.ops.common import Client, FailoverInProgress, NotRegistered, OnboardingError, rules_of
from swr.ops.onboarding.alarms import (
    DEFAULT_ALARM_PREFIX,
    DEFAULT_METRIC_NAMESPACE,
    HEARTBEAT_ALARM_SUFFIX,
    HEARTBEAT_METRIC,
    STATUS_CHECK_METRICS,
    alarm_names,
    create_alarms,
)
from swr.ops.onboarding.ami import IMAGE_WAIT, AmiRefreshFailed, AmiRefreshResult, refresh_ami
from swr.ops.onboarding.registering import RegistrationFailed, RegistrationResult, point_rules, register
from swr.ops.onboarding.tags import ALLOWED, SUBNET_APP_TAG_PREFIX, subnet_app_tag
from swr.ops.onboarding.unregistering import UnregisterResult, unregister
from swr.ops.onboarding.validate import (
    LIVE_STATES,
    MountPoint,
    Registration,
    RegistrationInvalid,
    RegistrationPlan,
    plan_registration,
)

__all__ = [
    "ALLOWED",
    "DEFAULT_ALARM_PREFIX",
    "DEFAULT_METRIC_NAMESPACE",
    "HEARTBEAT_ALARM_SUFFIX",
    "HEARTBEAT_METRIC",
    "IMAGE_WAIT",
    "LIVE_STATES",
    "STATUS_CHECK_METRICS",
    "SUBNET_APP_TAG_PREFIX",
    "AmiRefreshFailed",
    "AmiRefreshResult",
    "Client",
    "FailoverInProgress",
    "MountPoint",
    "NotRegistered",
    "OnboardingError",
    "Registration",
    "RegistrationFailed",
    "RegistrationInvalid",
    "RegistrationPlan",
    "RegistrationResult",
    "UnregisterResult",
    "alarm_names",
    "create_alarms",
    "plan_registration",
    "point_rules",
    "refresh_ami",
    "register",
    "rules_of",
    "subnet_app_tag",
    "unregister",
]
