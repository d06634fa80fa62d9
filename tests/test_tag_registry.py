"""The tag registry: an instrument's tag and a classroom set's share one namespace, kept by the database."""
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from loanservice.inventory import services
from loanservice.inventory.models import AssetTag, Instrument
from loanservice.inventory.services import DuplicateTag, InstrumentDetails
from loanservice.sets.models import ClassroomSet
from loanservice.sets.services import delete_set, save_set

from .conftest import in_app


def registry(session) -> dict[str, str]:
    return dict(session.execute(select(AssetTag.tag, AssetTag.kind)).all())


def test_the_database_refuses_a_set_with_an_instruments_tag_even_without_the_check(app, factory):
    factory.instrument(asset_tag="SHARED-1")
    with in_app(app) as session:
        session.add(ClassroomSet(name="Sneaked in", tag="SHARED-1"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()
        session.add(AssetTag(tag="SHARED-1", kind="set"))  # nor can the tag be registered as a set's too
        with pytest.raises(IntegrityError):
            session.flush()


def test_the_database_refuses_an_instrument_with_a_sets_tag_even_without_the_check(app, factory):
    kit = factory.classroom_set(size=1, tag="SHARED-2")
    with in_app(app) as session:
        session.add(Instrument(asset_tag=kit.tag, type_id=factory.instrument_type().id, size="1/2"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_the_database_refuses_a_tag_of_an_unknown_kind(app):
    with in_app(app) as session:
        with pytest.raises(StatementError, match="not among the defined enum values"):  # the model refuses it first
            session.add(AssetTag(tag="ODD-1", kind="drawer"))
            session.flush()
        session.rollback()
        with pytest.raises(IntegrityError, match="kind_known"):  # and the database, whoever writes
            session.execute(text("INSERT INTO asset_tag (tag, kind) VALUES ('ODD-1', 'drawer')"))


def test_adding_instruments_and_sets_registers_their_tags(app, factory):
    violin = factory.instrument_type()
    factory.instrument(violin, asset_tag="VLN-1")
    factory.classroom_set(size=1, tag="SET-A", instruments=[factory.instrument(violin)])  # a generated tag
    with in_app(app) as session:
        assert registry(session) == {"VLN-1": "instrument", "MIX-000001": "instrument", "SET-A": "set"}


def test_a_renamed_instrument_frees_its_old_tag_for_a_set(app, factory):
    violin = factory.instrument_type()
    instrument = factory.instrument(violin, asset_tag="OLD-TAG")
    with in_app(app) as session:
        instrument = session.get(Instrument, instrument.id)
        services.update_instrument(session, None, instrument, InstrumentDetails.of(instrument), asset_tag="NEW-TAG")
        session.commit()
        assert registry(session) == {"NEW-TAG": "instrument"}
    kit = factory.classroom_set(size=1, tag="OLD-TAG", instruments=[factory.instrument(violin)])
    assert kit.tag == "OLD-TAG"


def test_a_renamed_or_deleted_set_frees_its_tag_for_an_instrument(app, factory):
    violin = factory.instrument_type()
    kit = factory.classroom_set(tag="SET-1", name="Ukuleles",
                                instruments=[factory.instrument(violin, asset_tag="UKE-1")])
    with in_app(app) as session:
        save_set(session, None, name="Ukuleles", tag="SET-2", tags=["UKE-1"],
                 classroom_set=session.get(ClassroomSet, kit.id))
        session.commit()
        assert registry(session) == {"UKE-1": "instrument", "SET-2": "set"}
    assert factory.instrument(violin, asset_tag="SET-1").asset_tag == "SET-1"
    with in_app(app) as session:
        delete_set(session, None, session.get(ClassroomSet, kit.id))
        session.commit()
        assert "SET-2" not in registry(session)
    assert factory.instrument(violin, asset_tag="SET-2").asset_tag == "SET-2"


def test_a_tag_taken_since_the_check_is_refused_with_the_same_message(app, factory, monkeypatch):
    """As when a concurrent request took the tag after this one's check: the registry's answer says who has it."""
    violin = factory.instrument_type()
    factory.classroom_set(size=1, tag="SET-9", instruments=[factory.instrument(violin)])
    monkeypatch.setattr(services, "_check_tag", lambda session, tag: tag)  # the check saw nothing
    with in_app(app) as session:
        with pytest.raises(DuplicateTag, match="^Asset tag SET-9 is already in use: it is a classroom set's tag.$"):
            services.add_instrument(session, None, InstrumentDetails(type_id=violin.id, size="1/2"), asset_tag="SET-9")
