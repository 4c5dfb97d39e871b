"""Typed FastAPI dependencies shared by every domain: engines, settings and the request's database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from nexent.engines.container import Engines
from nexent.settings import Settings


def get_engines(request: Request) -> Engines:
    engines: Engines = request.app.state.engines
    return engines


EnginesDep = Annotated[Engines, Depends(get_engines)]


def get_app_settings(engines: EnginesDep) -> Settings:
    return engines.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(engines: EnginesDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back when it raises."""
    async with engines.sessions() as session, session.begin():
        yield session


# scope="function": the transaction commits before the response is sent, so a client never sees a success
# that was not stored.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
