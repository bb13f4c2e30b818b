"""outage: spool_applied (opt-outs applied from the spool, by line id)

Revision ID: 5b7c0d2f1a93
Revises: b7e41c2a9d10
Create Date: 2026-11-29 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b7c0d2f1a93'
down_revision = 'b7e41c2a9d10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('spool_applied',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spool_applied'))
    )


def downgrade():
    op.drop_table('spool_applied')
