"""contact import files in parts (not in the job row); webhook event numbers from a sequence

Revision ID: d4e8b2a7c915
Revises: d4a8b2c6e1f3
Create Date: 2026-11-29 21:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4e8b2a7c915'
down_revision = 'd4a8b2c6e1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('contact_import_parts',
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['contact_imports.id'],
                            name=op.f('fk_contact_import_parts_import_id_contact_imports')),
    sa.PrimaryKeyConstraint('import_id', 'part', name=op.f('pk_contact_import_parts'))
    )
    # A job still holding its file in the row (queued before this revision) keeps it as part 0.
    op.execute("INSERT INTO contact_import_parts (import_id, part, data) "
               "SELECT id, 0, content FROM contact_imports WHERE content IS NOT NULL AND status != 'done'")
    with op.batch_alter_table('contact_imports', schema=None) as batch_op:
        batch_op.drop_column('content')

    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("CREATE SEQUENCE webhook_event_seq")
        op.execute("SELECT setval('webhook_event_seq', greatest(coalesce(max(sequence), 0), 1), max(sequence) IS NOT NULL)"
                   " FROM webhook_deliveries")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_sequence', ['sequence'], unique=False)
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_column('last_sequence')


def downgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_sequence', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_sequence')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP SEQUENCE webhook_event_seq")
    with op.batch_alter_table('contact_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content', sa.LargeBinary(), nullable=True))
    op.drop_table('contact_import_parts')
