"""knowledge documents: the file, id and line of a row imported as its own document (structured import)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:03:39.879595
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('knowledge_documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('row_source', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('row_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('row_line', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            'uq_knowledge_documents_kb_row', ['knowledge_base_id', 'row_source', 'row_id']
        )


def downgrade() -> None:
    with op.batch_alter_table('knowledge_documents', schema=None) as batch_op:
        batch_op.drop_constraint('uq_knowledge_documents_kb_row', type_='unique')
        batch_op.drop_column('row_line')
        batch_op.drop_column('row_id')
        batch_op.drop_column('row_source')
