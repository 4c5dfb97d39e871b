"""openapi tools: a tenant's imports of OpenAPI documents as tools

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import nexent.core.db


revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('openapi_sources',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('document_version', sa.String(length=100), nullable=False),
    sa.Column('base_url', sa.String(length=2048), nullable=False),
    sa.Column('auth_kind', sa.String(length=16), nullable=False),
    sa.Column('auth_location', sa.String(length=16), nullable=False),
    sa.Column('auth_name', sa.String(length=100), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=True),
    sa.Column('timeout_seconds', sa.Float(), nullable=False),
    sa.Column('max_response_bytes', sa.Integer(), nullable=False),
    sa.Column('operations', sa.JSON(), nullable=False),
    sa.Column('selected', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', nexent.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_openapi_sources_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_openapi_sources_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_openapi_sources')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_openapi_sources_tenant_name')
    )


def downgrade() -> None:
    op.drop_table('openapi_sources')
