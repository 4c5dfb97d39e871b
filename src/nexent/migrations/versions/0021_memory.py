"""memory: memories at four levels, the tenant's memory index, memory switches per user and per agent

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 16:49:57.778971
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nexent.core.db


revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('memory_indexes',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('index_name', sa.String(length=64), nullable=False),
    sa.Column('embedding_model_id', sa.Uuid(), nullable=True),
    sa.Column('dimension', sa.Integer(), nullable=False),
    sa.Column('pending_index_name', sa.String(length=64), nullable=True),
    sa.Column('pending_model_id', sa.Uuid(), nullable=True),
    sa.Column('pending_dimension', sa.Integer(), nullable=True),
    sa.Column('reembed_token', sa.Uuid(), nullable=True),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memory_indexes_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_memory_indexes'))
    )
    op.create_table('memory_user_settings',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('disabled_levels', sa.JSON(), nullable=False),
    sa.Column('disabled_agent_ids', sa.JSON(), nullable=False),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memory_user_settings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memory_user_settings_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'user_id', name=op.f('pk_memory_user_settings'))
    )
    op.create_table('memories',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source_run_id', sa.Uuid(), nullable=True),
    sa.Column('source_conversation_id', sa.Uuid(), nullable=True),
    sa.Column('embedding_model_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_memories_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_memories_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memories_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memories_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memories'))
    )
    with op.batch_alter_table('memories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memories_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_memories_tenant_level_user', ['tenant_id', 'level', 'user_id'], unique=False)

    op.create_table('memory_agent_settings',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_memory_agent_settings_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memory_agent_settings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'agent_id', name=op.f('pk_memory_agent_settings'))
    )


def downgrade() -> None:
    op.drop_table('memory_agent_settings')
    with op.batch_alter_table('memories', schema=None) as batch_op:
        batch_op.drop_index('ix_memories_tenant_level_user')
        batch_op.drop_index(batch_op.f('ix_memories_tenant_id'))

    op.drop_table('memories')
    op.drop_table('memory_user_settings')
    op.drop_table('memory_indexes')
