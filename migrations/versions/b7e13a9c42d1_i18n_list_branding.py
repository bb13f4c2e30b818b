"""i18n: list branding (accent colour, postal address, contact, privacy notice) and logos

Revision ID: b7e13a9c42d1
Revises: c0a5e7f10d11
Create Date: 2026-11-29 17:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b7e13a9c42d1'
down_revision = 'c0a5e7f10d11'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accent_color', sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column('postal_address', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('contact_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('privacy_url', sa.String(length=2000), nullable=True))
    op.create_table('list_logos',
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('source_url', sa.String(length=2000), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['lists.id'], name=op.f('fk_list_logos_list_id_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_id', name=op.f('pk_list_logos'))
    )


def downgrade():
    op.drop_table('list_logos')
    with op.batch_alter_table('lists', schema=None) as batch_op:
        batch_op.drop_column('privacy_url')
        batch_op.drop_column('contact_email')
        batch_op.drop_column('postal_address')
        batch_op.drop_column('accent_color')
