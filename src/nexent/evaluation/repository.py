"""The only place that queries test cases and evaluations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.db import utcnow
from nexent.core.repository import TenantScopedRepository
from nexent.evaluation.models import UNFINISHED_EVALUATIONS, Evaluation, EvaluationCase, EvaluationStatus


class CaseRepository(TenantScopedRepository[EvaluationCase]):
    model = EvaluationCase

    async def of_agent(self, agent_id: uuid.UUID) -> list[EvaluationCase]:
        rows = await self.session.scalars(
            self.select()
            .where(EvaluationCase.agent_id == agent_id)
            .order_by(EvaluationCase.created_at, EvaluationCase.id)
        )
        return list(rows)

    async def one(self, agent_id: uuid.UUID, case_id: uuid.UUID) -> EvaluationCase | None:
        found: EvaluationCase | None = await self.session.scalar(
            self.select().where(EvaluationCase.agent_id == agent_id, EvaluationCase.id == case_id)
        )
        return found

    async def count_of(self, agent_id: uuid.UUID) -> int:
        return await self.count(EvaluationCase.agent_id == agent_id)


class EvaluationRepository(TenantScopedRepository[Evaluation]):
    model = Evaluation

    async def one(self, agent_id: uuid.UUID, evaluation_id: uuid.UUID) -> Evaluation | None:
        found: Evaluation | None = await self.session.scalar(
            self.select().where(Evaluation.agent_id == agent_id, Evaluation.id == evaluation_id)
        )
        return found

    async def page(self, agent_id: uuid.UUID, *, limit: int, offset: int) -> tuple[list[Evaluation], int]:
        """The agent's evaluations, newest first, and how many there are."""
        total = await self.count(Evaluation.agent_id == agent_id)
        rows = await self.session.scalars(
            self.select()
            .where(Evaluation.agent_id == agent_id)
            .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows), total

    async def latest_completed(
        self, agent_id: uuid.UUID, version: int | None, *, fingerprint: str | None = None
    ) -> Evaluation | None:
        """The newest completed evaluation of the draft (`version` None) or a version, of `fingerprint` if given."""
        conditions: list[ColumnElement[bool]] = [
            Evaluation.agent_id == agent_id,
            Evaluation.status == EvaluationStatus.COMPLETED.value,
            Evaluation.version.is_(None) if version is None else Evaluation.version == version,
        ]
        if fingerprint is not None:
            conditions.append(Evaluation.fingerprint == fingerprint)
        found: Evaluation | None = await self.session.scalar(
            self.select().where(*conditions).order_by(Evaluation.finished_at.desc(), Evaluation.id.desc()).limit(1)
        )
        return found

    async def unfinished_of(self, agent_id: uuid.UUID) -> Evaluation | None:
        found: Evaluation | None = await self.session.scalar(
            self.select().where(Evaluation.agent_id == agent_id, Evaluation.status.in_(UNFINISHED_EVALUATIONS))
        )
        return found

    async def set_if_unfinished(self, evaluation_id: uuid.UUID, **values: Any) -> bool:
        """Change an evaluation still queued or running (a claim: False when it ended meanwhile)."""
        return await self._update([Evaluation.id == evaluation_id], values)

    async def fail_stale(self, agent_id: uuid.UUID, silent_since: datetime, error: str) -> int:
        """Fail the agent's unfinished evaluations whose process stopped beating before `silent_since`."""
        conditions = [Evaluation.agent_id == agent_id, Evaluation.heartbeat_at < silent_since]
        return await self._count(conditions, _failed(error))

    async def _update(self, conditions: list[ColumnElement[bool]], values: dict[str, Any]) -> bool:
        return await self._count(conditions, values) == 1

    async def _count(self, conditions: list[ColumnElement[bool]], values: dict[str, Any]) -> int:
        result = await self.session.execute(
            update(Evaluation)
            .where(
                Evaluation.tenant_id == self.tenant_id,
                Evaluation.status.in_(UNFINISHED_EVALUATIONS),
                *conditions,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount if isinstance(result, CursorResult) else 0

    @staticmethod
    async def fail_unfinished_everywhere(session: AsyncSession, error: str) -> int:
        """Fail every tenant's unfinished evaluations: only for the embedded platform's recovery at start-up."""
        result = await session.execute(
            update(Evaluation).where(Evaluation.status.in_(UNFINISHED_EVALUATIONS)).values(**_failed(error))
        )
        return result.rowcount if isinstance(result, CursorResult) else 0


def _failed(error: str) -> dict[str, Any]:
    return {"status": EvaluationStatus.FAILED.value, "error": error, "finished_at": utcnow()}
