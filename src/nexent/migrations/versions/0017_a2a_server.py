"""a2a server: an agent's A2A exposure, and the tasks of its A2A callers

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 14:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("a2a_exposure", sa.String(length=16), server_default="off", nullable=False))
    # The a2a-sdk's SQL task store (`a2a.server.models.TaskMixin`), under our name; `owner` is
    # "<tenant id>/<agent id>/<caller scope>" (see `nexent.a2a_server.models`).
    op.create_table(
        "a2a_tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("context_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("last_updated", sa.DateTime(), nullable=True),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("artifacts", sa.JSON(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=True),
        sa.Column("protocol_version", sa.String(length=16), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_a2a_tasks")),
    )
    op.create_index(op.f("ix_a2a_tasks_id"), "a2a_tasks", ["id"], unique=False)
    op.create_index("ix_a2a_tasks_owner_context", "a2a_tasks", ["owner", "context_id"], unique=False)
    op.create_index("idx_a2a_tasks_owner_last_updated", "a2a_tasks", ["owner", "last_updated"], unique=False)


def downgrade() -> None:
    op.drop_index("idx_a2a_tasks_owner_last_updated", table_name="a2a_tasks")
    op.drop_index("ix_a2a_tasks_owner_context", table_name="a2a_tasks")
    op.drop_index(op.f("ix_a2a_tasks_id"), table_name="a2a_tasks")
    op.drop_table("a2a_tasks")
    op.drop_column("agents", "a2a_exposure")
