"""The thin Lambda shell every step shares.

Powertools logging (correlation id = the execution name), tracing and metrics; the logs and
metrics name the step as handlers/core/step_names.py does (``CutOffInstances``, not the
module). The event is parsed into the step's input model, the logic is called with the record
store, and its model is returned as JSON. Errors keep their class names: the ASL matches them
by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from handlers.core import step_names
from handlers.core.errors import SwrError
from handlers.core.record_store import RecordStore
from handlers.core.settings import get_settings

logger = Logger(service="swr")
tracer = Tracer(service="swr")
# The stack sets POWERTOOLS_METRICS_NAMESPACE to its NamePrefix; "swr" is that parameter's default.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "swr", service="swr")

Request = TypeVar("Request", bound=BaseModel)
Handler = Callable[[dict[str, Any], LambdaContext], Any]


class StepInputInvalid(SwrError):
    """The workflow handed a step a document it cannot read: a defect in the ASL or a hand-edit."""


def lambda_step(model: type[Request]) -> Callable[[Callable[[Request, RecordStore], Any]], Handler]:
    def decorate(logic: Callable[[Request, RecordStore], Any]) -> Handler:
        # The step's one name (handlers/core/step_names.py): the log key and metric dimension
        # ``step``, and what an input error names. A module not in the table fails on import.
        step = step_names.of_module(logic.__module__).name

        @logger.inject_lambda_context(clear_state=True)
        @metrics.log_metrics(raise_on_empty_metrics=False)
        @tracer.capture_lambda_handler(capture_response=False)
        @wraps(logic)
        def handler(event: dict[str, Any], context: LambdaContext) -> Any:
            execution = str(event.get("execution", "")) if isinstance(event, dict) else ""
            logger.set_correlation_id(execution.rsplit(":", 1)[-1] or None)
            logger.append_keys(step=step, app=event.get("app") if isinstance(event, dict) else None)
            # Disabled metrics are never flushed, so never cleared: start each invocation clean.
            metrics.clear_metrics()
            metrics.add_dimension(name="step", value=step)
            metrics.add_metric(name="StepInvocations", unit=MetricUnit.Count, value=1)
            try:
                request = model.model_validate(event)
            except ValidationError as error:
                # Where and what, never the values: an input can carry a task token, and this
                # message goes to the log and the execution history.
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
                raise StepInputInvalid(f"{step}: input does not match {model.__name__}: {problems}") from None
            try:
                result = logic(request, RecordStore(get_settings().table_name))
            except SwrError as error:
                metrics.add_metric(name="StepErrors", unit=MetricUnit.Count, value=1)
                metrics.add_metadata(key="error", value=type(error).__name__)
                logger.warning("step failed", extra={"error": type(error).__name__, "cause": str(error)})
                raise
            logger.info("step done")
            return result.model_dump(mode="json") if isinstance(result, BaseModel) else result

        return handler

    return decorate
