"""How a run ends: one function for every end (the run's own, a failure, a restart's `interrupted`, a dead
process's `worker_lost`).

The run's final state is claimed with a conditional update (the run is still queued or running) in the transaction
that stores its terminal event: when the claim matches no row, another end came first (another process took the
run's owner for lost, or the run ended itself meanwhile), and nothing is written, nothing published; the end that
came first stays the one in the state and in the log. A claimed end is published once it is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update

from nexent.core.batch import ModelRow
from nexent.core.db import utcnow
from nexent.engines.container import Engines
from nexent.runtime.event_types import RunCompleted, RunFailed, RunStopped, TerminalEvent
from nexent.runtime.events import Event, RunLog
from nexent.runtime.models import FINISHED_RUN_STATUSES, Run, RunStatus
from nexent.runtime.repository import RunEventRepository

_STATUS = {RunCompleted: RunStatus.COMPLETED, RunFailed: RunStatus.FAILED, RunStopped: RunStatus.STOPPED}


def status_of(event: TerminalEvent) -> RunStatus:
    """The state a run ends in with `event`."""
    return _STATUS[type(event)]


async def end_run(log: RunLog, event: TerminalEvent, *, then: Sequence[ModelRow] = (), **fields: Any) -> Event | None:
    """End the run of `log` with `event` (its state follows from the event's type; `fields` are more columns of
    the run, `then` rows stored with the end only if it is claimed). Returns the stored event, or None when the run
    had ended already."""
    claim = (
        update(Run)
        .where(Run.id == log.run_id, Run.tenant_id == log.tenant_id, Run.status.not_in(list(FINISHED_RUN_STATUSES)))
        .values(status=status_of(event), finished_at=utcnow(), **fields)
    )
    return await log.end(event, claim, then)


async def end_elsewhere(
    engines: Engines, tenant_id: uuid.UUID, run_id: uuid.UUID, event: RunFailed, **fields: Any
) -> Event | None:
    """End a run this process is not executing (lost, or interrupted by a restart): its log goes on after the
    last stored event."""
    async with engines.sessions() as session:
        last = await RunEventRepository(session, tenant_id).last_seq(run_id)
    return await end_run(RunLog(engines, tenant_id, run_id, last_seq=last), event, **fields)
