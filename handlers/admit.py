"""Admit: decide whether a trigger starts a failover; take the application's lease if so."""

from handlers.core.admission import admit
from handlers.core.record_store import RecordStore
from handlers.core.steps import AdmitInput
from handlers.shell import lambda_step


@lambda_step(AdmitInput)
def handler(request: AdmitInput, store: RecordStore) -> object:
    return admit(request, store)
