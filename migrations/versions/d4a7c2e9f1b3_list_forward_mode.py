"""lists.forward_mode: forward to a friend by our mail (server) or the forwarder's mail program (client)

Revision ID: d4a7c2e9f1b3
Revises: c3f9a1d2e4b5
Create Date: 2026-11-29 21:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd4a7c2e9f1b3'
down_revision = 'c3f9a1d2e4b5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forward_mode', sa.String(length=8), server_default='server', nullable=False))
        batch_op.create_check_constraint(op.f('ck_lists_forward_mode'), "forward_mode IN ('server', 'client')")


def downgrade():
    with op.batch_alter_table('lists', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_lists_forward_mode'), type_='check')
        batch_op.drop_column('forward_mode')
