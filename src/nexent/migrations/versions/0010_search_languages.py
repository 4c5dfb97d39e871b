"""search: embedding models' languages, knowledge bases' text analysis version and vector weight

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('model_configs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('languages', sa.JSON(), nullable=True))
    # The built-in embedding model understands English only.
    op.execute(
        "UPDATE model_configs SET languages = '[\"en\"]' "
        "WHERE provider = 'local' AND model = 'all-MiniLM-L6-v2'"
    )
    with op.batch_alter_table('knowledge_bases', schema=None) as batch_op:
        # Indexes built before versions were recorded used analysis version 1.
        batch_op.add_column(sa.Column('analysis_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('vector_weight', sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('knowledge_bases', schema=None) as batch_op:
        batch_op.drop_column('vector_weight')
        batch_op.drop_column('analysis_version')
    with op.batch_alter_table('model_configs', schema=None) as batch_op:
        batch_op.drop_column('languages')
