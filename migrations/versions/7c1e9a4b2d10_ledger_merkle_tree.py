"""Ledger: Merkle tree with a sealer and signed tree heads (issue 11); controller identity.

Events are no longer numbered at insert: ``seq`` (leaf index + 1) and the old chain columns
become nullable, ``ledger_heads`` (the row every append locked) goes, ``ledger_nodes`` and
``ledger_tree_heads`` come, with guards refusing UPDATE and DELETE. Existing events keep
their seq, prev_hash and entry_hash: the old chain stays verifiable as it was, and its
events become the first leaves of the tree in seq order on the sealer's first run (which
signs the first head; the migration has no access to the signing key, by design).

Revision ID: 7c1e9a4b2d10
Revises: 5775cc054225
"""
from alembic import op
import sqlalchemy as sa

revision = "7c1e9a4b2d10"
down_revision = "5775cc054225"
branch_labels = None
depends_on = None

#: Copied from flexmail/models/consent_events.py at this revision.
PG_GUARD = "\nCREATE OR REPLACE FUNCTION consent_events_guard() RETURNS trigger AS $$\nBEGIN\n  IF TG_OP = 'DELETE' THEN\n    RAISE EXCEPTION 'consent_events are append-only (DELETE refused)';\n  END IF;\n  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.account_id IS DISTINCT FROM OLD.account_id OR NEW.prev_hash IS DISTINCT FROM OLD.prev_hash OR NEW.content_hash IS DISTINCT FROM OLD.content_hash OR NEW.entry_hash IS DISTINCT FROM OLD.entry_hash THEN\n    RAISE EXCEPTION 'consent_events chain columns cannot change';\n  END IF;\n  IF OLD.seq IS NOT NULL AND NEW.seq IS DISTINCT FROM OLD.seq THEN\n    RAISE EXCEPTION 'consent_events seq is set once, by the sealer';\n  END IF;\n  IF (NEW.subscription_id::text IS DISTINCT FROM OLD.subscription_id::text AND NEW.subscription_id IS NOT NULL) OR (NEW.list_id::text IS DISTINCT FROM OLD.list_id::text AND NEW.list_id IS NOT NULL) OR (NEW.type::text IS DISTINCT FROM OLD.type::text AND NEW.type IS NOT NULL) OR (NEW.at::text IS DISTINCT FROM OLD.at::text AND NEW.at IS NOT NULL) OR (NEW.source::text IS DISTINCT FROM OLD.source::text AND NEW.source IS NOT NULL) OR (NEW.details_hash::text IS DISTINCT FROM OLD.details_hash::text AND NEW.details_hash IS NOT NULL) OR (NEW.salt::text IS DISTINCT FROM OLD.salt::text AND NEW.salt IS NOT NULL) OR (NEW.commitments::text IS DISTINCT FROM OLD.commitments::text AND NEW.commitments IS NOT NULL) THEN\n    RAISE EXCEPTION 'consent_events content may only be redacted to NULL';\n  END IF;\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\nDROP TRIGGER IF EXISTS consent_events_guard ON consent_events;\nCREATE TRIGGER consent_events_guard BEFORE UPDATE OR DELETE ON consent_events\n  FOR EACH ROW EXECUTE FUNCTION consent_events_guard();\n"
SQLITE_GUARDS = ["CREATE TRIGGER IF NOT EXISTS consent_events_no_delete BEFORE DELETE ON consent_events BEGIN SELECT RAISE(ABORT, 'consent_events are append-only (DELETE refused)'); END", "CREATE TRIGGER IF NOT EXISTS consent_events_chain_fixed BEFORE UPDATE ON consent_events WHEN NEW.id IS NOT OLD.id OR NEW.account_id IS NOT OLD.account_id OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.content_hash IS NOT OLD.content_hash OR NEW.entry_hash IS NOT OLD.entry_hash BEGIN SELECT RAISE(ABORT, 'consent_events chain columns cannot change'); END", "CREATE TRIGGER IF NOT EXISTS consent_events_seq_once BEFORE UPDATE ON consent_events WHEN OLD.seq IS NOT NULL AND NEW.seq IS NOT OLD.seq BEGIN SELECT RAISE(ABORT, 'consent_events seq is set once, by the sealer'); END", "CREATE TRIGGER IF NOT EXISTS consent_events_redact_only BEFORE UPDATE ON consent_events WHEN (NEW.subscription_id IS NOT OLD.subscription_id AND NEW.subscription_id IS NOT NULL) OR (NEW.list_id IS NOT OLD.list_id AND NEW.list_id IS NOT NULL) OR (NEW.type IS NOT OLD.type AND NEW.type IS NOT NULL) OR (NEW.at IS NOT OLD.at AND NEW.at IS NOT NULL) OR (NEW.source IS NOT OLD.source AND NEW.source IS NOT NULL) OR (NEW.details_hash IS NOT OLD.details_hash AND NEW.details_hash IS NOT NULL) OR (NEW.salt IS NOT OLD.salt AND NEW.salt IS NOT NULL) OR (NEW.commitments IS NOT OLD.commitments AND NEW.commitments IS NOT NULL) BEGIN SELECT RAISE(ABORT, 'consent_events content may only be redacted to NULL'); END"]
PG_FROZEN_FUNCTION = "\nCREATE OR REPLACE FUNCTION ledger_frozen_guard() RETURNS trigger AS $$\nBEGIN\n  RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' rows are written once (' || TG_OP || ' refused)';\nEND;\n$$ LANGUAGE plpgsql;\n"
PG_FROZEN = ['DROP TRIGGER IF EXISTS ledger_nodes_frozen ON ledger_nodes;\nCREATE TRIGGER ledger_nodes_frozen BEFORE UPDATE OR DELETE ON ledger_nodes FOR EACH ROW EXECUTE FUNCTION ledger_frozen_guard();', 'DROP TRIGGER IF EXISTS ledger_tree_heads_frozen ON ledger_tree_heads;\nCREATE TRIGGER ledger_tree_heads_frozen BEFORE UPDATE OR DELETE ON ledger_tree_heads FOR EACH ROW EXECUTE FUNCTION ledger_frozen_guard();']
SQLITE_FROZEN = ["CREATE TRIGGER IF NOT EXISTS ledger_nodes_no_update BEFORE UPDATE ON ledger_nodes BEGIN SELECT RAISE(ABORT, 'ledger_nodes rows are written once (UPDATE refused)'); END", "CREATE TRIGGER IF NOT EXISTS ledger_nodes_no_delete BEFORE DELETE ON ledger_nodes BEGIN SELECT RAISE(ABORT, 'ledger_nodes rows are written once (DELETE refused)'); END", "CREATE TRIGGER IF NOT EXISTS ledger_tree_heads_no_update BEFORE UPDATE ON ledger_tree_heads BEGIN SELECT RAISE(ABORT, 'ledger_tree_heads rows are written once (UPDATE refused)'); END", "CREATE TRIGGER IF NOT EXISTS ledger_tree_heads_no_delete BEFORE DELETE ON ledger_tree_heads BEGIN SELECT RAISE(ABORT, 'ledger_tree_heads rows are written once (DELETE refused)'); END"]
#: The guards of 0a5d2dca01fa, restored by downgrade.
OLD_PG_GUARD = "\nCREATE OR REPLACE FUNCTION consent_events_guard() RETURNS trigger AS $$\nBEGIN\n  IF TG_OP = 'DELETE' THEN\n    RAISE EXCEPTION 'consent_events are append-only (DELETE refused)';\n  END IF;\n  IF NEW.id IS DISTINCT FROM OLD.id OR NEW.account_id IS DISTINCT FROM OLD.account_id OR NEW.seq IS DISTINCT FROM OLD.seq OR NEW.prev_hash IS DISTINCT FROM OLD.prev_hash OR NEW.content_hash IS DISTINCT FROM OLD.content_hash OR NEW.entry_hash IS DISTINCT FROM OLD.entry_hash THEN\n    RAISE EXCEPTION 'consent_events chain columns cannot change';\n  END IF;\n  IF (NEW.subscription_id::text IS DISTINCT FROM OLD.subscription_id::text AND NEW.subscription_id IS NOT NULL) OR (NEW.list_id::text IS DISTINCT FROM OLD.list_id::text AND NEW.list_id IS NOT NULL) OR (NEW.type::text IS DISTINCT FROM OLD.type::text AND NEW.type IS NOT NULL) OR (NEW.at::text IS DISTINCT FROM OLD.at::text AND NEW.at IS NOT NULL) OR (NEW.source::text IS DISTINCT FROM OLD.source::text AND NEW.source IS NOT NULL) OR (NEW.details_hash::text IS DISTINCT FROM OLD.details_hash::text AND NEW.details_hash IS NOT NULL) OR (NEW.salt::text IS DISTINCT FROM OLD.salt::text AND NEW.salt IS NOT NULL) OR (NEW.commitments::text IS DISTINCT FROM OLD.commitments::text AND NEW.commitments IS NOT NULL) THEN\n    RAISE EXCEPTION 'consent_events content may only be redacted to NULL';\n  END IF;\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\nDROP TRIGGER IF EXISTS consent_events_guard ON consent_events;\nCREATE TRIGGER consent_events_guard BEFORE UPDATE OR DELETE ON consent_events\n  FOR EACH ROW EXECUTE FUNCTION consent_events_guard();\n"
OLD_SQLITE_GUARDS = ["CREATE TRIGGER IF NOT EXISTS consent_events_no_delete BEFORE DELETE ON consent_events BEGIN SELECT RAISE(ABORT, 'consent_events are append-only (DELETE refused)'); END", "CREATE TRIGGER IF NOT EXISTS consent_events_chain_fixed BEFORE UPDATE ON consent_events WHEN NEW.id IS NOT OLD.id OR NEW.account_id IS NOT OLD.account_id OR NEW.seq IS NOT OLD.seq OR NEW.prev_hash IS NOT OLD.prev_hash OR NEW.content_hash IS NOT OLD.content_hash OR NEW.entry_hash IS NOT OLD.entry_hash BEGIN SELECT RAISE(ABORT, 'consent_events chain columns cannot change'); END", "CREATE TRIGGER IF NOT EXISTS consent_events_redact_only BEFORE UPDATE ON consent_events WHEN (NEW.subscription_id IS NOT OLD.subscription_id AND NEW.subscription_id IS NOT NULL) OR (NEW.list_id IS NOT OLD.list_id AND NEW.list_id IS NOT NULL) OR (NEW.type IS NOT OLD.type AND NEW.type IS NOT NULL) OR (NEW.at IS NOT OLD.at AND NEW.at IS NOT NULL) OR (NEW.source IS NOT OLD.source AND NEW.source IS NOT NULL) OR (NEW.details_hash IS NOT OLD.details_hash AND NEW.details_hash IS NOT NULL) OR (NEW.salt IS NOT OLD.salt AND NEW.salt IS NOT NULL) OR (NEW.commitments IS NOT OLD.commitments AND NEW.commitments IS NOT NULL) BEGIN SELECT RAISE(ABORT, 'consent_events content may only be redacted to NULL'); END"]
OLD_SQLITE_TRIGGERS = ("consent_events_no_delete", "consent_events_chain_fixed", "consent_events_redact_only",
                       "consent_events_seq_once")


def upgrade():
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("legal_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("postal_address", sa.String(length=500), nullable=True))
    op.create_table("ledger_nodes",
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("hash", sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ledger_nodes_account_id_accounts")),
    sa.PrimaryKeyConstraint("account_id", "level", "idx", name=op.f("pk_ledger_nodes"))
    )
    op.create_table("ledger_tree_heads",
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("root_hash", sa.String(length=64), nullable=False),
    sa.Column("timestamp", sa.String(length=40), nullable=False),
    sa.Column("key_id", sa.String(length=32), nullable=False),
    sa.Column("signature", sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ledger_tree_heads_account_id_accounts")),
    sa.PrimaryKeyConstraint("account_id", "tree_size", name=op.f("pk_ledger_tree_heads"))
    )
    if dialect == "sqlite":
        for name in OLD_SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index("ix_consent_events_unsealed", ["account_id", "id"], unique=False,
                              postgresql_where=sa.text("seq IS NULL"), sqlite_where=sa.text("seq IS NULL"))
    op.drop_table("ledger_heads")
    if dialect == "postgresql":
        op.execute(PG_GUARD)
        op.execute(PG_FROZEN_FUNCTION)
        for statement in PG_FROZEN:
            op.execute(statement)
    elif dialect == "sqlite":
        for statement in SQLITE_GUARDS + SQLITE_FROZEN:
            op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    unsealed = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM consent_events WHERE seq IS NULL OR prev_hash IS NULL")).scalar()
    if unsealed:
        raise RuntimeError(f"{unsealed} events exist only in the Merkle tree; the hash chain cannot hold them")
    op.create_table("ledger_heads",
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("entry_hash", sa.String(length=64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_ledger_heads_account_id_accounts")),
    sa.PrimaryKeyConstraint("account_id", name=op.f("pk_ledger_heads"))
    )
    op.execute("INSERT INTO ledger_heads (account_id, seq, entry_hash, updated_at) "
               "SELECT e.account_id, e.seq, e.entry_hash, CURRENT_TIMESTAMP FROM consent_events e "
               "WHERE e.seq = (SELECT max(seq) FROM consent_events m WHERE m.account_id = e.account_id)")
    if dialect == "postgresql":
        for table in ("ledger_nodes", "ledger_tree_heads"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_frozen ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_frozen_guard()")
        op.execute("DROP TRIGGER IF EXISTS consent_events_guard ON consent_events")
    else:
        for name in OLD_SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_unsealed", postgresql_where=sa.text("seq IS NULL"),
                            sqlite_where=sa.text("seq IS NULL"))
        batch_op.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
    op.drop_table("ledger_tree_heads")
    op.drop_table("ledger_nodes")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("postal_address")
        batch_op.drop_column("legal_name")
    # The guards of the previous revision come back with it.
    if dialect == "postgresql":
        op.execute(OLD_PG_GUARD)
    else:
        for statement in OLD_SQLITE_GUARDS:
            op.execute(statement)
