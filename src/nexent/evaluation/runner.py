"""Running an evaluation in the background of the process that started it: each case through the same runtime and
limits as chat (`RuntimeService.start` with the app's run manager), followed to its end, then checked.

Progress is stored after every case, so reads show it. The task beats (`heartbeat_at`) while it runs; an
unfinished evaluation whose heartbeat stopped (its process died) is failed by whoever reads it, and the embedded
platform fails every unfinished one when it starts (`fail_interrupted`). The runs stay as the transcripts; the
conversation each one opened is deleted, so evaluations do not fill the user's chat history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.schemas import VersionRef
from nexent.core.db import utcnow
from nexent.core.errors import AppError, NotFound
from nexent.engines.container import Engines
from nexent.evaluation import checks
from nexent.evaluation.models import EvaluationStatus
from nexent.evaluation.repository import EvaluationRepository
from nexent.identity.auth import Caller
from nexent.providers.models import ModelKind
from nexent.providers.service import ProviderService
from nexent.runtime.conversations import ConversationService
from nexent.runtime.events import follow
from nexent.runtime.execution import NewRun, RunManager, TooManyRuns
from nexent.runtime.models import RunStatus
from nexent.runtime.schemas import RunRead
from nexent.runtime.service import RuntimeService

logger = logging.getLogger("nexent.evaluation")

# Cases of one evaluation running at once: enough to overlap model latency, few enough to leave room for chat.
CASE_CONCURRENCY = 2
# A case whose run takes longer is stopped and fails.
CASE_TIMEOUT_SECONDS = 600.0
# How often, and for how long, a case waits for room when the run manager is full.
BUSY_RETRY_SECONDS = 2.0
BUSY_RETRIES = 60

STALE_ERROR = "The process running this evaluation stopped before it finished; start it again."
STOPPED_ERROR = "The platform stopped during this evaluation; start it again."
RESTARTED_ERROR = "The platform restarted during this evaluation; start it again."


class EvaluationTasks:
    """The evaluations this process runs (a part of its `ProcessState`)."""

    def __init__(self, engines: Engines) -> None:
        self.engines = engines
        self.tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    def launch(self, manager: RunManager, caller: Caller, evaluation_id: uuid.UUID) -> None:
        run = EvaluationRun(self.engines, manager, caller, evaluation_id)
        task = asyncio.create_task(run.execute(), name=f"nexent-evaluation-{evaluation_id}")
        self.tasks[evaluation_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(evaluation_id, None))

    async def close(self) -> None:
        """Stop every evaluation (each marks itself failed); before the run manager closes, so none starts a run
        on a closed manager."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):  # shutting down; each evaluation records its own end
                await task


def evaluation_tasks(engines: Engines) -> EvaluationTasks:
    return engines.process.part(EvaluationTasks, lambda: EvaluationTasks(engines))


async def close_evaluations(engines: Engines) -> None:
    found = engines.process.find(EvaluationTasks)
    if found is not None:
        await found.close()


async def fail_interrupted(engines: Engines) -> int:
    """Fail the evaluations a previous life of the embedded platform left unfinished (nothing else runs them)."""
    async with engines.sessions() as session, session.begin():
        failed = await EvaluationRepository.fail_unfinished_everywhere(session, RESTARTED_ERROR)
    if failed:
        logger.warning("failed evaluations interrupted by a restart", extra={"count": failed})
    return failed


class EvaluationRun:
    """One evaluation's execution: its cases, a few at a time, then its pass rate."""

    def __init__(self, engines: Engines, manager: RunManager, caller: Caller, evaluation_id: uuid.UUID) -> None:
        self.engines = engines
        self.manager = manager
        self.caller = caller
        self.id = evaluation_id
        self._judge: Any = None
        self._judge_error: str | None = None
        self._judge_lock = asyncio.Lock()

    async def execute(self) -> None:
        beat = asyncio.create_task(self._beat_forever(), name=f"nexent-evaluation-beat-{self.id}")
        try:
            await self._execute()
        except asyncio.CancelledError:
            await self._fail(STOPPED_ERROR)
            raise
        except Exception:
            logger.exception("an evaluation failed unexpectedly", extra={"evaluation_id": str(self.id)})
            await self._fail("The evaluation failed unexpectedly; start it again.")
        finally:
            beat.cancel()

    async def _execute(self) -> None:
        async with self.engines.sessions() as session, session.begin():
            evaluation = await EvaluationRepository(session, self.caller.tenant_id).get(self.id)
            if evaluation is None:
                return
            agent_id, cases = evaluation.agent_id, list(evaluation.cases)
            target: VersionRef = "draft" if evaluation.version is None else evaluation.version
            now = utcnow()
            claimed = await self._set(session, status=EvaluationStatus.RUNNING.value, started_at=now, heartbeat_at=now)
        if not claimed:
            return
        results: list[dict[str, Any] | None] = [None] * len(cases)
        slots = asyncio.Semaphore(CASE_CONCURRENCY)
        progress = asyncio.Lock()

        async def one(index: int, case: dict[str, Any]) -> None:
            async with slots:
                result = await self._case(agent_id, target, case)
            async with progress:  # one write at a time, each with every result so far
                results[index] = result
                done = [r for r in results if r is not None]
                await self._store(results=done, passed=sum(r["passed"] for r in done), heartbeat_at=utcnow())

        await asyncio.gather(*(one(i, case) for i, case in enumerate(cases)))
        done = [r for r in results if r is not None]
        passed = sum(r["passed"] for r in done)
        await self._store(
            status=EvaluationStatus.COMPLETED.value,
            results=done,
            passed=passed,
            total=len(cases),
            pass_rate=passed / len(cases) if cases else 0.0,
            finished_at=utcnow(),
        )

    # --- one case -----------------------------------------------------------------------------------------------

    async def _case(self, agent_id: uuid.UUID, target: VersionRef, case: dict[str, Any]) -> dict[str, Any]:
        question = case["question"]
        try:
            new = await self._start(agent_id, target, question)
        except AppError as exc:
            return _result(case, error=f"The run did not start: {exc.detail}")
        run = await self._follow(new)
        if run.status != RunStatus.COMPLETED:
            error = run.error_message or f"The run ended {run.status.value} without an answer."
            return _result(case, run_id=run.id, error=error)
        answer = run.final_answer or ""
        outcomes = [await self._check(check, case, answer) for check in case["checks"]]
        return _result(
            case,
            run_id=run.id,
            answer=answer,
            checks=[o.as_dict() for o in outcomes],
            passed=all(o.passed for o in outcomes),
        )

    async def _start(self, agent_id: uuid.UUID, target: VersionRef, question: str) -> NewRun:
        """Start the case's run as chat does; wait for room while the run manager is full."""
        for _ in range(BUSY_RETRIES):
            try:
                async with self.engines.sessions() as session:
                    service = RuntimeService(session, self.engines, self.caller)
                    return await service.start(self.manager, agent_id, question, None, version=target)
            except TooManyRuns:
                await asyncio.sleep(BUSY_RETRY_SECONDS)
        raise TooManyRuns("The platform stayed too busy to run this case.")

    async def _follow(self, new: NewRun) -> RunRead:
        """Wait for the run's end (its terminal event), then read it and delete the conversation it opened."""
        try:
            async with asyncio.timeout(CASE_TIMEOUT_SECONDS):
                async for _ in follow(self.engines, self.caller.tenant_id, new.id):
                    pass
        except TimeoutError:
            async with self.engines.sessions() as session:
                await RuntimeService(session, self.engines, self.caller).stop(new.id)
            async for _ in follow(self.engines, self.caller.tenant_id, new.id):
                pass
        async with self.engines.sessions() as session, session.begin():
            run = await RuntimeService(session, self.engines, self.caller).get(new.id)
            if new.conversation_id is not None:
                with contextlib.suppress(NotFound):  # the user may have deleted it already
                    await ConversationService(session, self.caller).delete(new.conversation_id)
        return run

    async def _check(self, check: dict[str, Any], case: dict[str, Any], answer: str) -> checks.CheckOutcome:
        kind = check["type"]
        if kind == "contains":
            return checks.check_contains(answer, check["value"], bool(check.get("case_sensitive", False)))
        if kind == "regex":
            return await checks.check_regex(answer, check["pattern"])
        client = await self._judge_client()
        if client is None:
            return checks.CheckOutcome("judge", False, self._judge_error or "no judge model")
        return await checks.check_judge(client, case["question"], answer, check["rubric"], case["expected_facts"])

    async def _judge_client(self) -> Any:
        """The tenant's default LLM, once per evaluation (None, with `_judge_error`, when there is none)."""
        async with self._judge_lock:
            if self._judge is None and self._judge_error is None:
                try:
                    async with self.engines.sessions() as session:
                        providers = ProviderService(session, self.engines, self.caller)
                        self._judge = await providers.default_client(ModelKind.LLM)
                except AppError as exc:
                    self._judge_error = f"no judge model: {exc.detail}"
        return self._judge

    # --- storing ------------------------------------------------------------------------------------------------

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.engines.settings.run_heartbeat_seconds)
            try:
                await self._store(heartbeat_at=utcnow())
            except Exception:
                logger.warning("could not write an evaluation's heartbeat", exc_info=True)

    async def _store(self, **values: Any) -> bool:
        async with self.engines.sessions() as session, session.begin():
            return await self._set(session, **values)

    async def _set(self, session: AsyncSession, **values: Any) -> bool:
        return await EvaluationRepository(session, self.caller.tenant_id).set_if_unfinished(self.id, **values)

    async def _fail(self, error: str) -> None:
        try:
            await self._store(status=EvaluationStatus.FAILED.value, error=error, finished_at=utcnow())
        except Exception:
            logger.warning("could not record an evaluation's failure", exc_info=True)


def _result(
    case: dict[str, Any],
    *,
    run_id: uuid.UUID | None = None,
    answer: str | None = None,
    checks: list[dict[str, Any]] | None = None,
    passed: bool = False,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "case_id": case["id"],
        "question": case["question"],
        "passed": passed,
        "checks": checks or [],
        "run_id": str(run_id) if run_id is not None else None,
        "answer": answer,
        "error": error,
    }
