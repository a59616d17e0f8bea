"""The failover's own CloudWatch metrics, written as EMF by the Finalise and Fail steps.

Namespace: ``POWERTOOLS_METRICS_NAMESPACE`` (the stack sets it to NamePrefix, its
``MetricNamespace`` output). The metrics, and why their dimensions are these:

==================  =======  ========================  ==========================================
metric              unit     dimensions                one datum per
==================  =======  ========================  ==========================================
``Failovers``       Count    App, Outcome              failover that ended (recovered / failed)
``FailoverDuration`` Seconds App, Outcome              failover: lease taken to end (the RTO
                                                       once detection is added)
``PhaseDuration``   Seconds  App, Phase                phase of a recovered failover: detect,
                                                       fence, launch_to_running, boot_gate,
                                                       healthy
==================  =======  ========================  ==========================================

Every distinct combination of dimension values is a metric of its own (billed, and what a
dashboard or alarm must name exactly), so dimensions take only bounded values: one
application, two outcomes, five phases. What is unbounded (execution ARN, instance ids, AZs,
the error) goes into the EMF document as properties, searchable in Logs Insights, never into
dimensions. One EMF document has one dimension set, so each set is a document of its own,
apart from the shell's ``StepInvocations`` (which carry ``step`` and ``service``).

A phase is not a step: a phase is the stretch of a failover between two moments the steps
recorded (``FailoverOutcome.phase_seconds``); a step is one Lambda function, run by the ASL
states handlers/core/step_names.py names, and counted by the shell's ``StepInvocations`` and
``StepErrors``.

The documents are flushed here, when the step's work is done, not by the shell's
``log_metrics``: that flushes even when the step raises, and a Finalise that is retried must
not count its failover twice.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from handlers.core import clock
from handlers.core.steps import FailoverOutcome, FailoverPlan

logger = logging.getLogger(__name__)

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "swr"  # the template's default NamePrefix

FAILOVERS = "Failovers"
FAILOVER_DURATION = "FailoverDuration"
PHASE_DURATION = "PhaseDuration"
RECOVERED, FAILED = "recovered", "failed"
# FailoverOutcome.phase_seconds keys that become PhaseDuration; "total" is FailoverDuration.
PHASES = ("detect", "fence", "launch_to_running", "boot_gate", "healthy")

# What the dashboard and the tests may rely on: metric name -> its dimension names.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    FAILOVERS: ("App", "Outcome"),
    FAILOVER_DURATION: ("App", "Outcome"),
    PHASE_DURATION: ("App", "Phase"),
}
UNITS = {FAILOVERS: "Count", FAILOVER_DURATION: "Seconds", PHASE_DURATION: "Seconds"}


class MetricDocument(BaseModel):
    """One EMF document: metrics that share one set of dimensions."""

    dimensions: dict[str, str]
    values: dict[str, float]  # metric name -> value
    properties: dict[str, Any] = Field(default_factory=dict)  # searchable, not dimensions
    timestamp: datetime


def recovered_documents(outcome: FailoverOutcome, finished: datetime) -> list[MetricDocument]:
    context = {
        "execution": outcome.execution,
        "old_instance_id": outcome.old_instance_id,
        "old_az": outcome.old_az,
        "new_instance_id": outcome.new_instance_id,
        "new_az": outcome.new_az,
    }
    documents = [
        MetricDocument(
            dimensions={"App": outcome.app, "Outcome": RECOVERED},
            values={FAILOVERS: 1, FAILOVER_DURATION: round(outcome.duration_seconds, 1)},
            properties=context,
            timestamp=finished,
        )
    ]
    for phase in PHASES:
        if phase in outcome.phase_seconds:
            documents.append(
                MetricDocument(
                    dimensions={"App": outcome.app, "Phase": phase},
                    values={PHASE_DURATION: outcome.phase_seconds[phase]},
                    properties=context,
                    timestamp=finished,
                )
            )
    return documents


def failed_documents(
    app: str, execution: str, plan: FailoverPlan | None, error: str, finished: datetime
) -> list[MetricDocument]:
    values: dict[str, float] = {FAILOVERS: 1}
    if plan is not None:
        values[FAILOVER_DURATION] = round((finished - plan.started_at).total_seconds(), 1)
    properties: dict[str, Any] = {"execution": execution, "error": error}
    if plan is not None:
        properties.update(old_instance_id=plan.old_instance_id, old_az=plan.failed_az)
    return [
        MetricDocument(
            dimensions={"App": app, "Outcome": FAILED}, values=values, properties=properties, timestamp=finished
        )
    ]


def record_recovered(outcome: FailoverOutcome) -> None:
    """Finalise's metrics: the failover recovered."""
    _emit(recovered_documents(outcome, clock.now()))


def record_failed(app: str, execution: str, plan: FailoverPlan | None, error: str) -> None:
    """Fail's metrics: one failed failover for every "Failover Failed" event."""
    _emit(failed_documents(app, execution, plan, error, clock.now()))


def _emit(documents: list[MetricDocument]) -> None:
    # Metrics report on a failover that has already ended; they must never fail its step.
    try:
        for document in documents:
            _flush(document)
    except Exception:
        logger.warning("could not write failover metrics", exc_info=True)


def _flush(document: MetricDocument) -> None:
    from aws_lambda_powertools.metrics import EphemeralMetrics

    # service="" keeps Powertools from adding a "service" dimension the dashboard would not name.
    metrics = EphemeralMetrics(namespace=os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE, service="")
    for name, dimension in document.dimensions.items():
        metrics.add_dimension(name=name, value=dimension)
    for name, value in document.values.items():
        metrics.add_metric(name=name, unit=UNITS[name], value=value)
    for key, detail in document.properties.items():
        metrics.add_metadata(key=key, value=detail)
    metrics.set_timestamp(document.timestamp)
    metrics.flush_metrics()
