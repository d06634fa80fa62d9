"""Stocktakes: count a place by scanning what is there, compare with the records, put them right.

A stocktake keeps what it expected (what the records placed there when it started) and what was
scanned, one row per instrument, so its result does not shift as the records are put right.
Every function takes the session first, flushes and returns; the caller owns the transaction.
"""
import csv
import enum
import io
from dataclasses import dataclass, field

from sqlalchemy import DateTime, Integer, bindparam, false, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, contains_eager, joinedload

from ..audit.services import record
from ..documents.render import render_pdf
from ..documents.services import Hub
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.csvio import spreadsheet_cell
from ..inventory.models import Instrument, InstrumentCount, InstrumentStatus
from ..inventory.services import InvalidTransition, mark_found, mark_missing
from ..inventory.tags import UnknownTag, resolve, tag_from_code
from ..loans.lending import mark_lost
from ..loans.models import Loan
from ..locks import lock
from ..schools.models import School
from ..sets.models import ClassroomSet
from ..sets.services import get_set_loan, mark_set_item_missing
from ..timeutil import today, utcnow
from ..wording import counted
from .models import Place, Resolution, Stocktake, StocktakeItem

S = InstrumentStatus

# What the records place in the store: everything not out on loan, at a repairer, missing or written off.
IN_STORE = (S.AVAILABLE, S.RESERVED, S.AWAITING_AGREEMENT, S.IN_SERVICE)
# A scanned instrument whose record says it cannot be here.
_WRONG_STATUSES = (S.MISSING, S.WRITTEN_OFF, S.IN_REPAIR)


class Outcome(enum.StrEnum):
    FOUND = "found"
    MISSING = "missing"
    UNEXPECTED = "unexpected"
    WRONG_STATUS = "wrong_status"

    @property
    def label(self) -> str:
        return {"found": "Found", "missing": "Missing", "unexpected": "Unexpected",
                "wrong_status": "Wrong status"}[self.value]


# What staff may do about each outcome that needs putting right.
ACTION_FOR = {Outcome.MISSING: Resolution.MARKED_MISSING, Outcome.UNEXPECTED: Resolution.MOVED_HERE,
              Outcome.WRONG_STATUS: Resolution.MARKED_FOUND}
ACTION_WORDS = {Resolution.MARKED_MISSING: "Mark missing", Resolution.MOVED_HERE: "Move it here",
                Resolution.MARKED_FOUND: "Mark found"}


class StocktakeClosed(LoanServiceError):
    status_code = 409


# ---------------------------------------------------------------- starting


def _expected_query(place: Place, location: str, school_id: int | None):
    if place is Place.SCHOOL:
        return (select(Loan.instrument_id).where(Loan.school_id == school_id, Loan.closed_on.is_(None))
                .distinct())
    query = select(Instrument.id).where(Instrument.status.in_(IN_STORE))
    if place is Place.SHELF:
        query = query.where(Instrument.location == location)
    return query


def start_stocktake(session: Session, actor, *, place: Place, location: str = "", school_id: int | None = None,
                    ) -> Stocktake:
    """Start counting a place: what its records expect there is kept with the stocktake."""
    location = location.strip()
    if place is Place.SHELF:
        if not location:
            raise InvalidInput("Choose the shelf or location to count.", field="location")
        if session.scalar(select(Instrument.id).where(Instrument.location == location).limit(1)) is None:
            raise InvalidInput(f"No instrument is recorded at {location}.", field="location")
    else:
        location = ""
    school = None
    if place is Place.SCHOOL:
        school = session.get(School, school_id) if school_id else None
        if school is None:
            raise InvalidInput("Choose the school.", field="school_id")
    else:
        school_id = None
    stocktake = Stocktake(place=place, location=location, school=school, started_by=actor)
    session.add(stocktake)
    session.flush()
    session.execute(insert(StocktakeItem).from_select(
        ["stocktake_id", "instrument_id", "expected"],
        select(bindparam("stocktake_id", stocktake.id), _expected_query(place, location, school_id).subquery().c[0],
               True)))
    record(session, actor, "stocktake.started", stocktake, f"Stocktake of {stocktake.place_name} started",
           {"expected": expected_count(session, stocktake)})
    return stocktake


def get_stocktake(session: Session, stocktake_id: int) -> Stocktake:
    stocktake = session.get(Stocktake, stocktake_id)
    if stocktake is None:
        raise NotFound("There is no such stocktake.")
    return stocktake


def list_stocktakes_query():
    """Every stocktake, those still counting first, then the latest."""
    return (select(Stocktake).options(joinedload(Stocktake.school))
            .order_by(Stocktake.finished_at.is_not(None), Stocktake.id.desc()))


def expected_count(session: Session, stocktake: Stocktake) -> int:
    return session.scalar(select(func.count()).where(StocktakeItem.stocktake_id == stocktake.id,
                                                     StocktakeItem.expected))


# ---------------------------------------------------------------- scanning


@dataclass
class Counted:
    """A scan's answer: what was scanned, and how far the count has got."""

    tag: str
    expected_here: bool
    again: bool
    found: int
    expected: int
    scanned: int

    @property
    def summary(self) -> str:
        return progress_summary(self.found, self.expected, self.scanned)

    @property
    def message(self) -> str:
        if self.again:
            return f"{self.tag} was already counted: {self.summary}."
        where = "expected here" if self.expected_here else "not expected here: see the result"
        return f"{self.tag} counted ({where}): {self.summary}."


def progress_summary(found: int, expected: int, scanned: int) -> str:
    """How far a count has got, in words: "12 of 40 expected found, 2 others scanned"."""
    extra = scanned - found
    return f"{found} of {expected} expected found" + (f", {counted(extra, 'other')} scanned" if extra else "")


def progress(session: Session, stocktake: Stocktake) -> str:
    """The count's progress in words, as a scan answers it."""
    return progress_summary(*session.execute(_PROGRESS, {"stocktake_id": stocktake.id}).one())


_stocktake_item = StocktakeItem.__table__
_PROGRESS = select(
    func.count().filter(_stocktake_item.c.expected & _stocktake_item.c.scanned_at.is_not(None)),
    func.count().filter(_stocktake_item.c.expected),
    func.count().filter(_stocktake_item.c.scanned_at.is_not(None)),
).where(_stocktake_item.c.stocktake_id == bindparam("stocktake_id"))
_instrument = Instrument.__table__
_instrument_count = InstrumentCount.__table__
_SCAN_STATEMENTS: dict[str, object] = {}


def _scan_statement(dialect: str):
    """A scan's write, built once per database (its cache key too): count the instrument with the tag in
    the stocktake, an upsert from the tag (no row back when no instrument has it; a second scan keeps
    the first's time)."""
    if dialect not in _SCAN_STATEMENTS:
        make = {"postgresql": pg_insert, "sqlite": sqlite_insert}[dialect]
        item = _stocktake_item.c
        count = make(_stocktake_item).from_select(
            ["stocktake_id", "instrument_id", "expected", "scanned_at", "scanned_by_id"],
            select(bindparam("stocktake_id", type_=Integer), _instrument.c.id, false(),
                   bindparam("now", type_=DateTime), bindparam("actor_id", type_=Integer))
            .where(_instrument.c.asset_tag == bindparam("tag")))
        count = count.on_conflict_do_update(
            index_elements=[item.stocktake_id, item.instrument_id],
            set_={"scanned_at": func.coalesce(item.scanned_at, count.excluded.scanned_at),
                  "scanned_by_id": func.coalesce(item.scanned_by_id, count.excluded.scanned_by_id)},
        ).returning(item.instrument_id, item.expected, item.scanned_at)
        _SCAN_STATEMENTS[dialect] = count
    return _SCAN_STATEMENTS[dialect]


def load_for_scan(session: Session, stocktake_id: int) -> Stocktake | None:
    """The stocktake a scan counts in, with a shared lock on PostgreSQL: scans go on side by side, and
    finishing (which locks it for update) waits for those under way, so none lands after it."""
    return session.scalars(select(Stocktake).where(Stocktake.id == stocktake_id)
                           .with_for_update(read=True)).first()


def scan(session: Session, actor, stocktake: Stocktake, code: str, *, base_url: str = "") -> Counted:
    """Count one scanned instrument in an open stocktake: a few statements, whatever the size of the place.
    Scanning one twice counts it once."""
    if not stocktake.is_open:
        raise StocktakeClosed(f"The stocktake of {stocktake.place_name} is finished: start a new one to count "
                              "again.", field="code")
    tag = tag_from_code(code, base_url)
    now = utcnow()
    row = session.execute(_scan_statement(session.get_bind().dialect.name), {
        "stocktake_id": stocktake.id, "tag": tag, "now": now, "actor_id": actor.id if actor is not None else None,
    }).first()
    if row is None:  # no instrument has the tag
        found = resolve(session, tag)  # a set's label, or UnknownTag
        if isinstance(found, ClassroomSet):
            raise InvalidInput(f"{tag} is the label of a classroom set, {found.name}: scan the labels on its "
                               "instruments one by one.", field="code")
        raise UnknownTag(tag)
    _, expected_here, scanned_at = row
    found, expected, scanned = session.execute(_PROGRESS, {"stocktake_id": stocktake.id}).one()
    return Counted(tag=tag, expected_here=bool(expected_here), again=scanned_at != now,
                   found=found, expected=expected, scanned=scanned)


def finish(session: Session, actor, stocktake: Stocktake) -> Stocktake:
    """Close the count: no more scans; what was not scanned is missing."""
    lock(session, stocktake, read_again=(stocktake,))
    if not stocktake.is_open:
        raise StocktakeClosed(f"This stocktake was already finished on {stocktake.finished_at:%-d %b %Y at %H:%M}.")
    stocktake.finished_at = max(utcnow(), stocktake.started_at)
    stocktake.finished_by = actor
    _record_counted_days(session, stocktake)
    result = results(session, stocktake)
    record(session, actor, "stocktake.finished", stocktake, f"Stocktake of {stocktake.place_name} finished: "
           + result.summary, {outcome.value: len(rows) for outcome, rows in result.by_outcome.items()})
    session.flush()
    return stocktake


def _record_counted_days(session: Session, stocktake: Stocktake) -> None:
    """Each instrument the count found was last counted on the day it was scanned (one statement)."""
    make = {"postgresql": pg_insert, "sqlite": sqlite_insert}[session.get_bind().dialect.name]
    item = _stocktake_item.c
    counted = make(_instrument_count).from_select(
        ["instrument_id", "last_counted_on"],
        select(item.instrument_id, func.date(item.scanned_at)).where(
            item.stocktake_id == stocktake.id, item.scanned_at.is_not(None)))
    session.execute(counted.on_conflict_do_update(
        index_elements=[_instrument_count.c.instrument_id],
        set_={"last_counted_on": counted.excluded.last_counted_on},
        where=_instrument_count.c.last_counted_on < counted.excluded.last_counted_on))


# ---------------------------------------------------------------- the result


@dataclass
class Line:
    """One instrument in a stocktake's result."""

    item: StocktakeItem
    outcome: Outcome
    recorded: str  # where or how the records had it

    @property
    def instrument(self) -> Instrument:
        return self.item.instrument

    @property
    def action(self) -> Resolution | None:
        """What staff may still do about it; None when it is found or already put right."""
        if self.item.resolution is not None:
            return None
        return ACTION_FOR.get(self.outcome)


@dataclass
class Result:
    lines: list[Line]
    by_outcome: dict[Outcome, list[Line]] = field(default_factory=dict)

    def __post_init__(self):
        self.by_outcome = {outcome: [line for line in self.lines if line.outcome is outcome] for outcome in Outcome}

    @property
    def summary(self) -> str:
        return ", ".join(f"{len(self.by_outcome[o])} {o.label.lower()}" for o in Outcome)

    def open_actions(self, outcome: Outcome) -> list[Line]:
        return [line for line in self.by_outcome[outcome] if line.action is not None]


def _recorded(instrument: Instrument, loan: Loan | None) -> str:
    if loan is not None and instrument.status in (S.ON_LOAN, S.AWAITING_AGREEMENT):
        return f"{instrument.status.label.lower()}: {loan.borrower.name}"
    if instrument.status in IN_STORE:
        held = "" if instrument.status is S.AVAILABLE else f" ({instrument.status.label.lower()})"
        return instrument.location + held
    return instrument.status.label


def _outcome(item: StocktakeItem) -> Outcome:
    if item.scanned_at is None:
        return Outcome.MISSING
    if item.instrument.status in _WRONG_STATUSES and item.resolution is not Resolution.MARKED_FOUND:
        return Outcome.WRONG_STATUS
    return Outcome.FOUND if item.expected else Outcome.UNEXPECTED


def results(session: Session, stocktake: Stocktake) -> Result:
    """Every instrument expected or scanned, with its outcome: three queries however many."""
    items = list(session.scalars(
        select(StocktakeItem).join(StocktakeItem.instrument).where(StocktakeItem.stocktake_id == stocktake.id)
        .options(contains_eager(StocktakeItem.instrument)).order_by(Instrument.asset_tag)))
    out = [i.instrument_id for i in items if i.instrument.status in (S.ON_LOAN, S.AWAITING_AGREEMENT)]
    loans = {loan.instrument_id: loan for loan in session.scalars(
        select(Loan).where(Loan.instrument_id.in_(out), Loan.closed_on.is_(None))
        .options(joinedload(Loan.pupil), joinedload(Loan.family), joinedload(Loan.school),
                 joinedload(Loan.other_borrower)))} if out else {}
    return Result([Line(item, _outcome(item), _recorded(item.instrument, loans.get(item.instrument_id)))
                   for item in items])


# ---------------------------------------------------------------- putting it right


def _resolve_line(session: Session, actor, stocktake: Stocktake, line: Line, action: Resolution) -> None:
    instrument, tag = line.instrument, line.instrument.asset_tag
    if line.item.resolution is not None:
        raise InvalidTransition(f"{tag} was already put right ({line.item.resolution.label.lower()}).")
    if ACTION_FOR.get(line.outcome) is not action:
        raise InvalidInput(f"{tag} is {line.outcome.label.lower()}: {ACTION_WORDS[action].lower()} does not apply.")
    note = f"Stocktake of {stocktake.place_name}"
    if action is Resolution.MARKED_MISSING:
        loan = session.scalar(select(Loan).where(Loan.instrument_id == instrument.id, Loan.closed_on.is_(None)))
        if loan is not None and stocktake.place is Place.SCHOOL and loan.school_id == stocktake.school_id:
            if loan.set_loan_id is not None:
                mark_set_item_missing(session, actor, get_set_loan(session, loan.set_loan_id), tag, note)
            else:
                mark_lost(session, actor, loan, note)
        elif instrument.status is S.MISSING:
            pass  # already recorded missing: nothing to change but the stocktake's note
        else:
            if instrument.status is S.ON_LOAN:
                raise InvalidTransition(f"{tag} is on loan to {line.recorded.split(': ', 1)[-1]}: "
                                        "record it lost from its loan, if it is.")
            mark_missing(session, actor, instrument, note)
    elif action is Resolution.MOVED_HERE:
        if stocktake.place is Place.SCHOOL:
            raise InvalidTransition(f"{tag} is not lent to {stocktake.school.name}: lend it from its set's page, "
                                    "or bring it back to the store.")
        if instrument.status in (S.ON_LOAN, S.AWAITING_AGREEMENT):
            raise InvalidTransition(f"{tag} is recorded {line.recorded}: check it in from its loan first.")
        here = stocktake.location if stocktake.place is Place.SHELF else "Store"
        if instrument.location != here:
            record(session, actor, "instrument.edited", instrument, f"Changed location: {note}",
                   {"location": [instrument.location, here]})
            instrument.location = here
    else:  # marked found
        if instrument.status is S.WRITTEN_OFF:
            raise InvalidTransition(f"{tag} was written off ({instrument.status_reason}): it stays written off.")
        if instrument.status is S.IN_REPAIR:
            raise InvalidTransition(f"{tag} is recorded at a repairer: take it back from repair on its page.")
        mark_found(session, actor, instrument, instrument.condition_grade, note)
        if stocktake.place is Place.SHELF and instrument.location != stocktake.location:
            instrument.location = stocktake.location
    line.item.resolution = action
    line.item.resolved_at = utcnow()
    line.item.resolved_by = actor
    record(session, actor, "stocktake.resolved", stocktake, f"{tag}: {action.label.lower()}",
           {"outcome": line.outcome, "action": action}, instrument=instrument)


def resolve_one(session: Session, actor, stocktake: Stocktake, item_id: int, action: Resolution) -> Line:
    """Put one instrument's outcome right."""
    lock(session, stocktake)
    line = next((line for line in results(session, stocktake).lines if line.item.id == item_id), None)
    if line is None:
        raise NotFound("That instrument is not part of this stocktake.")
    _resolve_line(session, actor, stocktake, line, action)
    session.flush()
    return line


def resolve_all(session: Session, actor, stocktake: Stocktake, outcome: Outcome, *, expected_count: int) -> int:
    """Put right every instrument with ``outcome`` not yet put right, all or none. ``expected_count`` is the
    number the person confirmed: if it has changed since (someone else resolved some), nothing is done."""
    lock(session, stocktake)
    action = ACTION_FOR.get(outcome)
    if action is None:
        raise InvalidInput("Found instruments need nothing putting right.")
    lines = results(session, stocktake).open_actions(outcome)
    if not lines:
        raise InvalidTransition(f"No {outcome.label.lower()} instrument is left to put right.")
    if len(lines) != expected_count:
        raise InvalidTransition(f"{counted(len(lines), 'instrument')} (not {expected_count}) are "
                                f"{outcome.label.lower()} now: look at the list again, then confirm.")
    for line in lines:
        _resolve_line(session, actor, stocktake, line, action)
    session.flush()
    return len(lines)


# ---------------------------------------------------------------- reports


REPORT_COLUMNS = ["asset_tag", "type", "size", "outcome", "expected_here", "scanned_at", "recorded_as",
                  "resolution", "resolved_at"]


def report_csv(session: Session, stocktake: Stocktake) -> str:
    """The stocktake's result as CSV, one line per instrument."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    for line in results(session, stocktake).lines:
        item, instrument = line.item, line.instrument
        writer.writerow([spreadsheet_cell(value) for value in (
            instrument.asset_tag, instrument.type.name, instrument.size, line.outcome.label,
            "yes" if item.expected else "no",
            item.scanned_at.strftime("%Y-%m-%d %H:%M") if item.scanned_at else "",
            line.recorded, item.resolution.label if item.resolution else "",
            item.resolved_at.strftime("%Y-%m-%d %H:%M") if item.resolved_at else "")])
    return buffer.getvalue()



def report_pdf(session: Session, stocktake: Stocktake, hub: Hub) -> bytes:
    """The stocktake's result as a PDF in the documents' look: the counts, then each outcome's list."""
    result = results(session, stocktake)
    return render_pdf("documents/stocktake_report.html", hub=hub, stocktake=stocktake, result=result,
                      outcomes=list(Outcome), expected=expected_count(session, stocktake), made_on=today())
