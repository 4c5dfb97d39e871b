"""Test case and evaluation routes under `/api/agents/{agent_id}`. Who may call each: `agents/auth.py` (reading
needs a readable agent, changing the test set and evaluating an editable one)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from nexent.agents.auth import EditableAgent, ReadableAgent
from nexent.core.openapi import problems
from nexent.core.pagination import Page, PageParamsDep
from nexent.engines.deps import EnginesDep, SessionDep
from nexent.evaluation.schemas import (
    CaseIn,
    CaseRead,
    CaseUpdate,
    EvaluationComparison,
    EvaluationCreate,
    EvaluationRead,
    EvaluationSummary,
)
from nexent.evaluation.service import EvaluationRef, EvaluationService
from nexent.runtime.api import run_manager

router = APIRouter(prefix="/api/agents/{agent_id}", tags=["evaluation"])


@router.get("/test-cases", summary="The agent's test cases, oldest first.")
async def list_test_cases(agent: ReadableAgent, session: SessionDep, engines: EnginesDep) -> list[CaseRead]:
    return await EvaluationService(session, engines, agent.caller).list_cases(agent)


@router.post(
    "/test-cases",
    status_code=status.HTTP_201_CREATED,
    summary="Add a test case: a question and the checks its answer must pass.",
    responses=problems(s409="The agent has 100 test cases already (`too_many_test_cases`)."),
)
async def add_test_case(agent: EditableAgent, body: CaseIn, session: SessionDep, engines: EnginesDep) -> CaseRead:
    return await EvaluationService(session, engines, agent.caller).add_case(agent, body)


@router.patch("/test-cases/{case_id}", summary="Change a test case.")
async def update_test_case(
    agent: EditableAgent, case_id: uuid.UUID, body: CaseUpdate, session: SessionDep, engines: EnginesDep
) -> CaseRead:
    return await EvaluationService(session, engines, agent.caller).update_case(agent, case_id, body)


@router.delete("/test-cases/{case_id}", summary="Delete a test case.", status_code=204, response_class=Response)
async def delete_test_case(agent: EditableAgent, case_id: uuid.UUID, session: SessionDep, engines: EnginesDep) -> None:
    await EvaluationService(session, engines, agent.caller).delete_case(agent, case_id)


@router.post(
    "/evaluations",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Evaluate the draft or a version on the test set, in the background; poll the evaluation.",
    responses=problems(
        s404="No such version (`version_not_found`).",
        s409="No test cases (`no_test_cases`), an evaluation still going on (`evaluation_running`), or the version "
        "is disabled (`version_disabled`).",
        s429="Too many runs are going on; `Retry-After` says when.",
    ),
)
async def start_evaluation(
    agent: EditableAgent, body: EvaluationCreate, request: Request, session: SessionDep, engines: EnginesDep
) -> EvaluationRead:
    return await EvaluationService(session, engines, agent.caller).start(agent, body, run_manager(request))


@router.get("/evaluations", summary="The agent's evaluations, newest first (without their results).")
async def list_evaluations(
    agent: ReadableAgent, session: SessionDep, engines: EnginesDep, page: PageParamsDep
) -> Page[EvaluationSummary]:
    return await EvaluationService(session, engines, agent.caller).list_evaluations(agent, page)


def _ref(value: str) -> EvaluationRef:
    if value == "draft":
        return "draft"
    if value.isascii() and value.isdigit() and 1 <= len(value) <= 10 and 1 <= int(value) <= 2**31 - 1:
        return int(value)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "loc": ["query"],
                    "msg": "An evaluation id, a version number or `draft`.",
                    "type": "value_error",
                    "input": value,
                }
            ]
        ) from None


RefQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=36,
        description="An evaluation id, or `draft` / a version number for its newest completed evaluation.",
    ),
]


# Declared before `/evaluations/{evaluation_id}`, which would take `compare` for an id.
@router.get(
    "/evaluations/compare",
    summary="Two evaluations side by side, case by case: passed before and after, with the answers.",
)
async def compare_evaluations(
    agent: ReadableAgent, session: SessionDep, engines: EnginesDep, base: RefQuery, target: RefQuery = "draft"
) -> EvaluationComparison:
    service = EvaluationService(session, engines, agent.caller)
    return await service.compare(agent, _ref(base), _ref(target))


@router.get("/evaluations/{evaluation_id}", summary="One evaluation with its results per case.")
async def get_evaluation(
    agent: ReadableAgent, evaluation_id: uuid.UUID, session: SessionDep, engines: EnginesDep
) -> EvaluationRead:
    return await EvaluationService(session, engines, agent.caller).get(agent, evaluation_id)


routers = [router]
