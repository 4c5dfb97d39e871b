"""agent versions: display names, published versions with what they depend on, the version a run used

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nexent.core.db


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=120), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('published_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('min_pass_rate', sa.Float(), nullable=True))
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agent_version', sa.Integer(), nullable=True))
    op.create_table('agent_versions',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('model_id', sa.Uuid(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_versions_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_agent_versions_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_agent_versions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_versions')),
    sa.UniqueConstraint('agent_id', 'number', name='uq_agent_versions_agent_number')
    )
    with op.batch_alter_table('agent_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_versions_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('agent_version_refs',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('version_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('target_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_agent_version_refs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['agent_versions.id'], name=op.f('fk_agent_version_refs_version_id_agent_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_version_refs'))
    )
    with op.batch_alter_table('agent_version_refs', schema=None) as batch_op:
        batch_op.create_index('ix_agent_version_refs_target', ['tenant_id', 'kind', 'target_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agent_version_refs_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agent_version_refs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_version_refs_version_id'))
        batch_op.drop_index('ix_agent_version_refs_target')
    op.drop_table('agent_version_refs')
    with op.batch_alter_table('agent_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_versions_tenant_id'))
    op.drop_table('agent_versions')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('agent_version')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('min_pass_rate')
        batch_op.drop_column('published_version')
        batch_op.drop_column('display_name')
