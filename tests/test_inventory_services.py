"""The inventory rules, through the services."""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from loanservice.audit.models import AuditEvent
from loanservice.errors import InvalidInput, LoanServiceError
from loanservice.inventory import services
from loanservice.inventory.models import (
    CheckReason,
    ConditionCheck,
    Instrument,
    InstrumentFamily,
    InstrumentStatus,
    Repair,
)
from loanservice.inventory.services import DuplicateTag, InstrumentDetails, InvalidTransition

from .conftest import ON_POSTGRES, in_app


def details(type_id, **kw):
    return InstrumentDetails(type_id=type_id, **{"size": "1/2", "make": "Stentor", **kw})


def test_tags_are_issued_in_sequence_from_the_prefix(app, factory):
    violin = factory.instrument_type()
    with in_app(app) as session:
        first = services.add_instrument(session, None, details(violin.id), tag_prefix="mix")
        second = services.add_instrument(session, None, details(violin.id), tag_prefix="MIX")
        session.commit()
        assert (first.asset_tag, second.asset_tag) == ("MIX-000001", "MIX-000002")


def test_generated_tags_skip_numbers_already_typed_in_by_hand(app, factory):
    violin = factory.instrument_type()
    factory.instrument(violin, asset_tag="MIX-000001")
    with in_app(app) as session:
        assert services.add_instrument(session, None, details(violin.id)).asset_tag == "MIX-000002"


def test_generated_tags_skip_a_classroom_sets_tag_too(app, factory):
    violin = factory.instrument_type()
    factory.classroom_set(size=1, tag="MIX-000002", instruments=[factory.instrument(violin, asset_tag="OLD-1")])
    with in_app(app) as session:
        tags = [services.add_instrument(session, None, details(violin.id)).asset_tag for _ in range(2)]
    assert tags == ["MIX-000001", "MIX-000003"]


def test_an_entered_tag_is_normalised_and_must_be_unique(app, factory):
    violin = factory.instrument_type()
    assert factory.instrument(violin, asset_tag=" abc-12 ").asset_tag == "ABC-12"
    with in_app(app) as session:
        with pytest.raises(DuplicateTag, match="ABC-12 is already in use"):
            services.add_instrument(session, None, details(violin.id), asset_tag="Abc-12")


def test_the_database_refuses_a_duplicate_tag_even_without_the_check(app, factory):
    violin = factory.instrument_type()
    factory.instrument(violin, asset_tag="DUP-1")
    with in_app(app) as session:
        session.add(Instrument(asset_tag="DUP-1", type_id=violin.id, size="1/2"))
        with pytest.raises(IntegrityError):
            session.flush()


@pytest.mark.parametrize("change, message", [
    ({"size": "5/8"}, "not one of them"),
    ({"purchase_cost": Decimal("-1")}, "must be an amount from £0"),
    ({"replacement_value": Decimal("-0.01")}, "must be an amount from £0"),
    ({"purchase_cost": Decimal("100000000")}, "must be an amount from £0"),
    ({"purchase_cost": Decimal("sNaN")}, "must be an amount from £0"),
    ({"purchased_on": date.today() + timedelta(days=3)}, "in the future"),
    ({"location": "  "}, "Say where"),
])
def test_bad_details_are_refused_and_nothing_is_added(app, factory, change, message):
    violin = factory.instrument_type()
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match=message):
            services.add_instrument(session, None, details(violin.id, **change))
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Instrument)) == 0


def test_an_unknown_type_is_refused(app):
    with in_app(app) as session:
        with pytest.raises(InvalidInput, match="Unknown instrument type"):
            services.add_instrument(session, None, details(9999))


def test_one_size_types_take_no_size(app, factory):
    flute = factory.instrument_type("Flute", family="woodwind", sizes=())
    with in_app(app) as session:
        assert services.add_instrument(session, None, details(flute.id, size="")).size == ""
        with pytest.raises(InvalidInput, match="one size only"):
            services.add_instrument(session, None, details(flute.id, size="1/2"))


def test_adding_records_the_intake_check_and_an_audit_event(app, factory):
    staff = factory.user("staff")
    violin = factory.instrument_type()
    with in_app(app) as session:
        instrument = services.add_instrument(session, session.merge(staff), details(violin.id), condition_grade=3,
                                             condition_note="Small scratch")
        session.commit()
        check = session.scalar(select(ConditionCheck).where(ConditionCheck.instrument_id == instrument.id))
        assert (check.grade, check.reason, check.note, check.checked_by_id) == (3, "intake", "Small scratch", staff.id)
        event = session.scalar(select(AuditEvent).where(AuditEvent.instrument_id == instrument.id))
        assert event.action == "instrument.added" and event.actor_id == staff.id


def test_editing_keeps_old_and_new_values_in_the_audit_trail(app, factory):
    instrument = factory.instrument(make="Stentor", location="Store / A1")
    with in_app(app) as session:
        obj = session.get(Instrument, instrument.id)
        new = InstrumentDetails.of(obj)
        new.location = "Store / B2"
        services.update_instrument(session, None, obj, new)
        session.commit()
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "instrument.edited")).one()
        assert event.changes == {"location": ["Store / A1", "Store / B2"]}


def test_condition_checks_build_a_history_and_set_the_current_grade(app, factory):
    instrument = factory.instrument(condition_grade=1)
    with in_app(app) as session:
        obj = session.get(Instrument, instrument.id)
        services.record_condition(session, None, obj, 4, CheckReason.INSPECTION, "Cracked top")
        session.commit()
        grades = session.scalars(select(ConditionCheck.grade).where(ConditionCheck.instrument_id == obj.id)
                                 .order_by(ConditionCheck.id)).all()
        assert grades == [1, 4]
        assert obj.condition_grade == 4
        with pytest.raises(InvalidInput, match="1 \\(excellent\\) to 5"):
            services.record_condition(session, None, obj, 6, CheckReason.INSPECTION)


def test_repair_round_trip(app, factory):
    instrument = factory.instrument()
    with in_app(app) as session:
        obj = session.get(Instrument, instrument.id)
        services.send_to_repair(session, None, obj, repairer="Hubbard Strings", fault="Open seam",
                                expected_cost=Decimal("45"))
        assert obj.status == InstrumentStatus.IN_REPAIR
        with pytest.raises(InvalidTransition, match="already at a repairer"):
            services.send_to_repair(session, None, obj, repairer="Someone else")
        services.return_from_repair(session, None, obj, grade=2, actual_cost=Decimal("50"), work_done="Glued")
        session.commit()
        repair = session.scalar(select(Repair))
        assert (repair.actual_cost, repair.returned_on) == (Decimal("50.00"), date.today())
        assert obj.status == InstrumentStatus.AVAILABLE
        last = session.scalars(select(ConditionCheck).order_by(ConditionCheck.id.desc())).first()
        assert (last.reason, last.grade) == ("repair", 2)


def test_repair_dates_must_make_sense(app, factory):
    instrument = factory.instrument()
    with in_app(app) as session:
        obj = session.get(Instrument, instrument.id)
        with pytest.raises(InvalidInput, match="before the date sent"):
            services.send_to_repair(session, None, obj, repairer="R", sent_on=date(2025, 5, 10),
                                    expected_back_on=date(2025, 5, 1))
        with pytest.raises(InvalidTransition, match="not at a repairer"):
            services.return_from_repair(session, None, obj, grade=2)


def test_written_off_is_final(app, factory):
    instrument = factory.instrument()
    with in_app(app) as session:
        obj = session.get(Instrument, instrument.id)
        with pytest.raises(InvalidInput, match="reason"):
            services.write_off(session, None, obj, "  ")
        services.write_off(session, None, obj, "Crushed in transit")
        assert (obj.status, obj.status_reason) == ("written_off", "Crushed in transit")
        for attempt in (lambda: services.send_to_repair(session, None, obj, repairer="R"),
                        lambda: services.change_status(session, None, obj, InstrumentStatus.AVAILABLE),
                        lambda: services.mark_missing(session, None, obj)):
            with pytest.raises(InvalidTransition, match="written off"):
                attempt()


def test_missing_then_found(app, factory):
    instrument = factory.instrument()
    with in_app(app) as session:
        obj = session.get(Instrument, instrument.id)
        services.mark_missing(session, None, obj, "Not back from Riverside")
        with pytest.raises(InvalidTransition):
            services.send_to_repair(session, None, obj, repairer="R")
        services.mark_found(session, None, obj, 3, "In the school cupboard")
        assert obj.status == "available" and obj.condition_grade == 3


def test_the_database_keeps_the_audit_trail_append_only(app, factory):
    """Who did what and when never changes (anonymisation may only blank a name out of the wording)."""
    factory.instrument()
    with in_app(app) as session:
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("UPDATE audit_event SET action = 'forged'"))
        session.rollback()
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("DELETE FROM audit_event"))


def test_the_orm_refuses_to_change_an_audit_event(app, factory):
    factory.instrument()
    with in_app(app) as session:
        event = session.scalars(select(AuditEvent)).first()
        event.summary = "forged"
        with pytest.raises(RuntimeError, match="append-only"):
            session.flush()


def test_a_type_keeps_sizes_that_instruments_use(app, factory):
    violin = factory.instrument_type("Violin", sizes=("1/2", "3/4"))
    factory.instrument(violin, size="3/4")
    with in_app(app) as session:
        obj = session.get(type(violin), violin.id)
        with pytest.raises(InvalidInput, match="size 3/4 exist"):
            services.save_type(session, None, services.TypeDetails("Violin", InstrumentFamily.STRINGS, ["1/2"]), obj)
        details = services.TypeDetails("Violin", InstrumentFamily.STRINGS, ["1/4", "1/2", "3/4"])
        saved = services.save_type(session, None, details, obj)
        assert saved.sizes == ["1/4", "1/2", "3/4"]


def test_domain_errors_share_one_base(app):
    assert issubclass(DuplicateTag, LoanServiceError) and issubclass(InvalidTransition, LoanServiceError)


class Explain(Executable, ClauseElement):
    """EXPLAIN of a statement, with its parameters bound as the app binds them."""

    inherit_cache = False

    def __init__(self, statement):
        self.statement = statement


@compiles(Explain)
def _explain(element, compiler, **kw):
    return "EXPLAIN " + compiler.process(element.statement, **kw)


def search_count(session, q):
    """The COUNT the list page's pager runs (as Flask-SQLAlchemy's paginate writes it)."""
    query = services.search_instruments_query(session, services.InstrumentFilters(q=q))
    return select(func.count()).select_from(query.order_by(None).subquery())


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="runs when DATABASE_URL points at PostgreSQL")
def test_on_postgres_the_search_count_is_answered_from_the_trigram_indexes(app, factory):
    factory.instrument(make="Stentor", model="Student II", serial_number="ST7731", location="Store / A1")
    with in_app(app) as session:
        # With a handful of rows reading them all is cheapest: forbid that, so the plan shows
        # whether the indexes can answer every alternative of the search (they could not before).
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(session.scalars(Explain(search_count(session, "tent 7731"))))
    assert "BitmapOr" in plan and "Seq Scan" not in plan, plan
    for column in ("serial_number", "make", "model", "location"):
        assert f"Bitmap Index Scan on ix_instrument_{column}_trgm" in plan, plan


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="runs when DATABASE_URL points at PostgreSQL")
def test_on_postgres_a_search_repeated_on_one_connection_is_never_given_a_generic_plan(app, factory):
    """psycopg prepares a statement run five times; a generic plan, made without knowing the
    words, would walk every row to fill a page of a search that matches little or nothing."""
    factory.instrument(make="Stentor")
    with in_app(app) as session:
        for _ in range(12):
            assert session.execute(search_count(session, "stentor")).scalar() == 1
        generic, custom = session.execute(text(
            "SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements "
            "WHERE statement LIKE '%ILIKE%'")).one()
    assert custom and not generic
