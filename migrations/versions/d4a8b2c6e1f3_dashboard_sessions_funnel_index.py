"""dashboard: sessions table and the funnel's index on consent_events (list_id, type, at)

Revision ID: d4a8b2c6e1f3
Revises: d4a7c2e9f1b3
Create Date: 2026-11-29 21:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4a8b2c6e1f3'
down_revision = 'd4a7c2e9f1b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('dashboard_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_dashboard_sessions_account_id_accounts')),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_dashboard_sessions_api_key_id_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_sessions'))
    )
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dashboard_sessions_account_id'), ['account_id'], unique=False)
    # Not in a batch: on SQLite a batch would copy the table, and its append-only triggers with it.
    op.create_index('ix_consent_events_list_type_at', 'consent_events', ['list_id', 'type', 'at'], unique=False)


def downgrade():
    op.drop_index('ix_consent_events_list_type_at', table_name='consent_events')
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dashboard_sessions_account_id'))
    op.drop_table('dashboard_sessions')
