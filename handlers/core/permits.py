"""The start permit: written only when every instance the failover replaces is proven cut off
(handlers/core/fence/confirmation.py) by this failover's execution."""

from __future__ import annotations

from datetime import timedelta

from handlers.core import clock, lease
from handlers.core.errors import PermitRefused
from handlers.core.record import AppRecord, Permit, PermitToken
from handlers.core.record_store import RecordStore
from handlers.core.settings import get_settings
from handlers.core.steps import BootReport, PermitInput, Replacement

# The token outlives any wait for it (the boot gate's 15 minutes, the task's timeout); after it
# DynamoDB's time to live removes it (a token of a closed task answers nothing anyway).
PERMIT_TOKEN_SECONDS = 24 * 3600


def issue(request: PermitInput, store: RecordStore) -> AppRecord:
    replacement = request.takeover.replacement

    def grant(record: AppRecord) -> None:
        for instance_id in request.plan.to_fence:
            fence = record.fence_of(instance_id)
            if fence is None or fence.confirmed_in != request.execution:
                raise PermitRefused(
                    f"{instance_id} is not proven cut off from the shared data and the clients by this failover;"
                    f" {replacement.instance_id} must not start the workload"
                )
        if record.generation != replacement.generation:
            raise PermitRefused(
                f"{replacement.instance_id} was launched for generation {replacement.generation},"
                f" the application is at generation {record.generation}"
            )
        record.permit = Permit(
            generation=record.generation,
            instance_id=replacement.instance_id,
            token_key=key,
            issued_at=clock.now(),
        )

    # The token first, readable only with the replacement's own credentials; then the permit
    # that points at it (a gate that sees the permit finds its token). Refusals above happen
    # after the token is written: it is useless without a permit naming the instance.
    role_id = get_settings().instance_role_id
    if not role_id:
        raise PermitRefused("no instance role id is configured (SWR_INSTANCE_ROLE_ID): no permit can be keyed")
    key = PermitToken.key_for(request.app, role_id, replacement.instance_id)
    expires = clock.now() + timedelta(seconds=PERMIT_TOKEN_SECONDS)
    store.put_permit_token(
        PermitToken(
            key=key,
            task_token=request.task_token,
            instance_id=replacement.instance_id,
            generation=replacement.generation,
            expires_at=int(expires.timestamp()),
        )
    )
    return lease.update(store, request.app, request.execution, grant)


def require_answer_from(boot: BootReport, replacement: Replacement) -> None:
    """The permit's answer must come from the instance it names, for its generation: a token
    answered by anyone else (who read it with wider rights than an instance has) proves nothing
    about the replacement, which gets no traffic."""
    if boot.instance_id != replacement.instance_id or boot.generation != replacement.generation:
        raise PermitRefused(
            f"the permit of {replacement.instance_id} (generation {replacement.generation}) was answered for"
            f" {boot.instance_id} generation {boot.generation}: not by its boot gate; no traffic goes to it"
        )
