"""Actions on many instruments at once, chosen on the instrument list: ticked, or all that match its filters.

Each action is one transaction: every instrument is checked and changed, or (one refused) none is.
"""
import enum
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit.services import record
from ..batch import Batch, assign
from ..errors import InvalidInput, LoanServiceError
from .models import CheckReason, Instrument
from .services import InstrumentFilters, record_condition, search_instruments_query, send_to_repair
from .tags import normalise_tag

# Changed in one go at most: a filter that matches more is narrowed first (a wrong filter is cheap to fix
# before, dear after). Labels go by URL, which carries a few hundred tags at most.
MOST_CHANGED = 2000
MOST_LABELLED = 250


class BulkAction(enum.StrEnum):
    LABELS = "labels"
    MOVE = "move"
    REPAIR = "repair"
    GRADE = "grade"
    EXPORT = "export"

    @property
    def label(self) -> str:
        return {"labels": "Print labels", "move": "Move to a location", "repair": "Send to repair or servicing",
                "grade": "Record an inspection grade", "export": "Export as CSV"}[self.value]

    @property
    def most(self) -> int | None:
        """How many instruments it takes at once (None: any number)."""
        return {"labels": MOST_LABELLED, "export": None}.get(self.value, MOST_CHANGED)


class SelectionRefused(LoanServiceError):
    status_code = 422


@dataclass
class Selection:
    """Which instruments: the tags ticked, or every one matching ``filters`` (when ``matching``)."""

    tags: list[str]
    filters: InstrumentFilters
    matching: bool = False

    def query(self, session: Session, tag_prefix: str):
        """A select of the chosen instruments, by tag."""
        if self.matching:
            return search_instruments_query(session, self.filters, tag_prefix).order_by(None).order_by(
                Instrument.asset_tag)
        return select(Instrument).where(Instrument.asset_tag.in_(self.tags)).order_by(Instrument.asset_tag)

    def ids(self, session: Session, tag_prefix: str):
        """A select of the chosen instruments' ids (for the export)."""
        return self.query(session, tag_prefix).order_by(None).with_only_columns(Instrument.id)


def selection_of(tags: list[str], filters: InstrumentFilters, matching: bool) -> Selection:
    """The selection a person made; ticking nothing (and not choosing "all matching") is refused."""
    wanted = list(dict.fromkeys(t for t in (normalise_tag(tag) for tag in tags) if t))[:500]
    if not matching and not wanted:
        raise SelectionRefused("Tick the instruments first, or choose all that match the filters.")
    return Selection(wanted, filters, matching)


def count_selected(session: Session, selection: Selection, tag_prefix: str) -> int:
    query = selection.query(session, tag_prefix).order_by(None)
    return session.scalar(select(func.count()).select_from(query.subquery()))


def load_selected(session: Session, selection: Selection, action: BulkAction, tag_prefix: str,
                  *, for_update: bool = False) -> list[Instrument]:
    """The chosen instruments (locked for a change), within what ``action`` takes at once."""
    most = action.most
    query = selection.query(session, tag_prefix)
    if most is not None:
        query = query.limit(most + 1)
    if for_update:
        query = query.with_for_update(of=Instrument)
    instruments = list(session.scalars(query).unique())
    if not instruments:
        raise SelectionRefused("None of the chosen instruments exists any more: go back to the list.")
    if most is not None and len(instruments) > most:
        raise SelectionRefused(f"{action.label} takes at most {most:,} instruments at once: narrow the filters "
                               "or tick the instruments.")
    if not selection.matching and len(instruments) < len(selection.tags):
        found = {i.asset_tag for i in instruments}
        missing = [t for t in selection.tags if t not in found]
        raise SelectionRefused(f"No instrument has the tag {', '.join(missing[:5])}.")
    return instruments


def check_count(instruments: list[Instrument], confirmed: int | None) -> None:
    """Refuse when the instruments chosen are not as many as the confirmation named (one changed meanwhile)."""
    if confirmed != len(instruments):
        raise SelectionRefused(f"The selection has changed since you confirmed it: {len(instruments):,} instruments "
                               "match now. Check the new count and confirm again.")


def move_instruments(session: Session, actor, instruments: list[Instrument], location: str) -> int:
    """Give every instrument a new shelf (where it is kept, and goes back to after a loan)."""
    location = location.strip()
    if not location:
        raise InvalidInput("Say where they go.", field="location")
    batch = Batch()
    moved = 0
    for instrument in instruments:
        if instrument.location == location:
            continue
        old = instrument.location
        assign(instrument, batch, location=location)
        record(session, actor, "instrument.moved", instrument, f"Moved from {old} to {location}",
               {"location": [old, location]}, batch=batch)
        moved += 1
    batch.write(session)
    return moved


def grade_instruments(session: Session, actor, instruments: list[Instrument], grade: int, note: str = "") -> int:
    """Record one inspection grade for every instrument."""
    batch = Batch()
    for instrument in instruments:
        record_condition(session, actor, instrument, grade, CheckReason.INSPECTION, note, batch=batch)
    batch.write(session)
    return len(instruments)


def send_instruments_to_repair(session: Session, actor, instruments: list[Instrument], *, repairer: str,
                               fault: str = "", sent_on: date | None = None,
                               expected_back_on: date | None = None) -> int:
    """Send every instrument to one repairer (a summer service); one that cannot go stops them all."""
    for instrument in instruments:
        try:
            send_to_repair(session, actor, instrument, repairer=repairer, fault=fault, sent_on=sent_on,
                           expected_back_on=expected_back_on)
        except LoanServiceError as error:
            if error.field:  # about the form (the repairer, a date): the same for every instrument
                raise
            error.message = f"Nothing was sent: {error.message}"
            raise
    return len(instruments)
