"""loanservice.batch: a change written in a few statements (one on PostgreSQL), with the same rows
and the same all-or-nothing as the ORM's unit of work."""
import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from loanservice.audit.models import AuditEvent
from loanservice.audit.services import record
from loanservice.batch import Batch
from loanservice.inventory.models import Instrument

from .conftest import in_app, statements_run

_audit = AuditEvent.__table__
_EVENTS_OF = select(func.count()).where(_audit.c.instrument_id == bindparam("instrument_id"))
_GRADE_OF = select(Instrument.__table__.c.condition_grade).where(Instrument.__table__.c.id == bindparam("id"))


def events_of(app, instrument_id: int) -> list[AuditEvent]:
    with in_app(app) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.instrument_id == instrument_id)
                                    .order_by(AuditEvent.id)))


def test_a_batch_writes_its_rows_and_answers_its_questions_as_before_its_changes(app, factory):
    actor = factory.user("staff")
    tag = factory.instrument(condition_grade=2).asset_tag
    with in_app(app) as session:
        instrument = session.scalar(select(Instrument).where(Instrument.asset_tag == tag))
        events_before = len(events_of(app, instrument.id))
        stamped_before = instrument.updated_at
        batch = Batch()
        batch.set(instrument, condition_grade=4)
        record(session, actor, "instrument.note", instrument, "Checked by the batch test", {"grade": 4},
               batch=batch)
        events = batch.ask(_EVENTS_OF, {"instrument_id": instrument.id})
        grade = batch.ask(_GRADE_OF, {"id": instrument.id})
        seen_after = []
        batch.then(lambda: seen_after.append(session.scalar(_GRADE_OF, {"id": instrument.id})))
        with pytest.raises(RuntimeError):
            events.value  # noqa: B018 - no answer before the batch is written
        batch.write(session)
        # The questions saw the database as it was; what comes after sees the change.
        assert (events.value, grade.value) == (events_before, 2)
        assert seen_after == [4]
        # The object has the new values at once, its updated_at too, and nothing is left to flush.
        assert instrument.condition_grade == 4
        assert instrument.updated_at > stamped_before
        assert not session.dirty and not session.new
        stamped = instrument.updated_at
        session.commit()
    with in_app(app) as session:
        stored = session.scalar(select(Instrument).where(Instrument.asset_tag == tag))
        assert stored.condition_grade == 4
        assert stored.updated_at == stamped
    added = events_of(app, stored.id)[-1]
    assert (added.action, added.summary, added.changes, added.actor_id) == (
        "instrument.note", "Checked by the batch test", {"grade": 4}, actor.id)
    assert added.at is not None  # the column's default, filled in as the ORM would


def test_a_batch_is_one_statement_on_postgresql_and_a_few_elsewhere(app, factory):
    actor = factory.user("staff")
    tag = factory.instrument().asset_tag
    with in_app(app) as session:
        instrument = session.scalar(select(Instrument).where(Instrument.asset_tag == tag))
        with statements_run(app) as statements:
            batch = Batch()
            batch.set(instrument, condition_grade=3)
            for n in range(3):
                record(session, actor, "instrument.note", instrument, f"Note {n}", batch=batch)
            batch.ask(_EVENTS_OF, {"instrument_id": instrument.id})
            batch.write(session)
        instrument_id = instrument.id
        session.commit()
    on_postgres = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
    # PostgreSQL: WITH (UPDATE), (INSERT) SELECT (question). SQLite: the question, then each change.
    assert len(statements) == (1 if on_postgres else 3)
    assert [e.summary for e in events_of(app, instrument_id)][-3:] == ["Note 0", "Note 1", "Note 2"]


def test_a_batch_that_fails_writes_nothing(app, factory):
    actor = factory.user("staff")
    tag = factory.instrument(condition_grade=2).asset_tag
    with in_app(app) as session:
        instrument = session.scalar(select(Instrument).where(Instrument.asset_tag == tag))
        instrument_id, events_before = instrument.id, len(events_of(app, instrument.id))
        batch = Batch()
        record(session, actor, "instrument.note", instrument, "Written with a bad grade", batch=batch)
        batch.set(instrument, condition_grade=9)  # the database's CHECK refuses it
        with pytest.raises(IntegrityError):
            batch.write(session)
        session.rollback()
    with in_app(app) as session:
        assert session.get(Instrument, instrument_id).condition_grade == 2
    assert len(events_of(app, instrument_id)) == events_before  # the audit event did not get in alone
