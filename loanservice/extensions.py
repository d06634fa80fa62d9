"""Extensions, unbound; the app factory binds them with init_app."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Index, MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints let Alembic create and drop them on PostgreSQL and SQLite alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# PostgreSQL's integer (SQLite's is wider): every id and count column is one. Input beyond it is refused.
DB_INT_MIN, DB_INT_MAX = -(2**31), 2**31 - 1


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def postgresql_only(index: Index) -> Index:
    """Mark an index that exists on PostgreSQL alone (a trigram index has no SQLite equivalent).

    ``ddl_if`` keeps it out of ``create_all`` on SQLite; Alembic's comparison ignores
    ``ddl_if``, so the mark in ``info`` lets ``include_object_on`` leave it out there too.
    """
    index.info["only_on"] = "postgresql"
    return index.ddl_if(dialect="postgresql")


def trigram_index(table: str, column: str) -> Index:
    """A PostgreSQL trigram GIN index on ``column``: serves ILIKE '%part%' (search as you type)."""
    return postgresql_only(Index(f"ix_{table}_{column}_trgm", column, postgresql_using="gin",
                                 postgresql_ops={column: "gin_trgm_ops"}))


def include_object_on(dialect_name: str):
    """An Alembic ``include_object`` hook: only the schema items this database should have."""

    def include_object(item, name, type_, reflected, compare_to) -> bool:
        return item.info.get("only_on", dialect_name) == dialect_name

    return include_object


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
