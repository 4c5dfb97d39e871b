"""The only queries on MCP servers and their logs, each limited to one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.core.repository import TenantScopedRepository
from nexent.mcp_client.models import McpServer, McpServerLog


class McpServerRepository(TenantScopedRepository[McpServer]):
    model = McpServer

    async def page(self, limit: int, offset: int) -> tuple[list[McpServer], int]:
        rows = await self.session.scalars(self.select().order_by(McpServer.name).limit(limit).offset(offset))
        return list(rows), await self.count()

    async def enabled(self) -> list[McpServer]:
        rows = await self.session.scalars(self.select().where(McpServer.enabled.is_(True)).order_by(McpServer.name))
        return list(rows)

    async def name_taken(self, name: str, *, except_id: uuid.UUID | None = None) -> bool:
        query = self.select().where(McpServer.name == name)
        if except_id is not None:
            query = query.where(McpServer.id != except_id)
        return await self.session.scalar(query.limit(1)) is not None


class McpLogRepository:
    """Log lines of one tenant's servers."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def add(self, server_id: uuid.UUID, stream: str, lines: Sequence[tuple[int, str]], keep: int) -> None:
        """Append lines (`(seq, text)`) and drop the server's oldest beyond the newest `keep`."""
        self.session.add_all(
            McpServerLog(tenant_id=self.tenant_id, server_id=server_id, seq=seq, stream=stream, line=text)
            for seq, text in lines
        )
        await self.session.flush()
        cutoff = await self.session.scalar(
            select(McpServerLog.seq)
            .where(McpServerLog.tenant_id == self.tenant_id, McpServerLog.server_id == server_id)
            .order_by(McpServerLog.seq.desc())
            .offset(keep)
            .limit(1)
        )
        if cutoff is not None:
            await self.session.execute(
                delete(McpServerLog).where(
                    McpServerLog.tenant_id == self.tenant_id,
                    McpServerLog.server_id == server_id,
                    McpServerLog.seq <= cutoff,
                )
            )

    async def newest(self, server_id: uuid.UUID, limit: int) -> list[McpServerLog]:
        """The newest `limit` lines, oldest first."""
        rows = await self.session.scalars(
            select(McpServerLog)
            .where(McpServerLog.tenant_id == self.tenant_id, McpServerLog.server_id == server_id)
            .order_by(McpServerLog.seq.desc())
            .limit(limit)
        )
        return list(reversed(list(rows)))

    async def count(self, server_id: uuid.UUID) -> int:
        query = select(func.count()).where(
            McpServerLog.tenant_id == self.tenant_id, McpServerLog.server_id == server_id
        )
        return int(await self.session.scalar(query) or 0)
