"""Test cases and evaluations of agents: the test set, starting an evaluation of the draft or a version (run in the
background by `runner.py`), reading and comparing evaluations, and the publish gate (`min_pass_rate`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.agents.models import Agent
from nexent.agents.schemas import VersionRef
from nexent.agents.versions import VersionDisabled, VersionService, draft_config, fingerprint
from nexent.core.db import utcnow
from nexent.core.errors import AppError, Conflict, NotFound
from nexent.core.pagination import Page, PageParams
from nexent.engines.container import Engines
from nexent.evaluation.models import UNFINISHED_EVALUATIONS, Evaluation, EvaluationCase, EvaluationStatus
from nexent.evaluation.repository import CaseRepository, EvaluationRepository
from nexent.evaluation.runner import STALE_ERROR, evaluation_tasks
from nexent.evaluation.schemas import (
    MAX_CASES_PER_AGENT,
    CaseComparison,
    CaseIn,
    CaseRead,
    CaseResult,
    CaseSide,
    CaseUpdate,
    EvaluationComparison,
    EvaluationCreate,
    EvaluationRead,
    EvaluationSummary,
)
from nexent.identity.auth import Caller
from nexent.identity.services.sharing import Granted
from nexent.runtime.execution import RunManager


class CaseNotFound(NotFound):
    code = "test_case_not_found"


class EvaluationNotFound(NotFound):
    code = "evaluation_not_found"


class EvaluationRequired(AppError):
    """Publishing needs a completed evaluation of the draft as it is now."""

    status, code = 409, "evaluation_required"


class BelowPassRate(AppError):
    status, code = 422, "below_pass_rate"


Change = Literal["fixed", "broken", "same", "added", "removed"]
EvaluationRef = uuid.UUID | VersionRef  # an evaluation, or the newest completed one of the draft or a version


class EvaluationService:
    """One tenant's test cases and evaluations, for a caller whose route dependency resolved the agent."""

    def __init__(self, session: AsyncSession, engines: Engines, caller: Caller) -> None:
        self.session = session
        self.engines = engines
        self.caller = caller
        self.cases = CaseRepository(session, caller.tenant_id)
        self.evaluations = EvaluationRepository(session, caller.tenant_id)

    # --- test cases ---------------------------------------------------------------------------------------------

    async def list_cases(self, granted: Granted[Agent]) -> list[CaseRead]:
        return [CaseRead.model_validate(c) for c in await self.cases.of_agent(granted.resource.id)]

    async def add_case(self, granted: Granted[Agent], data: CaseIn) -> CaseRead:
        agent = granted.resource
        if await self.cases.count_of(agent.id) >= MAX_CASES_PER_AGENT:
            raise Conflict(
                f"An agent has at most {MAX_CASES_PER_AGENT} test cases; delete one first.",
                code="too_many_test_cases",
            )
        case = EvaluationCase(
            tenant_id=agent.tenant_id,
            agent_id=agent.id,
            question=data.question,
            checks=[c.model_dump(mode="json") for c in data.checks],
            expected_facts=list(data.expected_facts),
            created_by=self.caller.user_id,
        )
        await self.cases.add(case)
        return CaseRead.model_validate(case)

    async def update_case(self, granted: Granted[Agent], case_id: uuid.UUID, data: CaseUpdate) -> CaseRead:
        case = await self._case(granted, case_id)
        if data.question is not None:
            case.question = data.question
        if data.checks is not None:
            case.checks = [c.model_dump(mode="json") for c in data.checks]
        if data.expected_facts is not None:
            case.expected_facts = list(data.expected_facts)
        case.updated_at = utcnow()
        await self.session.flush()
        return CaseRead.model_validate(case)

    async def delete_case(self, granted: Granted[Agent], case_id: uuid.UUID) -> None:
        await self.cases.delete(await self._case(granted, case_id))

    async def _case(self, granted: Granted[Agent], case_id: uuid.UUID) -> EvaluationCase:
        case = await self.cases.one(granted.resource.id, case_id)
        if case is None:
            raise CaseNotFound(f"The agent has no test case {case_id}.")
        return case

    # --- evaluations --------------------------------------------------------------------------------------------

    async def start(self, granted: Granted[Agent], data: EvaluationCreate, manager: RunManager) -> EvaluationRead:
        """Store a queued evaluation of the draft or a version with a copy of the test set, commit it, and have this
        process run it in the background."""
        agent = granted.resource
        running = await self.evaluations.unfinished_of(agent.id)
        if running is not None and not await self._failed_if_stale(running):
            raise Conflict(
                "An evaluation of this agent is still going on; wait for it to finish.",
                code="evaluation_running",
                extra={"evaluation_id": str(running.id)},
            )
        cases = await self.cases.of_agent(agent.id)
        if not cases:
            raise Conflict("The agent has no test cases; add some first.", code="no_test_cases")
        if data.target == "draft":
            version, evaluated = None, fingerprint(draft_config(agent))
        else:
            found = await VersionService(self.session, self.caller).get(granted, data.target)
            if found.disabled:
                raise VersionDisabled(f"Version {data.target} of the agent is disabled.")
            version, evaluated = data.target, fingerprint(found.config)
        manager.check_capacity()
        evaluation = Evaluation(
            tenant_id=agent.tenant_id,
            agent_id=agent.id,
            version=version,
            fingerprint=evaluated,
            status=EvaluationStatus.QUEUED.value,
            cases=[_snapshot(c) for c in cases],
            results=[],
            total=len(cases),
            created_by=self.caller.user_id,
            created_at=utcnow(),
            heartbeat_at=utcnow(),
        )
        await self.evaluations.add(evaluation)
        read = _read(evaluation)
        # The background task reads the evaluation from its own sessions: it must be committed first.
        await self.session.commit()
        evaluation_tasks(self.engines).launch(manager, self.caller, evaluation.id)
        return read

    async def list_evaluations(self, granted: Granted[Agent], page: PageParams) -> Page[EvaluationSummary]:
        rows, total = await self.evaluations.page(granted.resource.id, limit=page.limit, offset=page.offset)
        if any(self._stale(e) for e in rows):
            await self._fail_stale(granted.resource.id)
            rows, total = await self.evaluations.page(granted.resource.id, limit=page.limit, offset=page.offset)
        items = [EvaluationSummary.model_validate(_summary(e)) for e in rows]
        return Page[EvaluationSummary](items=items, total=total, limit=page.limit, offset=page.offset)

    async def get(self, granted: Granted[Agent], evaluation_id: uuid.UUID) -> EvaluationRead:
        return _read(await self._evaluation(granted, evaluation_id))

    async def compare(
        self, granted: Granted[Agent], base: EvaluationRef, target: EvaluationRef
    ) -> EvaluationComparison:
        """Two evaluations case by case: whether each passed before and after, with the answers."""
        before, after = await self._by_ref(granted, base), await self._by_ref(granted, target)
        old = {r["case_id"]: r for r in before.results}
        new = {r["case_id"]: r for r in after.results}
        questions = {c["id"]: c["question"] for c in [*before.cases, *after.cases]}
        rows = []
        for case_id in dict.fromkeys([*(c["id"] for c in after.cases), *(c["id"] for c in before.cases)]):
            a, b = old.get(case_id), new.get(case_id)
            rows.append(
                CaseComparison(
                    case_id=case_id,
                    question=questions[case_id],
                    base=_side(a),
                    target=_side(b),
                    changed=_change(a, b),
                )
            )
        return EvaluationComparison(
            base=EvaluationSummary.model_validate(_summary(before)),
            target=EvaluationSummary.model_validate(_summary(after)),
            cases=rows,
        )

    async def _by_ref(self, granted: Granted[Agent], ref: EvaluationRef) -> Evaluation:
        if isinstance(ref, uuid.UUID):
            return await self._evaluation(granted, ref)
        found = await self.evaluations.latest_completed(granted.resource.id, None if ref == "draft" else ref)
        if found is None:
            what = "the draft" if ref == "draft" else f"version {ref}"
            raise EvaluationNotFound(f"No completed evaluation of {what}; evaluate it first.")
        return found

    async def _evaluation(self, granted: Granted[Agent], evaluation_id: uuid.UUID) -> Evaluation:
        evaluation = await self.evaluations.one(granted.resource.id, evaluation_id)
        if evaluation is None:
            raise EvaluationNotFound(f"The agent has no evaluation {evaluation_id}.")
        if self._stale(evaluation):
            await self._failed_if_stale(evaluation)
        return evaluation

    # --- evaluations whose process stopped ----------------------------------------------------------------------

    def _stale(self, evaluation: Evaluation) -> bool:
        lost = timedelta(seconds=self.engines.settings.run_owner_lost_seconds)
        return evaluation.status in UNFINISHED_EVALUATIONS and evaluation.heartbeat_at < utcnow() - lost

    async def _failed_if_stale(self, evaluation: Evaluation) -> bool:
        """Fail an unfinished evaluation whose process stopped beating (it died, or restarted); True if so."""
        if not self._stale(evaluation):
            return False
        await self._fail_stale(evaluation.agent_id)
        await self.session.refresh(evaluation)
        return evaluation.status not in UNFINISHED_EVALUATIONS

    async def _fail_stale(self, agent_id: uuid.UUID) -> None:
        lost = timedelta(seconds=self.engines.settings.run_owner_lost_seconds)
        await self.evaluations.fail_stale(agent_id, utcnow() - lost, STALE_ERROR)


async def publish_gate(session: AsyncSession, caller: Caller, agent: Agent, draft_fingerprint: str) -> None:
    """With `min_pass_rate` set, publishing needs a completed evaluation of the draft as it is now (same
    fingerprint) that passes at least that share of cases (registered into `agents.versions` by `wiring.py`)."""
    if agent.min_pass_rate is None:
        return
    evaluations = EvaluationRepository(session, caller.tenant_id)
    latest = await evaluations.latest_completed(agent.id, None, fingerprint=draft_fingerprint)
    if latest is None:
        raise EvaluationRequired(
            "Evaluate the draft first: this agent needs an evaluation of its draft, as it is now, to be published.",
            extra={"min_pass_rate": agent.min_pass_rate},
        )
    assert latest.pass_rate is not None  # set when an evaluation completes
    if latest.pass_rate < agent.min_pass_rate:
        published = None
        if agent.published_version is not None:
            published = await evaluations.latest_completed(agent.id, agent.published_version)
        raise BelowPassRate(
            f"The draft passes {latest.pass_rate:.0%} of its test cases; publishing needs {agent.min_pass_rate:.0%}.",
            extra={
                "evaluation_id": str(latest.id),
                "pass_rate": latest.pass_rate,
                "min_pass_rate": agent.min_pass_rate,
                "published_version": agent.published_version,
                "published_pass_rate": published.pass_rate if published is not None else None,
                "published_evaluation_id": str(published.id) if published is not None else None,
            },
        )


def _snapshot(case: EvaluationCase) -> dict[str, Any]:
    return {
        "id": str(case.id),
        "question": case.question,
        "checks": list(case.checks),
        "expected_facts": list(case.expected_facts),
    }


def _summary(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": evaluation.id,
        "agent_id": evaluation.agent_id,
        "target": "draft" if evaluation.version is None else evaluation.version,
        "status": evaluation.status,
        "pass_rate": evaluation.pass_rate,
        "passed": evaluation.passed,
        "total": evaluation.total,
        "fingerprint": evaluation.fingerprint,
        "error": evaluation.error,
        "created_at": evaluation.created_at,
        "started_at": evaluation.started_at,
        "finished_at": evaluation.finished_at,
    }


def _read(evaluation: Evaluation) -> EvaluationRead:
    results = [CaseResult.model_validate(r) for r in evaluation.results]
    return EvaluationRead.model_validate({**_summary(evaluation), "results": results})


def _side(result: dict[str, Any] | None) -> CaseSide | None:
    if result is None:
        return None
    return CaseSide(
        passed=result["passed"], answer=result.get("answer"), run_id=result.get("run_id"), error=result.get("error")
    )


def _change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> Change:
    if before is None:
        return "added"
    if after is None:
        return "removed"
    if before["passed"] == after["passed"]:
        return "same"
    return "fixed" if after["passed"] else "broken"
