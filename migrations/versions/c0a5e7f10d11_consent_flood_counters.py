"""consent: fixed-window flood counters

Revision ID: c0a5e7f10d11
Revises: b0c5e1a7d2f4
Create Date: 2026-11-29 17:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c0a5e7f10d11'
down_revision = 'b0c5e1a7d2f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('flood_counters',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_flood_counters'))
    )


def downgrade():
    op.drop_table('flood_counters')
