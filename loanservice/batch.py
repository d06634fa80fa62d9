"""Write one change in a few plain statements: for the hot paths (a check-in, a set scan).

The ORM's unit of work is general and costs accordingly: each flush works out what changed and in
which order, and each new row waits for its id (RETURNING). A ``Batch`` gathers a change's column
updates to loaded rows and its new history rows (audit events, condition checks: written, never read
back) and ``write`` sends them as one UPDATE per changed row and one INSERT per table, with no
RETURNING. The loaded objects take the new values at once, as if loaded with them, so code after
the change reads them as usual, and nothing is left for the next flush.

The services take an optional ``batch``: without one they change the objects and add rows to the
session as before, for the next flush to write.
"""
from typing import Any

from sqlalchemy import Table, bindparam, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

_PK = "pk_"  # the bind name for the primary key, apart from every column's


class _RowWriter:
    """Per mapped class: the UPDATE by primary key, column names by attribute, and the attributes
    that the UPDATE's onupdate defaults (updated_at) change behind the object's back."""

    _cache: dict[Any, "_RowWriter"] = {}

    def __init__(self, mapper) -> None:
        table = mapper.local_table
        self.statement = update(table).where(mapper.primary_key[0] == bindparam(_PK))
        self.columns = {prop.key: prop.columns[0].key for prop in mapper.column_attrs
                        if prop.columns[0].table is table}
        self.onupdate = {prop.key for prop in mapper.column_attrs
                         if prop.columns[0].table is table and prop.columns[0].onupdate is not None}

    @classmethod
    def of(cls, mapper) -> "_RowWriter":
        writer = cls._cache.get(mapper)
        if writer is None:
            writer = cls._cache[mapper] = cls(mapper)
        return writer


class Batch:
    def __init__(self) -> None:
        self._updates: dict[Any, dict[str, Any]] = {}
        self._inserts: dict[Table, list[dict[str, Any]]] = {}

    def set(self, obj, **values) -> None:
        """Give a loaded (persistent) object new column values now; ``write`` stores them."""
        for key, value in values.items():
            set_committed_value(obj, key, value)
        self._updates.setdefault(obj, {}).update(values)

    def add(self, model, **values) -> None:
        """A new row of ``model``'s table (none of its values is read back)."""
        self._inserts.setdefault(model.__table__, []).append(values)

    def write(self, session: Session) -> None:
        """Run the statements: the updates in the order the objects were first changed, then the inserts."""
        for obj, values in self._updates.items():
            state = inspect(obj)
            writer = _RowWriter.of(state.mapper)
            session.execute(writer.statement,
                            {_PK: state.identity[0], **{writer.columns[key]: v for key, v in values.items()}})
            stale = writer.onupdate.difference(values)
            if stale:  # read again if wanted
                session.expire(obj, stale)
        for table, rows in self._inserts.items():
            session.execute(table.insert().inline(), rows)  # inline: no RETURNING of the new id
        self._updates.clear()
        self._inserts.clear()


def assign(obj, batch: Batch | None, **values) -> None:
    """Set attributes of ``obj``: through ``batch`` when there is one, else for the next flush."""
    if batch is not None:
        batch.set(obj, **values)
    else:
        for key, value in values.items():
            setattr(obj, key, value)
