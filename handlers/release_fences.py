"""Undo what fences hold once it is safe: deny entries of terminated instances, deleted
mount targets."""

from handlers.core.fence.release import release
from handlers.core.record_store import RecordStore
from handlers.core.steps import ReleaseInput
from handlers.shell import lambda_step


@lambda_step(ReleaseInput)
def handler(request: ReleaseInput, store: RecordStore) -> object:
    return release(request, store)
