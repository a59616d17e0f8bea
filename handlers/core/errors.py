"""Named errors. The class name is the error name that the ASL's Retry/Catch match, so a
rename here must be matched in statemachine/failover.asl.json (a test checks both agree)."""

from __future__ import annotations


class SwrError(Exception):
    """Base of every error a step raises on purpose."""


# --- admission -------------------------------------------------------------------------
class MalformedTrigger(SwrError):
    """The execution input is not a trigger swr understands; nothing was changed."""


# --- lease and record ------------------------------------------------------------------
class RecordConflict(SwrError):
    """Another writer changed the record between our read and our conditional write."""


class LeaseLost(SwrError):
    """This execution no longer holds the application's lease; it must not act."""


class RecordNotFound(SwrError):
    """The application has no record (it was unregistered mid-failover)."""


# --- AWS API health --------------------------------------------------------------------
class AwsThrottled(SwrError):
    """RequestLimitExceeded / Throttling: retried by the ASL with backoff and full jitter."""


class AwsUnavailable(SwrError):
    """A 5xx or an unreachable endpoint: retried by the ASL with backoff and full jitter."""


# --- fence -----------------------------------------------------------------------------
class FenceNotConfirmed(SwrError):
    """An instance could not be shown cut off from the shared data and the clients within the
    fence timeout. Fail closed: no permit; the cause says what was not cut."""


# --- launch ----------------------------------------------------------------------------
class NoCapacity(SwrError):
    """Every allowed instance type was refused in every remaining AZ."""


class AlternateZonesExhausted(SwrError):
    """No AZ is left to try for a replacement."""


class ReplacementNotRunning(SwrError):
    """The replacement died or did not reach running in time."""


# --- permit, health --------------------------------------------------------------------
class PermitRefused(SwrError):
    """The permit's preconditions (lease, generation, confirmed fence) do not hold."""


class BootGateFailed(SwrError):
    """The replacement's boot gate reported failure (used as SendTaskFailure error)."""


class ReplacementUnhealthy(SwrError):
    """The replacement's targets did not become healthy within the health timeout."""


class LaunchSpecInvalid(SwrError):
    """The record's launch spec names something swr cannot launch from (an AMI that is gone)."""
