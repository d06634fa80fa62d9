"""Write one change in as few statements as the database allows: for the hot paths (a check-in, a set scan).

The ORM's unit of work is general and costs accordingly: each flush works out what changed and in
which order, each new row waits for its id (RETURNING), and every statement is a round trip to the
server. A ``Batch`` gathers a change's parts instead:

- ``set``: new column values for a loaded row (one UPDATE by primary key);
- ``add``: a new history row (audit events, condition checks: written, never read back);
- ``run``: any other statement that changes rows and returns none (ending a take-home);
- ``ask``: a question with one value for an answer (how much of the set is back? is anyone waiting?);
- ``then``: what to do once it is written (it may use the answers).

``write`` sends them. On PostgreSQL the whole batch is ONE statement, the changes as data-modifying
``WITH`` parts and the questions as its ``SELECT``: one round trip, however many parts. Elsewhere
(SQLite, in-process: a statement costs no round trip) the questions go first, in one SELECT, then one
statement per change. The rules that make both the same:

- the questions see the database as it was before the batch's changes (PostgreSQL runs all parts of
  one statement on one snapshot), so ask only what the batch does not change, or allow for it;
- no two parts change the same row (one ``set`` per object: values given twice are merged).

The loaded objects take the new values at once, as if loaded with them, so code after the change
reads them as usual, and nothing is left for the next flush. Defaults the ORM would fill in
(``updated_at``, ``at``) are filled in here, so the rows are the same as the ORM would write.

The services take an optional ``batch``: without one they change the objects and add rows to the
session as before, for the next flush to write.
"""
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, insert, inspect, literal, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import visitors


class Answer:
    """The value of one question of a batch, once the batch is written."""

    __slots__ = ("_value", "_known")

    def __init__(self) -> None:
        self._known = False
        self._value = None

    @property
    def value(self):
        if not self._known:
            raise RuntimeError("The batch is not written yet: its questions have no answers.")
        return self._value

    def _give(self, value) -> None:
        self._value, self._known = value, True


def _python_default(default):
    """The value of a column's Python-side default (scalar or callable), or None if it has none."""
    if default is None or not (default.is_scalar or default.is_callable):
        return None
    return default.arg(None) if default.is_callable else default.arg


class _Plan:
    """The statements of one shape of batch (which rows, columns and questions), built once."""

    def __init__(self, updates, inserts, runs, asks) -> None:
        writes = []
        for i, (mapper, keys) in enumerate(updates):
            table, columns = mapper.local_table, _columns(mapper)
            writes.append(update(table).where(mapper.primary_key[0] == bindparam(f"u{i}_pk"))
                          .values({columns[key]: bindparam(f"u{i}_{key}", type_=table.c[columns[key]].type)
                                   for key in keys}))
        for t, (table, keys, count) in enumerate(inserts):
            rows = [[bindparam(f"i{t}_{r}_{key}", type_=table.c[key].type) for key in keys] for r in range(count)]
            # inline: no RETURNING of the new ids, which nobody reads. Several rows as INSERT ... SELECT
            # ... UNION ALL: a multi-row VALUES would be compiled anew each time (SQLAlchemy caches none).
            writes.append(insert(table).inline().values(dict(zip(keys, rows[0], strict=True))) if count == 1 else
                          insert(table).inline().from_select(list(keys), union_all(*[select(*row) for row in rows])))
        writes += [_renamed(statement, f"r{j}_") for j, statement in enumerate(runs)]
        questions = [_renamed(statement, f"a{j}_").scalar_subquery().label(f"a{j}")
                     for j, statement in enumerate(asks)]
        self.writes = writes
        self.questions = select(*questions) if questions else None
        # PostgreSQL: everything in one statement, each change a WITH part nothing refers to.
        self.combined = (select(*questions) if questions else select(literal(1))).add_cte(
            *[statement.cte(f"w{k}") for k, statement in enumerate(writes)])
        for statement in (*writes, self.combined):  # each is compiled once, then taken from the cache
            assert statement._generate_cache_key() is not None, statement


_PLANS: dict[tuple, _Plan] = {}
_COLUMNS: dict[Any, dict[str, str]] = {}


_ONUPDATE: dict[Any, list] = {}
_DEFAULTS: dict[Table, list] = {}


def _onupdate_columns(mapper) -> list:
    """(attribute name, column) of the mapper's own columns that an UPDATE fills in itself."""
    found = _ONUPDATE.get(mapper)
    if found is None:
        found = _ONUPDATE[mapper] = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs
                                     if prop.columns[0].table is mapper.local_table
                                     and prop.columns[0].onupdate is not None]
    return found


def _default_columns(table: Table) -> list:
    """The table's columns with a default an INSERT fills in (not the primary key's)."""
    found = _DEFAULTS.get(table)
    if found is None:
        found = _DEFAULTS[table] = [column for column in table.columns
                                    if column.default is not None and not column.primary_key]
    return found


def _columns(mapper) -> dict[str, str]:
    """Attribute name -> column name, for the columns of the mapper's own table."""
    columns = _COLUMNS.get(mapper)
    if columns is None:
        columns = _COLUMNS[mapper] = {prop.key: prop.columns[0].key for prop in mapper.column_attrs
                                      if prop.columns[0].table is mapper.local_table}
    return columns


def _renamed(statement, prefix: str):
    """A copy of ``statement`` whose named parameters carry ``prefix``, apart from the other parts'.

    Its constants (anonymous parameters: a status, a LIMIT) are written into the SQL instead: fewer
    parameters keep the batch's statement within what psycopg caches (50)."""
    def visit(bind) -> None:
        if bind.unique:
            bind.literal_execute = True
        else:
            bind.key = prefix + bind.key

    return visitors.cloned_traverse(statement, {}, {"bindparam": visit})


class Batch:
    def __init__(self) -> None:
        self._updates: dict[Any, dict[str, Any]] = {}
        self._inserts: dict[Table, list[dict[str, Any]]] = {}
        self._runs: list[tuple[Any, dict[str, Any]]] = []
        self._asks: list[tuple[Any, dict[str, Any], Answer]] = []
        self._then: list[Callable[[], Any]] = []

    def set(self, obj, **values) -> None:
        """Give a loaded (persistent) object new column values now; ``write`` stores them."""
        for key, value in values.items():
            set_committed_value(obj, key, value)
        self._updates.setdefault(obj, {}).update(values)

    def add(self, model, **values) -> None:
        """A new row of ``model``'s table (none of its values is read back)."""
        self._inserts.setdefault(model.__table__, []).append(values)

    def run(self, statement, params: dict[str, Any]) -> None:
        """A prebuilt statement that changes rows no other part of the batch changes, and returns none."""
        self._runs.append((statement, params))

    def ask(self, statement, params: dict[str, Any]) -> Answer:
        """A prebuilt query of one column and at most one row (None when no row), answered by ``write``
        as the database was before the batch's changes."""
        answer = Answer()
        self._asks.append((statement, params, answer))
        return answer

    def then(self, action: Callable[[], Any]) -> None:
        """Call ``action`` once the batch is written (in the order given)."""
        self._then.append(action)

    def write(self, session: Session) -> None:
        """Write the batch (one statement on PostgreSQL), give the answers, then do what comes after."""
        session.flush()  # whatever the session holds goes first, as autoflush would have done
        updates = [(obj, self._with_onupdate(obj, values)) for obj, values in self._updates.items()]
        inserts = [(table, [self._with_defaults(table, row) for row in rows]) for table, rows in self._inserts.items()]
        if updates or inserts or self._runs or self._asks:
            shape = (tuple((inspect(obj).mapper, tuple(values)) for obj, values in updates),
                     tuple((table, tuple(rows[0]), len(rows)) for table, rows in inserts),
                     tuple(statement for statement, _ in self._runs),
                     tuple(statement for statement, _, _ in self._asks))
            plan = _PLANS.get(shape)
            if plan is None:
                plan = _PLANS[shape] = _Plan(*shape)
            params = self._params(updates, inserts)
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                answers = connection.execute(plan.combined, params).one()
            else:
                answers = connection.execute(plan.questions, params).one() if plan.questions is not None else ()
                for statement in plan.writes:
                    connection.execute(statement, params)
            # strict=False: with no questions, PostgreSQL's combined statement still answers one column (1).
            for (_, _, answer), value in zip(self._asks, answers, strict=False):
                answer._give(value)
        then = self._then
        self.__init__()
        for action in then:
            action()

    @staticmethod
    def _with_onupdate(obj, values: dict[str, Any]) -> dict[str, Any]:
        """The values, plus what the UPDATE's onupdate defaults (updated_at) would set, set on the object too."""
        extra = {key: _python_default(column.onupdate)
                 for key, column in _onupdate_columns(inspect(obj).mapper) if key not in values}
        for key, value in extra.items():
            set_committed_value(obj, key, value)
        return {**values, **extra} if extra else values

    @staticmethod
    def _with_defaults(table: Table, row: dict[str, Any]) -> dict[str, Any]:
        missing = {column.key: _python_default(column.default) for column in _default_columns(table)
                   if column.key not in row}
        return {**row, **missing} if missing else row

    def _params(self, updates, inserts) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for i, (obj, values) in enumerate(updates):
            params[f"u{i}_pk"] = inspect(obj).identity[0]
            params.update({f"u{i}_{key}": value for key, value in values.items()})
        for t, (table, rows) in enumerate(inserts):
            keys = tuple(rows[0])
            for r, row in enumerate(rows):
                if tuple(row) != keys:
                    raise ValueError(f"Rows added to {table.name} in one batch must give the same columns.")
                params.update({f"i{t}_{r}_{key}": value for key, value in row.items()})
        for j, (_, values) in enumerate(self._runs):
            params.update({f"r{j}_{key}": value for key, value in values.items()})
        for j, (_, values, _) in enumerate(self._asks):
            params.update({f"a{j}_{key}": value for key, value in values.items()})
        return params


def assign(obj, batch: Batch | None, **values) -> None:
    """Set attributes of ``obj``: through ``batch`` when there is one, else for the next flush."""
    if batch is not None:
        batch.set(obj, **values)
    else:
        for key, value in values.items():
            setattr(obj, key, value)
