"""mcp servers: a tenant's MCP servers and their log lines

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nexent.core.db


revision: str = '0015'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mcp_servers',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('transport', sa.String(length=8), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('command', sa.Text(), nullable=True),
    sa.Column('image', sa.String(length=255), nullable=True),
    sa.Column('headers_encrypted', sa.Text(), nullable=True),
    sa.Column('header_names', sa.JSON(), nullable=False),
    sa.Column('env_encrypted', sa.Text(), nullable=True),
    sa.Column('env_names', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('call_timeout_seconds', sa.Double(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('cpu_seconds', sa.Integer(), nullable=False),
    sa.Column('max_open_files', sa.Integer(), nullable=False),
    sa.Column('tools', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_detail', sa.Text(), nullable=True),
    sa.Column('checked_at', nexent.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_mcp_servers_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_mcp_servers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mcp_servers')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_mcp_servers_tenant_name')
    )
    op.create_table('mcp_server_logs',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('server_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('stream', sa.String(length=10), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['mcp_servers.id'], name=op.f('fk_mcp_server_logs_server_id_mcp_servers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_mcp_server_logs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mcp_server_logs'))
    )
    with op.batch_alter_table('mcp_server_logs', schema=None) as batch_op:
        batch_op.create_index('ix_mcp_server_logs_server', ['server_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_mcp_server_logs_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mcp_server_logs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mcp_server_logs_tenant_id'))
        batch_op.drop_index('ix_mcp_server_logs_server')
    op.drop_table('mcp_server_logs')
    op.drop_table('mcp_servers')
