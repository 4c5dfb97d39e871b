"""remote agents: a tenant's A2A agents, usable as sub-agents

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nexent.core.db


revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('remote_agents',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('card_url', sa.String(length=2000), nullable=False),
    sa.Column('card', sa.JSON(), nullable=False),
    sa.Column('card_fetched_at', nexent.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('headers_encrypted', sa.Text(), nullable=True),
    sa.Column('header_names', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('timeout_seconds', sa.Double(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_detail', sa.Text(), nullable=True),
    sa.Column('checked_at', nexent.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_remote_agents_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_remote_agents_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_remote_agents')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_remote_agents_tenant_name')
    )
    with op.batch_alter_table('remote_agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remote_agents_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('remote_agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remote_agents_tenant_id'))
    op.drop_table('remote_agents')
