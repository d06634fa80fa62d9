"""One registry of label tags: a classroom set's tag and an instrument's can no longer be equal

A label's short page /i/<TAG> leads to an instrument or a classroom set, so their tags share one
namespace. The asset_tag table holds each tag once (its primary key), with its kind; instrument and
classroom_set each refer to (tag, kind) with their own kind fixed by a CHECK, so the database refuses
a set tag equal to an instrument tag, and the reverse, under any concurrency. Existing tags are
registered here; a hub whose data already has a clash is told which tags to change first.

On SQLite both tables are rebuilt (batch mode); migrations/env.py turns foreign key enforcement off
for the rebuild and checks every foreign key before committing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TAG_TYPE = sa.String(length=32).with_variant(sa.String(length=32, collation='C'), 'postgresql')
HOLDERS = (('instrument', 'asset_tag', 'instrument'), ('classroom_set', 'tag', 'set'))


def upgrade():
    clashes = op.get_bind().execute(sa.text(
        'SELECT classroom_set.tag FROM classroom_set JOIN instrument ON instrument.asset_tag = classroom_set.tag '
        'ORDER BY 1')).scalars().all()
    if clashes:
        raise RuntimeError(f"{len(clashes)} classroom sets have an instrument's tag ({', '.join(clashes[:10])}): "
                           'give each of those sets a tag of its own before upgrading.')
    op.create_table('asset_tag',
    sa.Column('tag', TAG_TYPE, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.CheckConstraint("kind IN ('instrument', 'set')", name=op.f('ck_asset_tag_kind_known')),
    sa.PrimaryKeyConstraint('tag', name=op.f('pk_asset_tag')),
    sa.UniqueConstraint('tag', 'kind', name=op.f('uq_asset_tag_tag'))
    )
    for table, column, kind in HOLDERS:
        op.execute(f"INSERT INTO asset_tag (tag, kind) SELECT {column}, '{kind}' FROM {table}")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('tag_kind', sa.String(length=16), server_default=kind, nullable=False))
            batch_op.create_check_constraint(op.f(f'ck_{table}_tag_kind_{kind}'), f"tag_kind = '{kind}'")
            batch_op.create_foreign_key(op.f(f'fk_{table}_{column}_asset_tag'), 'asset_tag',
                                        [column, 'tag_kind'], ['tag', 'kind'])


def downgrade():
    for table, column, kind in HOLDERS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f'fk_{table}_{column}_asset_tag'), type_='foreignkey')
            batch_op.drop_constraint(op.f(f'ck_{table}_tag_kind_{kind}'), type_='check')
            batch_op.drop_column('tag_kind')
    op.drop_table('asset_tag')
