"""Request and response shapes of test cases and evaluations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from nexent.agents.schemas import VersionRef
from nexent.core.schemas import Patch
from nexent.evaluation.checks import MAX_PATTERN_CHARS, compile_pattern
from nexent.evaluation.models import EvaluationStatus

MAX_CASES_PER_AGENT = 100

Question = Annotated[str, StringConstraints(min_length=1, max_length=8000, pattern=r"\S")]
Fact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class ContainsCheck(BaseModel):
    """The answer contains `value` (ignoring case unless `case_sensitive`)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["contains"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    case_sensitive: bool = False


class RegexCheck(BaseModel):
    """The answer matches `pattern` somewhere (Python syntax; at most 1 s of matching)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["regex"]
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS)]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        compile_pattern(pattern)
        return pattern


class JudgeCheck(BaseModel):
    """The tenant's default LLM, given the question, the answer and `rubric`, answers PASS."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["judge"]
    rubric: Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=r"\S")]


Check = Annotated[ContainsCheck | RegexCheck | JudgeCheck, Field(discriminator="type")]
Checks = Annotated[list[Check], Field(min_length=1, max_length=10)]
Facts = Annotated[list[Fact], Field(max_length=20, description="What a right answer states (shown to the judge).")]


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    checks: Checks
    expected_facts: Facts = Field(default_factory=list)


class CaseUpdate(Patch):
    question: Question | None = None
    checks: Checks | None = None
    expected_facts: Facts | None = None


class CaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agent_id: uuid.UUID
    question: str
    checks: list[Check]
    expected_facts: list[str]
    created_at: datetime
    updated_at: datetime


class EvaluationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: VersionRef = Field(default="draft", description="`draft`, or the number of a version.")


class CaseCheckResult(BaseModel):
    type: Literal["contains", "regex", "judge"]
    passed: bool
    detail: str


class CaseResult(BaseModel):
    case_id: uuid.UUID
    question: str
    passed: bool
    checks: list[CaseCheckResult]
    run_id: uuid.UUID | None = Field(description="The run that answered: `GET /api/runs/{id}` and its events.")
    answer: str | None
    error: str | None = Field(description="Why the case has no answer to check (the run failed or did not start).")


class EvaluationSummary(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    target: VersionRef
    status: EvaluationStatus
    pass_rate: float | None = Field(description="Passed cases over all cases, once completed.")
    passed: int
    total: int
    fingerprint: str = Field(description="Of the configuration evaluated (`agents.versions.fingerprint`).")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EvaluationRead(EvaluationSummary):
    results: list[CaseResult] = Field(description="One per finished case, in the test set's order.")


class CaseSide(BaseModel):
    passed: bool
    answer: str | None
    run_id: uuid.UUID | None
    error: str | None


class CaseComparison(BaseModel):
    case_id: uuid.UUID
    question: str
    base: CaseSide | None = Field(description="None: the case was not in the base evaluation.")
    target: CaseSide | None = Field(description="None: the case was not in the target evaluation.")
    changed: Literal["fixed", "broken", "same", "added", "removed"]


class EvaluationComparison(BaseModel):
    base: EvaluationSummary
    target: EvaluationSummary
    cases: list[CaseComparison]
