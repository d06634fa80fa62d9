"""The inventory domain: instruments, their status lifecycle, condition and repairs.

Every function takes the session first, changes state, flushes and returns; the caller
(view, CLI command, later the API) owns the transaction.
"""
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, contains_eager

from ..audit.services import record
from ..batch import Batch, assign
from ..errors import InvalidInput, LoanServiceError
from ..signals import held_instrument_withdrawing
from ..timeutil import today, utcnow
from .models import (
    CONDITION_GRADES,
    SUBSTRING_SEARCHED,
    AssetTag,
    AssetTagCounter,
    CheckReason,
    ConditionCheck,
    Instrument,
    InstrumentFamily,
    InstrumentStatus,
    InstrumentType,
    Repair,
    RepairKind,
    TagKind,
)
from .tags import TAG_PATTERN, normalise_tag

S = InstrumentStatus

# Which status may follow which. Loans and reservations move instruments through the
# same table, so one rule holds for every way in.
TRANSITIONS: dict[InstrumentStatus, set[InstrumentStatus]] = {
    S.AVAILABLE: {S.RESERVED, S.AWAITING_AGREEMENT, S.ON_LOAN, S.IN_REPAIR, S.IN_SERVICE, S.MISSING,
                  S.WRITTEN_OFF},
    # A reserved instrument is handed over by way of available (reservations.services.collect).
    S.RESERVED: {S.AVAILABLE, S.IN_REPAIR, S.MISSING, S.WRITTEN_OFF},
    S.AWAITING_AGREEMENT: {S.AVAILABLE, S.ON_LOAN, S.IN_REPAIR, S.MISSING, S.WRITTEN_OFF},
    S.ON_LOAN: {S.AVAILABLE, S.IN_REPAIR, S.MISSING, S.WRITTEN_OFF},
    S.IN_REPAIR: {S.AVAILABLE, S.MISSING, S.WRITTEN_OFF},
    S.IN_SERVICE: {S.AVAILABLE, S.MISSING, S.WRITTEN_OFF},
    S.MISSING: {S.AVAILABLE, S.WRITTEN_OFF},
    S.WRITTEN_OFF: set(),
}

MAX_MONEY = Decimal("99999999.99")  # the Numeric(10, 2) columns' limit


class DuplicateTag(LoanServiceError):
    status_code = 409


class InvalidTransition(LoanServiceError):
    status_code = 409


@dataclass
class InstrumentDetails:
    """What a person can set on an instrument (the status is moved by services only)."""

    type_id: int
    size: str = ""
    make: str = ""
    model: str = ""
    serial_number: str = ""
    accessories: str = ""
    location: str = "Store"
    purchased_on: date | None = None
    purchase_cost: Decimal | None = None
    funding_source: str = ""
    replacement_value: Decimal | None = None
    send_adapted: bool = False
    pat_due_on: date | None = None
    notes: str = ""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def of(cls, instrument: Instrument) -> "InstrumentDetails":
        return cls(**{name: getattr(instrument, name) for name in cls.field_names()})


# ---------------------------------------------------------------- look-ups


def list_types(session: Session) -> list[InstrumentType]:
    return list(session.scalars(select(InstrumentType).order_by(InstrumentType.name)))


# DISTINCT would read the whole location index; hopping from one location to the next
# costs one index probe per location instead (a "loose index scan").
_LOCATIONS_SQL = text("""
    WITH RECURSIVE hop(location) AS (
        SELECT min(location) FROM instrument
        UNION ALL
        SELECT (SELECT min(i.location) FROM instrument i WHERE i.location > hop.location)
        FROM hop WHERE hop.location IS NOT NULL
    )
    SELECT location FROM hop WHERE location IS NOT NULL
""")


def list_locations(session: Session) -> list[str]:
    """Every distinct location, in order."""
    return list(session.scalars(_LOCATIONS_SQL))


@dataclass
class InstrumentFilters:
    q: str = ""
    type_id: int | None = None
    size: str = ""
    status: str = ""
    location: str = ""
    condition: int | None = None  # this grade or worse
    sort: str = "tag"


SORTS = {
    "tag": (Instrument.asset_tag,),
    "-tag": (Instrument.asset_tag.desc(),),
    "type": (InstrumentType.name, Instrument.size, Instrument.asset_tag),
    "status": (Instrument.status, Instrument.asset_tag),
    "condition": (Instrument.condition_grade.desc(), Instrument.asset_tag.desc()),
    "location": (Instrument.location, Instrument.asset_tag),
    "updated": (Instrument.updated_at.desc(), Instrument.id.desc()),
}


def search_instruments_query(session: Session, filters: InstrumentFilters, tag_prefix: str = "MIX"):
    """Build the select for the instrument list: search, filters and a stable order."""
    query = select(Instrument)
    q = filters.q.strip()
    if q:
        tag = normalise_tag(q)
        if tag.startswith(normalise_tag(tag_prefix) + "-") and TAG_PATTERN.match(tag):
            # One of the hub's own tags (a scan, or "MIX-05"): an index range, not a full scan.
            query = query.where(or_(
                Instrument.asset_tag.between(tag, tag + "\uffff"),
                Instrument.serial_number == q,
            ))
        else:
            # Every word must match somewhere: "stentor 3/4", "cello shelf b".
            _plan_for_the_words(session)
            for word in q.split()[:8]:
                query = query.where(_word_matches(session, word))
    if filters.type_id:
        query = query.where(Instrument.type_id == filters.type_id)
    if filters.size:
        query = query.where(Instrument.size == filters.size)
    if filters.status:
        query = query.where(Instrument.status == filters.status)
    if filters.location:
        query = query.where(Instrument.location == filters.location)
    if filters.condition:
        query = query.where(Instrument.condition_grade >= filters.condition)
    if filters.sort == "type":
        query = query.join(Instrument.type).options(contains_eager(Instrument.type))
    return query.order_by(*SORTS.get(filters.sort, SORTS["tag"]))


def _plan_for_the_words(session: Session) -> None:
    """PostgreSQL: plan the rest of this transaction's statements for the words actually searched.

    psycopg prepares a statement once a connection has run it five times, and PostgreSQL may then
    reuse one generic plan whatever the words. Not knowing them, it expects thousands of matches
    and fills the page by walking the tag index: every row when a serial matches nothing (300-500 ms
    at 100,000 instruments, against 2 ms from the search indexes).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _word_matches(session: Session, word: str):
    """One search word found anywhere in the serial, make, model or location (any case), at the
    start of the tag, as the size, or in the type's name.

    Every alternative is one an index answers on PostgreSQL (see ``_search_indexes`` in the
    models), so the OR is a BitmapOr of index scans rather than a read of every row: a single
    alternative without an index would make the whole OR a scan. That is why the types are
    looked up first: ``type_id IN (SELECT ...)`` inside an OR is a subplan run per row, which no
    index serves, while a list of ids is a range on ix_instrument_type_size, estimated well.
    """
    like = f"%{escape_like(word)}%"
    contains = _contains_ignoring_case(session)
    alternatives = [
        Instrument.asset_tag.like(f"{escape_like(normalise_tag(word))}%", escape="\\"),
        *(contains(getattr(Instrument, column), like) for column in SUBSTRING_SEARCHED),
        Instrument.size == word,
    ]
    type_ids = list(session.scalars(
        select(InstrumentType.id).where(contains(InstrumentType.name, like))))
    if type_ids:
        alternatives.append(Instrument.type_id.in_(type_ids))
    return or_(*alternatives)


def _contains_ignoring_case(session: Session):
    """``contains(column, pattern)``: the column matches the LIKE pattern in any case.

    ILIKE on PostgreSQL (the trigram indexes serve exactly that). SQLAlchemy writes ILIKE on
    SQLite as lower(x) LIKE lower(p); SQLite's own LIKE already ignores the case of ASCII letters,
    the only ones its lower() folds (the app never sets PRAGMA case_sensitive_like), so plain
    LIKE finds the same rows there in half the time, every row being read as no index serves it.
    """
    if session.get_bind().dialect.name == "sqlite":
        return lambda column, pattern: column.like(pattern, escape="\\")
    return lambda column, pattern: column.ilike(pattern, escape="\\")


def escape_like(text: str) -> str:
    """``text`` for a LIKE pattern with ESCAPE '\\': its own % and _ match only themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---------------------------------------------------------------- validation


def _validate(session: Session, details: InstrumentDetails) -> InstrumentType:
    instrument_type = session.get(InstrumentType, details.type_id) if details.type_id else None
    if instrument_type is None:
        raise InvalidInput("Unknown instrument type.", field="type_id")
    if instrument_type.sizes:
        if not details.size:
            raise InvalidInput(f"Choose a size: {instrument_type.name} comes in "
                               f"{', '.join(instrument_type.sizes)}.", field="size")
        if details.size not in instrument_type.sizes:
            raise InvalidInput(
                f"{instrument_type.name} comes in sizes {', '.join(instrument_type.sizes)}; "
                f"{details.size or 'no size'!r} is not one of them.",
                field="size",
            )
    elif details.size:
        raise InvalidInput(f"{instrument_type.name} comes in one size only.", field="size")
    for name in ("purchase_cost", "replacement_value"):
        value = getattr(details, name)
        if value is not None and not isinstance(value, Decimal):
            value = Decimal(str(value))
            setattr(details, name, value)
        if value is not None and (not value.is_finite() or value < 0 or value > MAX_MONEY):
            raise InvalidInput(f"{name.replace('_', ' ').capitalize()} must be an amount from £0 to "
                               f"£{MAX_MONEY:,}.", field=name)
    if details.purchased_on and details.purchased_on > today():
        raise InvalidInput("The purchase date is in the future.", field="purchased_on")
    if not details.location.strip():
        raise InvalidInput("Say where the instrument is.", field="location")
    return instrument_type


def _check_tag(session: Session, tag: str) -> str:
    """``tag`` normalised, if it is well formed and no instrument or classroom set has it yet."""
    tag = normalise_tag(tag)
    if not TAG_PATTERN.match(tag):
        raise InvalidInput(
            "An asset tag is up to 32 letters, digits and hyphens, starting with a letter or digit.",
            field="asset_tag",
        )
    holder = tag_holder(session, tag)
    if holder is not None:
        raise _tag_in_use(tag, holder)
    return tag


def _tag_in_use(tag: str, holder: TagKind) -> DuplicateTag:
    return DuplicateTag(f"Asset tag {tag} is already in use"
                        + (": it is a classroom set's tag." if holder is TagKind.SET else "."), field="asset_tag")


def tag_holder(session: Session, tag: str) -> TagKind | None:
    """What has ``tag`` already: an instrument, a classroom set (a set's label and an instrument's lead
    to the same short page, so their tags must differ too), or nothing."""
    kind = session.scalar(select(AssetTag.kind).where(AssetTag.tag == tag))
    return None if kind is None else TagKind(kind)


def claim_tag(session: Session, tag: str, kind: TagKind) -> TagKind | None:
    """Register ``tag`` as an instrument's or a set's, before the row that carries it is written.

    Returns None when the tag is now ``kind``'s, or what holds it already. Safe under concurrency: a
    claim of the same tag by another transaction waits for it to end, and fails if it commits.
    """
    claimed = session.execute(dialect_insert(session)(AssetTag).values(tag=tag, kind=kind.value)
                              .on_conflict_do_nothing().returning(AssetTag.tag)).scalar_one_or_none()
    if claimed is not None:
        return None
    return tag_holder(session, tag) or kind  # (or kind: its holder let it go since, a rare race)


def dialect_insert(session: Session):
    """The INSERT construct of the session's database, which has ON CONFLICT (PostgreSQL and SQLite alike)."""
    return {"postgresql": pg_insert, "sqlite": sqlite_insert}[session.get_bind().dialect.name]


def release_tag(session: Session, tag: str, kind: TagKind) -> None:
    """Free a tag its instrument or set no longer carries (after the change is flushed)."""
    session.execute(delete(AssetTag).where(AssetTag.tag == tag, AssetTag.kind == kind.value))


def register_tags(session: Session, tags: list[str], kind: TagKind) -> None:
    """Register new tags in bulk, before inserting their instruments or sets in bulk (demo data, benchmarks)."""
    session.execute(insert(AssetTag), [{"tag": tag, "kind": kind.value} for tag in tags])


def _claim_instrument_tag(session: Session, tag: str) -> None:
    holder = claim_tag(session, tag, TagKind.INSTRUMENT)
    if holder is not None:  # taken since _check_tag looked, by a concurrent request
        raise _tag_in_use(tag, holder)


def next_asset_tag(session: Session, prefix: str, digits: int = 6) -> str:
    """Issue the next free tag for ``prefix`` (e.g. MIX-000124), claimed for an instrument; safe under concurrency."""
    prefix = normalise_tag(prefix)
    # One atomic upsert: creates the counter on first use, and the row lock orders
    # concurrent requests, so no two of them ever get the same number.
    bump = dialect_insert(session)(AssetTagCounter).values(prefix=prefix, last_value=1)
    bump = bump.on_conflict_do_update(
        index_elements=[AssetTagCounter.prefix], set_={"last_value": AssetTagCounter.last_value + 1}
    ).returning(AssetTagCounter.last_value)
    for _ in range(1000):
        number = session.execute(bump).scalar_one()
        tag = f"{prefix}-{number:0{digits}d}"
        # A tag typed by hand (an instrument's or a set's) may already hold this number: skip past it.
        if claim_tag(session, tag, TagKind.INSTRUMENT) is None:
            return tag
    raise LoanServiceError(f"No free asset tag found for prefix {prefix}.")


# ---------------------------------------------------------------- changes


def add_instrument(
    session: Session,
    actor,
    details: InstrumentDetails,
    *,
    asset_tag: str = "",
    condition_grade: int = 2,
    condition_note: str = "",
    tag_prefix: str = "MIX",
    tag_digits: int = 6,
) -> Instrument:
    """Add an instrument to the inventory with its intake condition check (the next free tag when none is given)."""
    _validate(session, details)
    _check_grade(condition_grade)
    if asset_tag.strip():
        tag = _check_tag(session, asset_tag)
        _claim_instrument_tag(session, tag)
    else:
        tag = next_asset_tag(session, tag_prefix, tag_digits)
    instrument = Instrument(asset_tag=tag, condition_grade=condition_grade, status=S.AVAILABLE)
    for name in InstrumentDetails.field_names():
        setattr(instrument, name, getattr(details, name))
    session.add(instrument)
    session.flush()
    session.add(
        ConditionCheck(
            instrument_id=instrument.id,
            grade=condition_grade,
            reason=CheckReason.INTAKE,
            note=condition_note,
            checked_by=actor,
        )
    )
    record(session, actor, "instrument.added", instrument, f"Added {instrument.asset_tag}",
           {"condition": condition_grade, **{k: v for k, v in vars(details).items() if v not in ("", None)}})
    session.flush()
    return instrument


def update_instrument(
    session: Session, actor, instrument: Instrument, details: InstrumentDetails, *, asset_tag: str | None = None
) -> Instrument:
    """Change an instrument's details; the audit trail keeps the old and new values."""
    _validate(session, details)
    changes = {}
    if asset_tag is not None and normalise_tag(asset_tag) != instrument.asset_tag:
        new_tag = _check_tag(session, asset_tag)
        _claim_instrument_tag(session, new_tag)
        changes["asset_tag"] = [instrument.asset_tag, new_tag]
        instrument.asset_tag = new_tag
    for name in InstrumentDetails.field_names():
        old, new = getattr(instrument, name), getattr(details, name)
        if old != new:
            changes[name] = [old, new]
            setattr(instrument, name, new)
    if not changes:
        return instrument
    session.flush()
    if "asset_tag" in changes:
        release_tag(session, changes["asset_tag"][0], TagKind.INSTRUMENT)
    record(session, actor, "instrument.edited", instrument,
           "Changed " + ", ".join(k.replace("_", " ") for k in changes), changes)
    session.flush()
    return instrument


def _check_grade(grade: int) -> None:
    if grade not in CONDITION_GRADES:
        raise InvalidInput("A condition grade is from 1 (excellent) to 5 (unusable).", field="grade")


def change_status(
    session: Session, actor, instrument: Instrument, new_status: InstrumentStatus, reason: str = "",
    *, batch: Batch | None = None,
) -> Instrument:
    """Move an instrument to ``new_status`` if the lifecycle allows it (written with ``batch``, if given)."""
    current = instrument.status
    if new_status not in TRANSITIONS[current]:
        raise InvalidTransition(
            f"{instrument.asset_tag} is {current.label.lower()}; it cannot become "
            f"{new_status.label.lower()}."
        )
    assign(instrument, batch, status=new_status, status_reason=reason)
    if new_status is S.WRITTEN_OFF:
        assign(instrument, batch, disposed_on=today())
    record(session, actor, "instrument.status", instrument,
           f"{current.label} → {new_status.label}" + (f": {reason}" if reason else ""),
           {"status": [current, new_status], "reason": reason}, batch=batch)
    # No flush here: a status change is part of a larger change (a loan, a repair, a scan)
    # whose caller flushes once, and the next query autoflushes anyway.
    return instrument


def record_condition(
    session: Session, actor, instrument: Instrument, grade: int, reason: CheckReason, note: str = "",
    *, batch: Batch | None = None,
) -> ConditionCheck | None:
    """Record a condition check and make its grade the instrument's current condition (written with
    ``batch``, if given: then there is no ConditionCheck object to return)."""
    _check_grade(grade)
    values = dict(instrument_id=instrument.id, grade=grade, reason=reason, note=note)
    check = None
    if batch is not None:
        batch.add(ConditionCheck, checked_at=utcnow(), checked_by_id=actor.id if actor is not None else None,
                  **values)
    else:
        check = ConditionCheck(checked_by=actor, **values)
        session.add(check)
    old = instrument.condition_grade
    assign(instrument, batch, condition_grade=grade)
    record(session, actor, "instrument.condition", instrument,
           f"Condition {grade} ({CONDITION_GRADES[grade]}), {reason.label.lower()}",
           {"condition_grade": [old, grade], "reason": reason, "note": note}, batch=batch)
    return check


def _refuse_while_on_loan(session: Session, instrument: Instrument) -> None:
    """Changes that would strand an open loan, or one pending its agreement, go through the loan instead."""
    if instrument.status is S.ON_LOAN:
        raise InvalidTransition(
            f"{instrument.asset_tag} is on loan: check it in first, or record the loan as lost."
        )
    if instrument.status is S.AWAITING_AGREEMENT:  # loans refuse while a loan pending its agreement holds it
        held_instrument_withdrawing.send(instrument, session=session)


def open_repair(session: Session, instrument: Instrument) -> Repair | None:
    return session.scalars(
        select(Repair).where(Repair.instrument_id == instrument.id, Repair.returned_on.is_(None))
    ).first()


def send_to_repair(
    session: Session,
    actor,
    instrument: Instrument,
    *,
    repairer: str,
    fault: str = "",
    sent_on: date | None = None,
    expected_back_on: date | None = None,
    expected_cost: Decimal | None = None,
    kind: RepairKind = RepairKind.REPAIR,
    plan_id: int | None = None,
) -> Repair:
    """Send an instrument to a repairer, or (``kind`` service) to servicing: one record, one history."""
    sent_on = sent_on or today()
    if sent_on > today():
        raise InvalidInput("The date sent is in the future.", field="sent_on")
    if not repairer.strip():
        raise InvalidInput("Name the repairer.", field="repairer")
    if expected_back_on and expected_back_on < sent_on:
        raise InvalidInput("The expected return date is before the date sent.", field="expected_back_on")
    if expected_cost is not None and expected_cost < 0:
        raise InvalidInput("The expected cost cannot be negative.", field="expected_cost")
    _refuse_while_on_loan(session, instrument)
    if open_repair(session, instrument) is not None:
        raise InvalidTransition(f"{instrument.asset_tag} is already "
                                + ("in servicing." if instrument.status is S.IN_SERVICE else "at a repairer."))
    servicing = kind is RepairKind.SERVICE
    change_status(session, actor, instrument, S.IN_SERVICE if servicing else S.IN_REPAIR,
                  f"servicing by {repairer.strip()}" if servicing else f"at {repairer}")
    repair = Repair(
        kind=kind,
        plan_id=plan_id,
        instrument_id=instrument.id,
        repairer=repairer.strip(),
        fault=fault,
        sent_on=sent_on,
        expected_back_on=expected_back_on,
        expected_cost=expected_cost,
        sent_by=actor,
    )
    session.add(repair)
    session.flush()
    record(session, actor, "repair.sent", repair,
           f"Sent to servicing by {repair.repairer}" if servicing else f"Sent to {repair.repairer}",
           {"fault": fault, "expected_back_on": expected_back_on, "expected_cost": expected_cost},
           instrument=instrument)
    return repair


def return_from_repair(
    session: Session,
    actor,
    instrument: Instrument,
    *,
    grade: int,
    returned_on: date | None = None,
    actual_cost: Decimal | None = None,
    work_done: str = "",
) -> Repair:
    """Take an instrument back from repair with a new condition check."""
    repair = open_repair(session, instrument)
    if repair is None:
        raise InvalidTransition(f"{instrument.asset_tag} is not at a repairer or in servicing.")
    returned_on = returned_on or today()
    if returned_on < repair.sent_on:
        raise InvalidInput("The return date is before the date it was sent.", field="returned_on")
    if returned_on > today():
        raise InvalidInput("The return date is in the future.", field="returned_on")
    if actual_cost is not None and actual_cost < 0:
        raise InvalidInput("The cost cannot be negative.", field="actual_cost")
    repair.returned_on = returned_on
    repair.actual_cost = actual_cost
    repair.work_done = work_done
    repair.returned_by = actor
    servicing = repair.kind is RepairKind.SERVICE
    record(session, actor, "repair.returned", repair,
           f"Serviced by {repair.repairer}" if servicing else f"Back from {repair.repairer}",
           {"actual_cost": actual_cost, "work_done": work_done}, instrument=instrument)
    record_condition(session, actor, instrument, grade, CheckReason.REPAIR,
                     f"Serviced. {work_done}".strip() if servicing else work_done)
    change_status(session, actor, instrument, S.AVAILABLE)
    return repair


def write_off(session: Session, actor, instrument: Instrument, reason: str) -> Instrument:
    """Write an instrument off for good; the reason is required and kept."""
    if not reason.strip():
        raise InvalidInput("Give the reason for writing it off.", field="reason")
    _refuse_while_on_loan(session, instrument)
    repair = open_repair(session, instrument)
    if repair is not None:
        repair.returned_on = max(today(), repair.sent_on)
        repair.work_done = (repair.work_done + " Written off while at the repairer.").strip()
    return change_status(session, actor, instrument, S.WRITTEN_OFF, reason.strip())


def mark_missing(session: Session, actor, instrument: Instrument, note: str = "") -> Instrument:
    _refuse_while_on_loan(session, instrument)
    return change_status(session, actor, instrument, S.MISSING, note.strip())


def mark_found(session: Session, actor, instrument: Instrument, grade: int, note: str = "") -> Instrument:
    """A missing instrument turned up: check its condition and make it available again."""
    if instrument.status is not S.MISSING:
        raise InvalidTransition(f"{instrument.asset_tag} is not missing.")
    record_condition(session, actor, instrument, grade, CheckReason.INSPECTION, note or "Found")
    return change_status(session, actor, instrument, S.AVAILABLE)


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Instrument.status, func.count()).group_by(Instrument.status))
    return {status: count for status, count in rows}


# ---------------------------------------------------------------- types


@dataclass
class TypeDetails:
    name: str
    family: InstrumentFamily
    sizes: list[str] = field(default_factory=list)
    hire_band: str = "A"
    default_accessories: str = ""


def save_type(session: Session, actor, details: TypeDetails, instrument_type: InstrumentType | None = None):
    """Add or change an instrument type; sizes in use cannot be removed."""
    name = details.name.strip()
    if not name:
        raise InvalidInput("Give the type a name.", field="name")
    clash = session.scalar(
        select(InstrumentType.id).where(func.lower(InstrumentType.name) == name.lower())
    )
    if clash is not None and (instrument_type is None or clash != instrument_type.id):
        raise InvalidInput(f"There is already a type called {name}.", field="name")
    sizes = [s.strip() for s in details.sizes if s.strip()]
    if len(set(sizes)) != len(sizes):
        raise InvalidInput("A size is listed twice.", field="sizes")
    if instrument_type is not None:
        used = set(session.scalars(
            select(Instrument.size).where(Instrument.type_id == instrument_type.id).distinct()
        ))
        dropped = used - set(sizes or [""])
        if dropped:
            shown = ", ".join(sorted(size or "no size" for size in dropped))
            raise InvalidInput(f"Instruments of size {shown} exist; keep that size.", field="sizes")
    is_new = instrument_type is None
    if is_new:
        instrument_type = InstrumentType()
        session.add(instrument_type)
    before = {k: getattr(instrument_type, k, None) for k in ("name", "family", "sizes", "hire_band")}
    instrument_type.name = name
    instrument_type.family = details.family
    instrument_type.sizes = sizes
    instrument_type.hire_band = details.hire_band.strip().upper() or "A"
    instrument_type.default_accessories = details.default_accessories.strip()
    session.flush()
    after = {k: getattr(instrument_type, k) for k in before}
    record(session, actor, "type.added" if is_new else "type.edited", instrument_type,
           f"{'Added' if is_new else 'Changed'} type {name}",
           {k: [before[k], after[k]] for k in before if before[k] != after[k]})
    return instrument_type
