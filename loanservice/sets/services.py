"""Classroom sets: build them, lend a whole set to a school, check it back in item by item.

Every function takes the session first, flushes and returns; the caller owns the transaction.
"""
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager, joinedload, load_only

from ..accounts.models import Role
from ..audit.services import record
from ..batch import Batch
from ..borrowers.models import Pupil
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.models import Instrument, InstrumentStatus, TagKind
from ..inventory.services import DuplicateTag, claim_tag, release_tag
from ..inventory.tags import TAG_PATTERN, UnknownTag, normalise_tag, resolve, tag_from_code, tag_not_an_instrument
from ..loans.availability import NotLendable, check_after_last_loans, is_lendable, unlendable_reasons
from ..loans.calendar import check_due_date_in_reach, check_start_date_in_reach, earliest_start_date, resolve_due_date
from ..loans.lending import NotOnLoan, check_in, mark_lost, open_loan
from ..loans.models import Loan, LoanStatus
from ..loans.pricing import Charges
from ..locks import lock, locked
from ..schools.models import School
from ..signals import lending_alone
from ..timeutil import today
from ..wording import counted
from .models import ClassroomSet, ClassroomSetItem, SetLoan, TakeHome


class SetError(NotOnLoan):
    """A scan or change that does not fit this set."""


# ---------------------------------------------------------------- look-ups


def list_sets(session: Session) -> list[tuple[ClassroomSet, int, SetLoan | None, int]]:
    """Every set with its size, its open loan if it is out, and, if it is in the store, how many of
    its instruments could not go out now (in repair, missing, unusable...)."""
    sizes: dict[int, int] = {}
    blocked: dict[int, int] = {}
    for set_id, instrument in session.execute(
            select(ClassroomSetItem.set_id, Instrument)
            .join(Instrument, Instrument.id == ClassroomSetItem.instrument_id)
            .options(load_only(Instrument.status, Instrument.condition_grade))):
        sizes[set_id] = sizes.get(set_id, 0) + 1
        blocked[set_id] = blocked.get(set_id, 0) + (not is_lendable(instrument))
    open_loans = {loan.set_id: loan for loan in session.scalars(
        select(SetLoan).where(SetLoan.closed_on.is_(None)).options(joinedload(SetLoan.school)))}
    sets = session.scalars(select(ClassroomSet).order_by(ClassroomSet.name)).all()
    return [(s, sizes.get(s.id, 0), open_loans.get(s.id), 0 if s.id in open_loans else blocked.get(s.id, 0))
            for s in sets]


def set_loans_for_school(session: Session, school_id: int, *, open_only: bool = False) -> list[SetLoan]:
    query = (select(SetLoan).where(SetLoan.school_id == school_id)
             .options(joinedload(SetLoan.classroom_set)).order_by(SetLoan.closed_on.is_not(None),
                                                                  SetLoan.started_on.desc(), SetLoan.id.desc()))
    if open_only:
        query = query.where(SetLoan.closed_on.is_(None))
    return list(session.scalars(query))


def missing_counts(session: Session, set_loans: list[SetLoan]) -> dict[int, int]:
    """How many items of each set loan were reported missing (their loans closed as lost)."""
    ids = [sl.id for sl in set_loans]
    if not ids:
        return {}
    return dict(session.execute(select(Loan.set_loan_id, func.count()).where(
        Loan.set_loan_id.in_(ids), Loan.status == LoanStatus.LOST).group_by(Loan.set_loan_id)).all())


def set_instruments(session: Session, classroom_set: ClassroomSet, *, for_update: bool = False) -> list[Instrument]:
    query = (select(Instrument).join(ClassroomSetItem, ClassroomSetItem.instrument_id == Instrument.id)
             .where(ClassroomSetItem.set_id == classroom_set.id).order_by(Instrument.asset_tag))
    if for_update:
        instruments = list(session.scalars(query.with_for_update(of=Instrument)).unique())
        locked(session, *instruments)
        return instruments
    return list(session.scalars(query).unique())


def open_set_loan(session: Session, classroom_set: ClassroomSet) -> SetLoan | None:
    return session.scalars(
        select(SetLoan).where(SetLoan.set_id == classroom_set.id, SetLoan.closed_on.is_(None))).first()


def get_set_loan(session: Session, set_loan_id: int) -> SetLoan:
    # The school comes in the same query: a scan's audit event names it as the borrower.
    set_loan = session.scalars(select(SetLoan).where(SetLoan.id == set_loan_id)
                               .options(joinedload(SetLoan.school))).first()
    if set_loan is None:
        raise NotFound("There is no such set loan.")
    return set_loan


@dataclass
class Progress:
    total: int
    back: int
    lost: int
    still_out: list[Loan] = field(default_factory=list)

    @property
    def outstanding(self) -> int:
        return self.total - self.back - self.lost

    @property
    def summary(self) -> str:
        text = f"{self.back} of {self.total} back"
        return text + (f", {self.lost} missing" if self.lost else "")


_loan = Loan.__table__
_COUNTS = (select(_loan.c.status, func.count()).where(_loan.c.set_loan_id == bindparam("set_loan_id"))
           .group_by(_loan.c.status))
_BACK, _LOST = (LoanStatus.RETURNED.value, LoanStatus.EXCHANGED.value), (LoanStatus.LOST.value,)
# The same counts as two questions of one value each, for a batch (see loanservice.batch).
_COUNT_BACK, _COUNT_LOST = (
    select(func.count()).where(_loan.c.set_loan_id == bindparam("set_loan_id"), _loan.c.status.in_(statuses))
    for statuses in (_BACK, _LOST))


def progress(session: Session, set_loan: SetLoan, *, with_items: bool = False) -> Progress:
    """How much of a set is back: one aggregate query (and one for the list still out)."""
    counts = dict(session.execute(_COUNTS, {"set_loan_id": set_loan.id}).all())
    result = Progress(
        total=set_loan.item_count,
        back=sum(counts.get(status, 0) for status in _BACK),
        lost=sum(counts.get(status, 0) for status in _LOST),
    )
    if with_items:
        result.still_out = list(session.scalars(
            select(Loan).join(Loan.instrument).where(Loan.set_loan_id == set_loan.id, Loan.closed_on.is_(None))
            .options(contains_eager(Loan.instrument)).order_by(Instrument.asset_tag)))
    return result


def _progress_after(batch: Batch, set_loan: SetLoan, loan: Loan):
    """The set's progress once ``loan`` (open now) is closed by ``batch``: its questions see the set as
    before the batch, and this one item is added to what they count. Call the result after writing."""
    params = {"set_loan_id": set_loan.id}
    back, lost = batch.ask(_COUNT_BACK, params), batch.ask(_COUNT_LOST, params)

    def result() -> Progress:
        closed_as = loan.status  # the batch has set it
        return Progress(total=set_loan.item_count,
                        back=back.value + (closed_as in _BACK), lost=lost.value + (closed_as in _LOST))

    return result


def returned_items(session: Session, set_loan: SetLoan) -> list[Loan]:
    return list(session.scalars(
        select(Loan).join(Loan.instrument).where(Loan.set_loan_id == set_loan.id, Loan.closed_on.is_not(None))
        .options(contains_eager(Loan.instrument)).order_by(Loan.id.desc())))


@dataclass
class Missing:
    """A set loan's items reported missing, and the replacement costs the school is charged."""

    loans: list[Loan]

    @property
    def owed(self) -> Decimal | None:
        """The known replacement costs together; None when none is known."""
        known = [loan.replacement_owed for loan in self.loans if loan.replacement_owed is not None]
        return sum(known, Decimal(0)) if known else None

    @property
    def unpriced(self) -> int:
        """How many have no replacement value recorded (the store sets what is owed)."""
        return sum(loan.replacement_owed is None for loan in self.loans)


def closed_items(session: Session, set_loan: SetLoan) -> tuple[list[Loan], Missing]:
    """The items back (latest first), and those reported missing."""
    closed = returned_items(session, set_loan)
    return ([loan for loan in closed if loan.status is not LoanStatus.LOST],
            Missing([loan for loan in closed if loan.status is LoanStatus.LOST]))


# ---------------------------------------------------------------- building sets


@tag_not_an_instrument.connect
def set_with_tag(session: Session, *, tag: str) -> ClassroomSet | None:
    """The classroom set whose own label carries ``tag``: what a scan resolves to when no instrument has it."""
    return session.scalar(select(ClassroomSet).where(ClassroomSet.tag == tag))



def save_set(
    session: Session, actor, *, name: str, tag: str, tags: list[str], notes: str = "",
    classroom_set: ClassroomSet | None = None,
) -> ClassroomSet:
    """Create a set, or change its name, tag and items (not while it is out at a school)."""
    name = name.strip()
    if not name:
        raise InvalidInput("Name the set.", field="name")
    tag = normalise_tag(tag)
    if not TAG_PATTERN.match(tag):
        raise InvalidInput("A set tag is up to 32 letters, digits and hyphens.", field="tag")
    others = select(ClassroomSet.name, ClassroomSet.tag).where(
        (ClassroomSet.name == name) | (ClassroomSet.tag == tag),
        ClassroomSet.id != (classroom_set.id if classroom_set is not None else -1))
    for other_name, other_tag in session.execute(others):
        if other_tag == tag:
            raise InvalidInput(f"{other_name} already has the tag {tag}.", field="tag")
        raise InvalidInput(f"Another set is called {name}.", field="name")
    if session.scalar(select(Instrument.id).where(Instrument.asset_tag == tag)) is not None:
        raise InvalidInput(f"{tag} is an instrument's tag; a set needs its own.", field="tag")
    wanted = list(dict.fromkeys(normalise_tag(t) for t in tags if t.strip()))
    if not wanted:
        raise InvalidInput("List the instruments in the set.", field="tags")
    instruments = {i.asset_tag: i for i in session.scalars(select(Instrument).where(Instrument.asset_tag.in_(wanted)))}
    unknown = [t for t in wanted if t not in instruments]
    if unknown:
        raise UnknownTag(unknown, field="tags")
    gone = [t for t, i in instruments.items() if i.status in (InstrumentStatus.WRITTEN_OFF, InstrumentStatus.MISSING)]
    if gone:
        raise InvalidInput(f"Written off or missing, so not for a set: {', '.join(gone)}.", field="tags")
    if classroom_set is not None and open_set_loan(session, classroom_set) is not None:
        raise NotLendable(f"{classroom_set.name} is out at a school; change it when it is back.")
    # A set's instruments go out with the set: one lent on its own, held for a borrower until their
    # agreement is signed, or reserved for a child, stays out of it until it is back.
    lent = dict(session.execute(
        select(Instrument.asset_tag, Loan).join(Loan, Loan.instrument_id == Instrument.id)
        .where(Instrument.asset_tag.in_(wanted), Loan.closed_on.is_(None), Loan.set_loan_id.is_(None))
        .options(joinedload(Loan.pupil), joinedload(Loan.family), joinedload(Loan.school),
                 joinedload(Loan.other_borrower))).all())
    held = sorted(set(lent) | {t for t, i in instruments.items() if i.status is InstrumentStatus.RESERVED})
    if held:
        def why(tag: str) -> str:
            loan = lent.get(tag)
            if loan is None:
                return "reserved for a child"
            return f"{'held for' if loan.is_pending else 'with'} {loan.borrower.name}"

        raise InvalidInput("On loan or held on their own, so not for a set until they are back: "
                           + "; ".join(f"{t} ({why(t)})" for t in held) + ".", field="tags")
    elsewhere = session.execute(
        select(Instrument.asset_tag, ClassroomSet.name)
        .join(ClassroomSetItem, ClassroomSetItem.instrument_id == Instrument.id)
        .join(ClassroomSet, ClassroomSet.id == ClassroomSetItem.set_id)
        .where(Instrument.asset_tag.in_(wanted),
               ClassroomSet.id != (classroom_set.id if classroom_set is not None else -1))).all()
    if elsewhere:
        raise InvalidInput("Already in another set: " + ", ".join(f"{t} ({n})" for t, n in elsewhere) + ".",
                           field="tags")
    old_tag = classroom_set.tag if classroom_set is not None else None
    if tag != old_tag:
        _claim_set_tag(session, tag)
    is_new = classroom_set is None
    if is_new:
        classroom_set = ClassroomSet()
        session.add(classroom_set)
    before = sorted(item.instrument.asset_tag for item in classroom_set.items) if not is_new else []
    classroom_set.name, classroom_set.tag, classroom_set.notes = name, tag, notes
    keep = set(wanted)
    classroom_set.items = [item for item in classroom_set.items if item.instrument.asset_tag in keep]
    have = {item.instrument.asset_tag for item in classroom_set.items}
    classroom_set.items += [ClassroomSetItem(instrument=instruments[t]) for t in wanted if t not in have]
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent change won the race for a name, tag or instrument
        raise InvalidInput("Another set already has that name, tag or one of these instruments.",
                           field="name") from error
    if old_tag is not None and tag != old_tag:
        release_tag(session, old_tag, TagKind.SET)
    record(session, actor, "set.added" if is_new else "set.edited", classroom_set,
           f"{'Built' if is_new else 'Changed'} {name} with {len(wanted)} instruments",
           {"items": [before, sorted(wanted)]})
    return classroom_set


def _claim_set_tag(session: Session, tag: str) -> None:
    """Register ``tag`` as a set's; taken since save_set's checks looked (a concurrent request), it says by what."""
    holder = claim_tag(session, tag, TagKind.SET)
    if holder is TagKind.INSTRUMENT:
        raise DuplicateTag(f"{tag} is an instrument's tag; a set needs its own.", field="tag")
    if holder is TagKind.SET:
        raise DuplicateTag(f"Another set already has the tag {tag}.", field="tag")


def delete_set(session: Session, actor, classroom_set: ClassroomSet) -> str:
    """Take apart a set made by mistake; its instruments stay, free for another set. A set that has
    been lent keeps its history (its set loans, the receipts), so it cannot be deleted."""
    lock(session, classroom_set)  # a lending of it waits, or is seen here if it came first
    if session.scalar(select(SetLoan.id).where(SetLoan.set_id == classroom_set.id).limit(1)) is not None:
        raise NotLendable(f"{classroom_set.name} has been lent before: it stays, with its history. "
                          "Change its instruments instead.")
    name, tag = classroom_set.name, classroom_set.tag
    record(session, actor, "set.deleted", classroom_set, f"Deleted {name} ({classroom_set.tag})",
           {"items": sorted(item.instrument.asset_tag for item in classroom_set.items)})
    session.delete(classroom_set)
    session.flush()
    release_tag(session, tag, TagKind.SET)
    return name


# ---------------------------------------------------------------- lending sets


@lending_alone.connect
def _refuse_a_set_member(instrument: Instrument, *, session: Session) -> None:
    """A classroom set member goes out with its set (or home from it, through the set): never on its own."""
    classroom_set = session.scalar(select(ClassroomSet).join(ClassroomSetItem)
                                   .where(ClassroomSetItem.instrument_id == instrument.id))
    if classroom_set is not None:
        raise NotLendable(f"{instrument.asset_tag} belongs to {classroom_set.name}: take it out of the set first.")


def check_out_set(
    session: Session, actor, classroom_set: ClassroomSet, school: School, *,
    started_on: date | None = None, due_on: date | None = None, pupils: int | None = None,
    year_group: int | None = None,
) -> SetLoan:
    """Lend every instrument of a set to a school in one transaction, one loan per item; ``pupils`` and
    ``year_group`` describe the class taught with it, for the funders' figures."""
    # Typos such as 2010 or 2062, refused before anything is locked.
    if started_on is not None:
        check_start_date_in_reach(started_on)
    started_on = started_on or today()
    if due_on is not None:
        check_due_date_in_reach(due_on)
    due_on = resolve_due_date(session, started_on, due_on)
    # Lock the set (a deletion waits), then the items (in tag order, so two requests cannot deadlock),
    # then look: a request that waited for another lending the same set sees that set loan now.
    lock(session, classroom_set)
    instruments = set_instruments(session, classroom_set, for_update=True)
    current = open_set_loan(session, classroom_set)
    if current is not None:
        raise NotLendable(f"{classroom_set.name} is already out at {current.school.name}.")
    if not instruments:
        raise InvalidInput(f"{classroom_set.name} has no instruments.")
    unlendable = unlendable_reasons(session, instruments)
    if unlendable:  # every one named, so that the store can sort them all out before the next try
        raise NotLendable(f"{counted(len(unlendable), 'instrument')} of {classroom_set.name} cannot go out: "
                          + "; ".join(f"{i.asset_tag} {reason}" for i, reason in unlendable.items()) + ".")
    check_after_last_loans(session, instruments, started_on)
    set_loan = SetLoan(classroom_set=classroom_set, school=school, started_on=started_on, due_on=due_on,
                       item_count=len(instruments), issued_by=actor, pupils=pupils, year_group=year_group)
    session.add(set_loan)
    try:
        session.flush()
    except IntegrityError as error:
        raise NotLendable(f"{classroom_set.name} is already out.") from error
    for instrument in instruments:
        # A set is lent under the school's own agreement: no fee per item.
        open_loan(session, actor, instrument, school, started_on=started_on, due_on=due_on, set_loan=set_loan,
                  charges=Charges())
    record(session, actor, "set.out", set_loan,
           f"{classroom_set.name} lent to {school.name} until {due_on:%-d %b %Y}",
           {"items": len(instruments), "due_on": due_on})
    return set_loan


# Built once: its cache key too, which for a query of this shape costs more than running it.
_LOCATE_SCAN = (
    select(SetLoan, Loan).join(Loan, Loan.set_loan_id == SetLoan.id).join(Loan.instrument)
    .where(SetLoan.id == bindparam("set_loan_id"), Instrument.asset_tag == bindparam("tag"), Loan.closed_on.is_(None))
    # Only the columns a scan reads: loading whole rows of four tables is a good part of a scan's time.
    .options(load_only(SetLoan.set_id, SetLoan.school_id, SetLoan.started_on, SetLoan.closed_on, SetLoan.item_count),
             joinedload(SetLoan.school).load_only(School.name),
             load_only(Loan.instrument_id, Loan.pupil_id, Loan.family_id, Loan.school_id, Loan.other_borrower_id,
                       Loan.set_loan_id, Loan.status, Loan.started_on, Loan.closed_on, Loan.condition_at_issue),
             contains_eager(Loan.instrument).load_only(Instrument.asset_tag, Instrument.type_id, Instrument.size,
                                                       Instrument.status, Instrument.condition_grade)
             .lazyload(Instrument.type))
    .with_for_update(of=(SetLoan, Loan, Instrument))
)


def locate_scan(session: Session, set_loan_id: int, code: str, *, base_url: str = "") -> tuple[SetLoan, Loan] | None:
    """The set loan and the open loan in it of the scanned item, with its instrument and the school: one
    query, which locks the three rows. None when the code is not an open item of this set: the caller
    then loads the set loan alone, and the check-in says why."""
    try:
        tag = tag_from_code(code, base_url)
    except LoanServiceError:
        return None
    row = session.execute(_LOCATE_SCAN, {"set_loan_id": set_loan_id, "tag": tag}).first()
    if row is None:
        return None
    locked(session, row[0], row[1], row[1].instrument)
    return row[0], row[1]


def _scanned_loan(session: Session, set_loan: SetLoan, code: str, base_url: str, actor=None) -> Loan:
    """The open loan of the scanned item of this set, locked; or a clear reason why not."""
    tag = tag_from_code(code, base_url)
    loan = session.scalars(
        select(Loan).join(Loan.instrument)
        .where(Instrument.asset_tag == tag, Loan.closed_on.is_(None))
        .options(contains_eager(Loan.instrument)).with_for_update()
    ).first()
    if loan is not None and loan.set_loan_id == set_loan.id:
        locked(session, loan, loan.instrument)
        return loan
    # Only a wrong scan gets here, so the extra queries cost nothing on the happy path.
    name = set_loan.classroom_set.name
    instrument = resolve(session, tag)
    if isinstance(instrument, ClassroomSet):
        whose = (f"{name}'s own label" if instrument.id == set_loan.set_id
                 else f"the label of another set, {instrument.name}")
        raise SetError(f"{tag} is {whose}: scan the labels on the instruments one by one.", field="code")
    owner = session.scalar(select(ClassroomSet).join(ClassroomSetItem)
                           .where(ClassroomSetItem.instrument_id == instrument.id))
    if owner is not None and owner.id != set_loan.set_id:
        raise SetError(f"{tag} belongs to {owner.name}, not {name}.", field="code")
    if owner is None:
        raise SetError(f"{tag} is not part of {name}.", field="code")
    if loan is None:
        _refuse_if_reported_missing(session, set_loan, tag, actor)
        if not set_loan.is_open:
            raise SetError(f"{name} is already all back.", field="code")
        raise SetError(f"{tag} is not on loan: it is already back.", field="code")
    raise SetError(f"{tag} is on another loan, not this one of {name}.", field="code")


def _refuse_if_reported_missing(session: Session, set_loan: SetLoan, tag: str, actor=None) -> None:
    """An item of this set loan reported missing has turned up: the store records it found (Mark found)."""
    last = session.scalar(select(Loan).join(Loan.instrument)
                          .where(Loan.set_loan_id == set_loan.id, Instrument.asset_tag == tag)
                          .order_by(Loan.id.desc()).limit(1))
    if last is not None and last.status is LoanStatus.LOST:
        said = f"{tag} was reported missing on {last.closed_on:%-d %b %Y}."
        if getattr(actor, "role", None) in (Role.ADMIN, Role.STAFF):
            raise SetError(f"{said} It has turned up: mark it found on its page (Mark found).", field="code")
        raise SetError(f"{said} Keep it with the set and tell the instrument store it has turned up: they mark it "
                       "found.", field="code")


def check_in_set_item(
    session: Session, actor, set_loan: SetLoan, code: str, *, grade: int | None = None, note: str = "",
    damaged: bool = False, base_url: str = "", loan: Loan | None = None,
) -> tuple[Loan, Progress]:
    """Check one scanned item of a set back in; close the set loan when the last one is back.

    ``grade``: the condition this one item is back in; None for the condition it went out in.
    ``loan``: the item's open loan, when ``locate_scan`` has found and locked it already.
    Costs the same few statements whatever the size of the set: the check-in, the end of a
    take-home and the count of what is back are one batch, one statement on PostgreSQL.
    """
    # Scans of one set take turns, so the last item back closes the set loan exactly once
    # (``locate_scan`` has locked it already, and the item's loan and instrument).
    lock(session, set_loan)
    if not set_loan.is_open:  # say why as for any wrong scan (an unknown tag, another set's item...)
        _scanned_loan(session, set_loan, code, base_url, actor)
        raise SetError(f"{set_loan.classroom_set.name} is already all back.", field="code")
    if loan is None:
        loan = _scanned_loan(session, set_loan, code, base_url, actor)
    batch = Batch()
    check_in(session, actor, loan, grade=loan.condition_at_issue if grade is None else grade, note=note,
             damaged=damaged, batch=batch)
    _end_take_home(batch, loan)
    after = _progress_after(batch, set_loan, loan)
    batch.write(session)
    return loan, _close_if_complete(session, actor, set_loan, after())


def mark_set_item_missing(
    session: Session, actor, set_loan: SetLoan, code: str, note: str = "", *, base_url: str = "",
) -> tuple[Loan, Progress]:
    """Account for an item that has not come back: its loan is closed as lost and chased."""
    lock(session, set_loan)
    if not set_loan.is_open:
        raise SetError(f"{set_loan.classroom_set.name} is already all back.", field="code")
    loan = _scanned_loan(session, set_loan, code, base_url, actor)
    mark_lost(session, actor, loan, note)
    batch = Batch()
    _end_take_home(batch, loan)
    batch.write(session)
    return loan, _close_if_complete(session, actor, set_loan, progress(session, set_loan))


def _close_if_complete(session: Session, actor, set_loan: SetLoan, result: Progress) -> Progress:
    if result.outstanding == 0:
        set_loan.closed_on = max(today(), set_loan.started_on)
        record(session, actor, "set.in", set_loan, f"{set_loan.classroom_set.name} all back: {result.summary}",
               {"back": result.back, "lost": result.lost})
        session.flush()
    return result


# ---------------------------------------------------------------- take-home


def open_take_homes(session: Session, set_loan: SetLoan) -> dict[int, TakeHome]:
    """The set's items now at a pupil's home, by instrument id."""
    return {take.instrument_id: take for take in session.scalars(
        select(TakeHome).where(TakeHome.set_loan_id == set_loan.id, TakeHome.returned_on.is_(None))
        .options(joinedload(TakeHome.pupil)))}


def pupils_of(session: Session, school_id: int) -> list[Pupil]:
    return list(session.scalars(select(Pupil).where(Pupil.school_id == school_id).order_by(Pupil.name)))


def take_home(
    session: Session, actor, set_loan: SetLoan, code: str, pupil: Pupil, *,
    agreement_signed_on: date | None, due_on: date | None = None, base_url: str = "",
) -> TakeHome:
    """Lend a set item on to a pupil of the school, once a parent or carer has signed the agreement."""
    lock(session, set_loan)
    if not set_loan.is_open:
        raise SetError(f"{set_loan.classroom_set.name} is back at the store.", field="code")
    if pupil.school_id != set_loan.school_id:
        # Named by nobody: the pupil is another school's, and a school sees only its own children.
        raise InvalidInput(f"Choose a pupil of {set_loan.school.name}.", field="pupil_id")
    if pupil.family_id is None:
        raise InvalidInput(f"{pupil.name} has no parent or carer on record to sign the agreement.",
                           field="pupil_id")
    started_on = today()
    if agreement_signed_on is None:
        raise InvalidInput("A parent or carer signs the loan agreement before the instrument goes home.",
                           field="agreement_signed_on")
    if agreement_signed_on > started_on:
        raise InvalidInput("The agreement date is in the future.", field="agreement_signed_on")
    if agreement_signed_on < earliest_start_date(started_on):
        raise InvalidInput(f"{agreement_signed_on:%-d %b %Y} is too long ago for this loan's agreement: "
                           "check the year.",
                           field="agreement_signed_on")
    due_on = due_on or set_loan.due_on
    if due_on < started_on:
        raise InvalidInput("The due date is before today.", field="due_on")
    if due_on > set_loan.due_on:
        raise InvalidInput(f"It must be back in the set by {set_loan.due_on:%-d %b %Y}, when the set is due.",
                           field="due_on")
    loan = _scanned_loan(session, set_loan, code, base_url, actor)
    current = session.scalar(select(TakeHome).where(TakeHome.instrument_id == loan.instrument_id,
                                                    TakeHome.returned_on.is_(None)))
    if current is not None:
        raise SetError(f"{loan.instrument.asset_tag} is already at {current.pupil.name}'s home.", field="code")
    take = TakeHome(set_loan_id=set_loan.id, loan_id=loan.id, instrument_id=loan.instrument_id, pupil=pupil,
                    family_id=pupil.family_id, agreement_signed_on=agreement_signed_on, started_on=started_on,
                    due_on=due_on, issued_by=actor)
    session.add(take)
    try:
        session.flush()
    except IntegrityError as error:
        raise SetError(f"{loan.instrument.asset_tag} is already at a pupil's home.", field="code") from error
    record(session, actor, "set.take_home", take, f"Taken home by a pupil of {set_loan.school.name}",
           {"due_on": due_on, "agreement_signed_on": agreement_signed_on}, instrument=loan.instrument)
    return take


def back_to_set(session: Session, actor, set_loan: SetLoan, code: str, *, base_url: str = "") -> TakeHome:
    """A take-home instrument is back at school: the school is responsible again."""
    lock(session, set_loan)
    loan = _scanned_loan(session, set_loan, code, base_url, actor)
    take = session.scalar(select(TakeHome).where(TakeHome.instrument_id == loan.instrument_id,
                                                 TakeHome.returned_on.is_(None)).with_for_update())
    if take is None:
        raise SetError(f"{loan.instrument.asset_tag} is not out at a pupil's home.", field="code")
    take.returned_on = today()
    record(session, actor, "set.back_to_set", take, "Back in the set from a pupil's home", {},
           instrument=loan.instrument)
    session.flush()
    return take


_take_home = TakeHome.__table__
_END_TAKE_HOME = (update(_take_home)
                  .where(_take_home.c.instrument_id == bindparam("item"), _take_home.c.returned_on.is_(None))
                  .values(returned_on=bindparam("back_on")))


def _end_take_home(batch: Batch, loan: Loan) -> None:
    """An item checked in (or lost) is no longer at a pupil's home: part of the batch, no look-up."""
    batch.run(_END_TAKE_HOME, {"item": loan.instrument_id, "back_on": max(today(), loan.started_on)})
