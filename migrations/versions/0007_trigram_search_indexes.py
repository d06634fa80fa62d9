"""Free-text instrument search served by indexes on PostgreSQL: pg_trgm GIN indexes and a size index

The instrument list's free-text search matches each word as ILIKE '%word%' on serial number,
make, model and location, or as the size, the start of a tag or a type's name. Without an
index for every one of those alternatives PostgreSQL reads every row, for the page and for
its COUNT. A trigram GIN index (gin_trgm_ops) on each plain column serves ILIKE '%word%';
a B-tree serves size = word. The indexes match the query's expressions exactly and are
declared in the models (loanservice/inventory/models.py, PostgreSQL only).

pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it without
being a superuser. Downgrading drops the indexes and leaves the extension, which other
things may use.

SQLite has no trigram index: there the migration does nothing and the search scans.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 01:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TRIGRAM_COLUMNS = ('serial_number', 'make', 'model', 'location')


def _on_postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    if not _on_postgresql():
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for column in TRIGRAM_COLUMNS:
        op.create_index(f'ix_instrument_{column}_trgm', 'instrument', [column],
                        postgresql_using='gin', postgresql_ops={column: 'gin_trgm_ops'})
    op.create_index('ix_instrument_size', 'instrument', ['size'])


def downgrade():
    if not _on_postgresql():
        return
    op.drop_index('ix_instrument_size', table_name='instrument')
    for column in reversed(TRIGRAM_COLUMNS):
        op.drop_index(f'ix_instrument_{column}_trgm', table_name='instrument')
