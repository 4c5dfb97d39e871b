"""The tasks of A2A callers: the a2a-sdk's SQL task model (`a2a.server.models.TaskMixin`) on our schema, in
`a2a_tasks`. `owner` is "<tenant id>/<agent id>/<caller scope>" (`service.owner_of`): every read and write of the
SDK's task store is filtered by it."""

from __future__ import annotations

from a2a.server.models import TaskModel, create_task_model
from sqlalchemy import Index

from nexent.core.db import Base

TASK_TABLE = "a2a_tasks"

A2aTask: type[TaskModel] = create_task_model(TASK_TABLE, Base)
# A caller's tasks of one context (multi-turn, ListTasks by contextId).
Index("ix_a2a_tasks_owner_context", A2aTask.owner, A2aTask.context_id)
