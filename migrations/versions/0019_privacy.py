"""Children's data: retention policy, holds, anonymisation records, removed documents, subject access
requests, the privacy notice's versions and who accepted which; the audit trail and the ledger may
have their words redacted (never their figures)

The audit trail and the ledger stay append-only, with one exception anonymisation needs: an update
that changes only the free text (an event's summary and changes, an invoice line's description, an
entry's reference and note) is let through, so that a name can be taken out. Every other column,
every amount and date, still cannot change, and no row can be deleted.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:29:41

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


# Per table: the columns that may be redacted, and (for SQLite's WHEN clause) every other column.
REDACTABLE = {
    "audit_event": (("summary", "changes"),
                    ("id", "at", "actor_id", "action", "entity_type", "entity_id", "instrument_id")),
    "ledger_entry": (("reference", "note"),
                     ("id", "account_id", "kind", "number", "posted_on", "due_on", "amount", "term_id", "method",
                      "against_id", "created_by_id", "created_at")),
    "invoice_line": (("description",),
                     ("id", "invoice_id", "kind", "charge_id", "loan_id", "full_fee", "remission_category",
                      "amount")),
}


def _redactable(dialect: str) -> list[str]:
    if dialect == "postgresql":
        statements = [
            "DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event",
            "DROP TRIGGER IF EXISTS ledger_entry_no_change ON ledger_entry",
            "DROP TRIGGER IF EXISTS invoice_line_no_change ON invoice_line",
            """CREATE FUNCTION append_only_but_redactable() RETURNS trigger AS $$
               DECLARE before jsonb; after jsonb;
               BEGIN
                 IF TG_OP = 'UPDATE' THEN
                   before := to_jsonb(OLD); after := to_jsonb(NEW);
                   FOR i IN 0 .. TG_NARGS - 1 LOOP
                     before := before - TG_ARGV[i]; after := after - TG_ARGV[i];
                   END LOOP;
                   IF before = after THEN RETURN NEW; END IF;
                 END IF;
                 RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
               END; $$ LANGUAGE plpgsql""",
        ]
        for table, (words, _) in REDACTABLE.items():
            arguments = ", ".join(f"'{column}'" for column in words)
            statements.append(f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
                                  FOR EACH ROW EXECUTE FUNCTION append_only_but_redactable({arguments})""")
        return statements
    if dialect == "sqlite":
        statements = []
        for table, (_, fixed) in REDACTABLE.items():
            unchanged = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in fixed)
            statements += [f"DROP TRIGGER IF EXISTS {table}_no_update",
                           f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} WHEN NOT ({unchanged})
                               BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""]
        return statements
    return []


def _strictly_append_only(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event",
            "DROP TRIGGER IF EXISTS ledger_entry_no_change ON ledger_entry",
            "DROP TRIGGER IF EXISTS invoice_line_no_change ON invoice_line",
            "DROP FUNCTION IF EXISTS append_only_but_redactable()",
            """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
               FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
            """CREATE TRIGGER ledger_entry_no_change BEFORE UPDATE OR DELETE ON ledger_entry
               FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""",
            """CREATE TRIGGER invoice_line_no_change BEFORE UPDATE OR DELETE ON invoice_line
               FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""",
        ]
    if dialect == "sqlite":
        statements = []
        for table in REDACTABLE:
            statements += [f"DROP TRIGGER IF EXISTS {table}_no_update",
                           f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                               BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""]
        return statements
    return []


def upgrade():
    op.create_table('retention_policy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_years', sa.Integer(), nullable=False),
    sa.Column('reservation_years', sa.Integer(), nullable=False),
    sa.Column('account_years', sa.Integer(), nullable=False),
    sa.Column('outbox_days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('account_years BETWEEN 1 AND 100', name=op.f('ck_retention_policy_account_years_range')),
    sa.CheckConstraint('family_years BETWEEN 1 AND 100', name=op.f('ck_retention_policy_family_years_range')),
    sa.CheckConstraint('id = 1', name=op.f('ck_retention_policy_one_row')),
    sa.CheckConstraint('outbox_days BETWEEN 1 AND 3650', name=op.f('ck_retention_policy_outbox_days_range')),
    sa.CheckConstraint('reservation_years BETWEEN 1 AND 100', name=op.f('ck_retention_policy_reservation_years_range')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_retention_policy_updated_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_policy'))
    )
    op.create_table('access_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('requester_name', sa.String(length=200), nullable=False),
    sa.Column('relationship_to_child', sa.String(length=100), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('extended_to', sa.Date(), nullable=True),
    sa.Column('extension_reason', sa.Text(), nullable=False),
    sa.Column('answered_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('answered_on IS NULL OR answered_on >= received_on', name=op.f('ck_access_request_answered_after_received')),
    sa.CheckConstraint('due_on > received_on', name=op.f('ck_access_request_due_after_received')),
    sa.CheckConstraint('extended_to IS NULL OR (extended_to > due_on AND length(trim(extension_reason)) > 0)', name=op.f('ck_access_request_extension_with_reason')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_access_request_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], name=op.f('fk_access_request_family_id_family')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_request'))
    )
    with op.batch_alter_table('access_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_request_answered_on'), ['answered_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_request_family_id'), ['family_id'], unique=False)

    op.create_table('family_anonymisation',
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("cause IN ('retention', 'erasure')", name=op.f('ck_family_anonymisation_cause_known')),
    sa.ForeignKeyConstraint(['by_id'], ['user_account.id'], name=op.f('fk_family_anonymisation_by_id_user_account')),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], name=op.f('fk_family_anonymisation_family_id_family')),
    sa.PrimaryKeyConstraint('family_id', name=op.f('pk_family_anonymisation'))
    )
    op.create_table('privacy_hold',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('length(trim(reason)) > 0', name=op.f('ck_privacy_hold_reason_given')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_privacy_hold_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], name=op.f('fk_privacy_hold_family_id_family')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_hold')),
    sa.UniqueConstraint('family_id', name=op.f('uq_privacy_hold_family_id'))
    )
    op.create_table('removed_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('dated', sa.Date(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('removed_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('length(sha256) = 64', name=op.f('ck_removed_document_sha256_length')),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], name=op.f('fk_removed_document_family_id_family')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_removed_document'))
    )
    with op.batch_alter_table('removed_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_removed_document_family_id'), ['family_id'], unique=False)

    op.create_table('privacy_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('version > 0', name=op.f('ck_privacy_notice_version_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_privacy_notice_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_notice')),
    sa.UniqueConstraint('version', name=op.f('uq_privacy_notice_version'))
    )
    op.create_table('privacy_notice_acceptance',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['privacy_notice.id'], name=op.f('fk_privacy_notice_acceptance_notice_id_privacy_notice')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_privacy_notice_acceptance_user_id_user_account')),
    sa.PrimaryKeyConstraint('user_id', 'notice_id', name=op.f('pk_privacy_notice_acceptance'))
    )
    op.create_index('ix_audit_event_entity', 'audit_event', ['entity_type', 'entity_id'], unique=False)
    for statement in _redactable(op.get_bind().dialect.name):
        op.execute(statement)



def downgrade():
    for statement in _strictly_append_only(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index('ix_audit_event_entity', table_name='audit_event')
    op.drop_table('privacy_notice_acceptance')
    op.drop_table('privacy_notice')

    with op.batch_alter_table('removed_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_removed_document_family_id'))

    op.drop_table('removed_document')
    op.drop_table('privacy_hold')
    op.drop_table('family_anonymisation')
    with op.batch_alter_table('access_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_request_family_id'))
        batch_op.drop_index(batch_op.f('ix_access_request_answered_on'))

    op.drop_table('access_request')
    op.drop_table('retention_policy')
