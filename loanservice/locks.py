"""Row locks: a service locks the rows it is about to change, by primary key, before it checks them.

Two requests changing one loan, one instrument or one reservation then take turns: the second waits
for the first to commit and reads what it left. ``SELECT ... FOR UPDATE`` on PostgreSQL; nothing on
SQLite, which lets one transaction write at a time. A row is locked once a transaction: a query of
its own that already locked rows (``FOR UPDATE``) says so with ``locked``, and ``lock`` then sends
nothing more for them.
"""
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session


def _takes_locks(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _held(session: Session) -> set:
    """The rows this session's transaction has locked (forgotten when a new transaction or savepoint begins
    or ends: a savepoint rolled back releases the locks taken in it)."""
    connection = session.connection()  # the transaction begun now, if it had not begun
    scope = (connection.get_transaction(), connection.get_nested_transaction())
    held = session.info.get("row_locks")
    if held is None or held[0][0] is not scope[0] or held[0][1] is not scope[1]:
        held = session.info["row_locks"] = (scope, set())
    return held[1]


def _key(obj) -> tuple:
    state = inspect(obj)
    return state.mapper.base_mapper, state.identity


def lock(session: Session, obj, *, read_again=()) -> None:
    """Lock ``obj``'s row until the transaction ends, and read it and ``read_again`` anew: loaded before
    the lock, they may have changed since."""
    if not _takes_locks(session):
        return
    held = _held(session)
    if _key(obj) in held:
        return
    mapper = inspect(obj).mapper
    # Fetched, not just executed: the ORM loads a row into ``obj`` only as the result is read, so an
    # unread result would take the lock yet leave ``obj`` as it was before the wait.
    session.scalars(select(mapper).where(mapper.primary_key[0] == inspect(obj).identity[0])
                    .with_for_update(of=mapper.class_).execution_options(populate_existing=True)).unique().all()
    held.add(_key(obj))
    for other in read_again:
        session.refresh(other)


def locked(session: Session, *objs) -> None:
    """Say that a query of the caller's own has locked these rows (and loaded them as they are now)."""
    if _takes_locks(session):
        _held(session).update(_key(obj) for obj in objs)
