"""Every figure the hub reports, defined once: the dashboard, the data return, the asset register, their
exports, the command line and the tests all read them from here.

Figures are aggregates of what the loans, sets, instruments and ledger record, never of a person's details,
so anonymising a family leaves every one of them unchanged: a loan keeps the year group and SEND flag its
pupil had when it was made, and a pupil's school and remission category survive anonymisation.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, exists, extract, func, or_, select
from sqlalchemy.orm import Session

from ..borrowers.models import CLAIMABLE_CATEGORIES, Pupil, RemissionCategory
from ..errors import InvalidInput
from ..inventory.models import (
    CONDITION_GRADES,
    Instrument,
    InstrumentCount,
    InstrumentFamily,
    InstrumentStatus,
    InstrumentType,
    Repair,
)
from ..loans.models import AcademicTerm, Loan, LoanStatus
from ..money.models import EntryKind, LedgerEntry
from ..money.services import remission_given
from ..reservations.models import Reservation, ReservationStatus
from ..sets.models import SetLoan, TakeHome
from ..timeutil import today

ZERO = Decimal("0.00")
# Loans that happened: a pending loan called off before issue never put an instrument in a child's hands.
LENT = (LoanStatus.OPEN, LoanStatus.RETURNED, LoanStatus.EXCHANGED, LoanStatus.LOST)
NOT_KNOWN = "Not known"
HIDDEN = "[c]"  # a count withheld so that a small count beside it cannot be worked out from the total


# ---------------------------------------------------------------- school years


@dataclass(frozen=True, order=True)
class SchoolYear:
    """An academic year, 1 September to 31 August, named as funders do: "2025-26"."""

    start: int

    @classmethod
    def parse(cls, text: str) -> SchoolYear:
        match = re.fullmatch(r"\s*(\d{4})\s*[-/]\s*(\d{2}|\d{4})\s*", text or "")
        if not match:
            raise InvalidInput(f"“{text}” is not a school year: write it as 2025-26.", field="year")
        start, end = int(match[1]), int(match[2][-2:])
        if (start + 1) % 100 != end:
            raise InvalidInput(f"“{text}” is not a school year: the second year follows the first, as in "
                               f"{start}-{(start + 1) % 100:02d}.", field="year")
        if not 2000 <= start <= today().year + 1:
            raise InvalidInput(f"{text} is not a school year the hub could have data for.", field="year")
        return cls(start)

    @classmethod
    def containing(cls, day: date) -> SchoolYear:
        return cls(day.year if day.month >= 9 else day.year - 1)

    @property
    def first(self) -> date:
        return date(self.start, 9, 1)

    @property
    def last(self) -> date:
        return date(self.start + 1, 8, 31)

    @property
    def label(self) -> str:
        return f"{self.start}-{(self.start + 1) % 100:02d}"

    @property
    def previous(self) -> SchoolYear:
        return SchoolYear(self.start - 1)

    def __str__(self) -> str:
        return self.label


def year_label(year_group: int | None) -> str:
    if year_group is None:
        return NOT_KNOWN
    return "Reception" if year_group == 0 else f"Year {year_group}"


YEAR_GROUP_ROWS = [year_label(group) for group in range(14)] + [NOT_KNOWN]


# ---------------------------------------------------------------- small counts hidden


@dataclass
class Table:
    """Counts in rows and columns with their totals, shown with small counts hidden.

    ``shown`` holds what may be published: a count from 1 to ``threshold - 1`` is "<N"; a count of any size
    hidden only so that a small one cannot be worked back from a total is "[c]" (a published "<5" always
    means 1 to 4).
    """

    title: str
    row_heading: str
    columns: list[str]
    rows: list[tuple[str, list[int]]]
    definition: str = ""
    total_label: str = "Total"
    shown: list[list[str]] = field(default_factory=list)  # rows, then the totals row; each with its total

    @property
    def row_totals(self) -> list[int]:
        return [sum(values) for _, values in self.rows]

    @property
    def column_totals(self) -> list[int]:
        return [sum(values[i] for _, values in self.rows) for i in range(len(self.columns))]

    @property
    def grand_total(self) -> int:
        return sum(self.row_totals)

    @property
    def has_totals_column(self) -> bool:
        return len(self.columns) > 1

    def matrix(self) -> list[list[int]]:
        """Every count as published: each row with its total (when there are columns to add up), then the
        totals row."""
        body = [[*values, sum(values)] if self.has_totals_column else list(values) for _, values in self.rows]
        totals = [*self.column_totals, self.grand_total] if self.has_totals_column else self.column_totals
        return [*body, totals]

    def as_rows(self) -> list[list[str]]:
        """The published table, headings included: what the page, the CSV and the workbook show."""
        heading = [self.row_heading, *self.columns] + (["Total"] if self.has_totals_column else [])
        labels = [label for label, _ in self.rows] + [self.total_label]
        return [heading] + [[label, *cells] for label, cells in zip(labels, self.shown, strict=True)]


def suppress(table: Table, threshold: int) -> Table:
    """Fill ``table.shown``: counts from 1 to ``threshold - 1`` hidden, then more hidden until no hidden
    count can be worked back from a row's or a column's total (the smallest other count goes, then the
    total if nothing else can)."""
    matrix = table.matrix()
    height, width = len(matrix), len(matrix[0]) if matrix else 0
    hidden = {(r, c) for r in range(height) for c in range(width) if 0 < matrix[r][c] < threshold}
    relations = []  # each: (the cells that add up, the cell holding their total)
    body_width = width - 1 if table.has_totals_column else width
    if table.has_totals_column:
        relations += [([(r, c) for c in range(body_width)], (r, width - 1)) for r in range(height)]
    relations += [([(r, c) for r in range(height - 1)], (height - 1, c)) for c in range(width)]
    small = set(hidden)  # below the threshold; the rest are hidden only to protect these
    changed = True
    while changed and threshold > 1:
        changed = False
        for members, total in relations:
            cells = [*members, total]
            if sum(cell in hidden for cell in cells) != 1:
                continue
            candidates = sorted((matrix[r][c], (r, c)) for r, c in members if (r, c) not in hidden and matrix[r][c] > 0)
            hidden.add(candidates[0][1] if candidates else total)
            changed = True
    table.shown = [[f"<{threshold}" if (r, c) in small else HIDDEN if (r, c) in hidden else str(matrix[r][c])
                    for c in range(width)] for r in range(height)]
    return table


def check_threshold(value) -> int:
    try:
        threshold = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"“{value}” is not a whole number: counts below it are hidden.", field="threshold") from None
    if threshold < 1:
        raise InvalidInput("The smallest count shown must be 1 or more (1 hides nothing).", field="threshold")
    if threshold > 100:
        raise InvalidInput("A threshold above 100 would hide almost every figure.", field="threshold")
    return threshold


# ---------------------------------------------------------------- who was reached in a year


def _loans_in(first: date, last: date):
    """Condition: a loan that was out at some time from ``first`` to ``last``."""
    return and_(Loan.status.in_(LENT), Loan.started_on <= last, or_(Loan.closed_on.is_(None), Loan.closed_on >= first))


def _set_loans_in(first: date, last: date):
    return and_(SetLoan.started_on <= last, or_(SetLoan.closed_on.is_(None), SetLoan.closed_on >= first))


def _individual(first: date, last: date) -> tuple:
    """Conditions: a pupil's own loan out in the period, not an instrument of a whole-class set nor one taken
    home from a set."""
    return (_loans_in(first, last), Loan.pupil_id.is_not(None), Loan.set_loan_id.is_(None),
            ~exists().where(TakeHome.loan_id == Loan.id))


def first_loans(first: date, last: date):
    """Pupils' own loans out in the period (not the instruments of a whole-class set, nor a set instrument
    taken home), ranked within each pupil so that rank 1 is the pupil's first loan of the period."""
    rank = func.row_number().over(partition_by=Loan.pupil_id, order_by=(Loan.started_on, Loan.id))
    return (select(Pupil.school_id, Loan.pupil_year_group.label("year_group"),
                   Loan.remission_category.label("remission"), Loan.pupil_send.label("send"),
                   InstrumentType.family.label("family"), rank.label("rank"))
            .join(Pupil, Pupil.id == Loan.pupil_id)
            .join(Instrument, Instrument.id == Loan.instrument_id).join(InstrumentType)
            .where(*_individual(first, last))
            .subquery())


@dataclass(frozen=True)
class Learners:
    """Pupils with an individual loan in the period, counted by what their first loan of it records."""

    school_id: int | None
    year_group: int | None
    remission: str
    send: bool
    family: str
    pupils: int


def learners(session: Session, first: date, last: date) -> list[Learners]:
    """One row per school, year group, category, SEND flag and instrument family, with its pupils: counted
    in the database, so that a year of 100,000 loans comes back as a few hundred rows."""
    loans = first_loans(first, last)
    keys = (loans.c.school_id, loans.c.year_group, loans.c.remission, loans.c.send, loans.c.family)
    rows = session.execute(select(*keys, func.count()).where(loans.c.rank == 1).group_by(*keys))
    return [Learners(school_id, year_group, str(remission), bool(send), str(family), count)
            for school_id, year_group, remission, send, family, count in rows]


@dataclass
class ClassSet:
    school_id: int
    pupils: int
    year_group: int | None


def class_sets(session: Session, first: date, last: date) -> list[ClassSet]:
    """Whole-class sets out in the period, with the pupils taught (the instruments when not given)."""
    pupils = func.coalesce(SetLoan.pupils, SetLoan.item_count)
    rows = session.execute(select(SetLoan.school_id, pupils, SetLoan.year_group)
                           .where(_set_loans_in(first, last)))
    return [ClassSet(school_id, pupils, year_group) for school_id, pupils, year_group in rows]


def pupils_reached(session: Session, year: SchoolYear) -> dict[str, int]:
    """Pupils taught with whole-class sets, and pupils with an instrument of their own (each once), in a year:
    the same pupils ``learners`` groups, counted without grouping them."""
    individual = session.scalar(select(func.count(Loan.pupil_id.distinct()))
                                .where(*_individual(year.first, year.last)))
    return {"wcet": sum(s.pupils for s in class_sets(session, year.first, year.last)), "individual": individual}


# ---------------------------------------------------------------- the data return


@dataclass
class DataReturn:
    year: SchoolYear
    threshold: int
    schools: list[tuple[str, int]]
    tables: list[Table]

    @property
    def is_empty(self) -> bool:
        return not any(count for _, count in self.schools)

    def figures(self) -> dict:
        """Everything the return says, as published (hidden counts stay hidden): what a snapshot keeps."""
        return {"year": self.year.label, "threshold": self.threshold, "schools": [list(row) for row in self.schools],
                "tables": [{"title": t.title, "definition": t.definition, "rows": t.as_rows()} for t in self.tables]}


DEFINITIONS = [
    ("School year", "1 September to 31 August. A loan or a set counts in a year if it was out on any day of it."),
    ("Schools reached through sets", "Schools that had a whole-class (WCET) set out during the year."),
    ("Schools reached through individual loans", "Schools of pupils who had an instrument of their own on loan."),
    ("WCET pupils", "The class size given when a set was lent (the number of instruments when none was given), "
                    "summed over the sets out during the year, by the year group given for the class."),
    ("Pupils with individual loans", "Each pupil once, described by their first loan of the year: the year group "
                                     "and circumstances recorded when that loan was made, and its instrument's "
                                     "family."),
    ("Continuation", "Pupils with an individual loan in the year whose school had a WCET set the year before."),
    ("Circumstances", "The remission category the loan was priced with (free school meals, pupil premium, looked "
                      "after...) and the SEND flag the pupil had when it was made."),
    ("Small counts", "A count from 1 to one below the threshold is shown as “<threshold” (“<5”: 1 to 4). A count of "
                     "any size shown as “[c]” is withheld so that a small count beside it cannot be worked out "
                     "from the total. Counts of schools are not hidden."),
]


def data_return(session: Session, year: SchoolYear, threshold: int = 5) -> DataReturn:
    sets = class_sets(session, year.first, year.last)
    groups = learners(session, year.first, year.last)
    set_schools = {s.school_id for s in sets}
    loan_schools = {g.school_id for g in groups if g.school_id is not None}
    schools = [("Schools reached through sets", len(set_schools)),
               ("Schools reached through individual loans", len(loan_schools)),
               ("Schools reached in all", len(set_schools | loan_schools))]

    wcet = Counter()
    for s in sets:
        wcet[year_label(s.year_group)] += s.pupils
    wcet_table = Table("WCET pupils by year group", "Year group", ["Pupils"],
                       [(row, [wcet[row]]) for row in YEAR_GROUP_ROWS if wcet[row]],
                       definition=dict(DEFINITIONS)["WCET pupils"])

    families = [family for family in InstrumentFamily]
    by_year_family: dict[str, Counter] = defaultdict(Counter)
    for group in groups:
        by_year_family[year_label(group.year_group)][group.family] += group.pupils
    used_families = [f for f in families if any(by_year_family[row][f.value] for row in by_year_family)]
    individual_table = Table("Pupils with individual loans, by year group and instrument family", "Year group",
                             [f.label for f in used_families],
                             [(row, [by_year_family[row][f.value] for f in used_families])
                              for row in YEAR_GROUP_ROWS if row in by_year_family],
                             definition=dict(DEFINITIONS)["Pupils with individual loans"])

    before = {s.school_id for s in class_sets(session, year.previous.first, year.previous.last)}
    continuing = sum(g.pupils for g in groups if g.school_id in before)
    continuation_table = Table("Continuation after WCET", "Pupils", ["Pupils"],
                               [("Individual loan this year, school had a WCET set the year before", [continuing])],
                               definition=dict(DEFINITIONS)["Continuation"], total_label="All")

    categories = Counter()
    send = Counter()
    for group in groups:
        categories[group.remission] += group.pupils
        send[group.send] += group.pupils
    circumstances_table = Table("Pupils with individual loans, by circumstances", "Remission category", ["Pupils"],
                                [(c.label, [categories[c.value]])
                                 for c in (*CLAIMABLE_CATEGORIES, RemissionCategory.NONE)],
                                definition=dict(DEFINITIONS)["Circumstances"])
    send_table = Table("Pupils with individual loans, by SEND", "SEND", ["Pupils"],
                       [("SEND", [send[True]]), ("No SEND recorded", [send[False]])],
                       definition=dict(DEFINITIONS)["Circumstances"])
    tables = [suppress(t, threshold) for t in
              (wcet_table, individual_table, continuation_table, circumstances_table, send_table)]
    return DataReturn(year, threshold, schools, tables)


def years_with_data(session: Session) -> list[SchoolYear]:
    """The school years from the first loan or set to this one, newest first: what a report may be asked for."""
    first = session.scalar(select(func.min(Loan.started_on)))
    first_set = session.scalar(select(func.min(SetLoan.started_on)))
    earliest = min([d for d in (first, first_set) if d is not None], default=today())
    now = SchoolYear.containing(today())
    return [SchoolYear(start) for start in range(now.start, SchoolYear.containing(earliest).start - 1, -1)]


# ---------------------------------------------------------------- the capital-grant asset register


@dataclass
class RegisterFilters:
    funding: str = ""
    year: SchoolYear | None = None  # purchased in


def register_query(filters: RegisterFilters):
    query = select(Instrument).order_by(Instrument.asset_tag)
    if filters.funding:
        query = query.where(Instrument.funding_source == filters.funding)
    if filters.year is not None:
        query = query.where(Instrument.purchased_on.between(filters.year.first, filters.year.last))
    return query


def funding_sources(session: Session) -> list[str]:
    return list(session.scalars(select(Instrument.funding_source).where(Instrument.funding_source != "")
                                .group_by(Instrument.funding_source).order_by(Instrument.funding_source)))


@dataclass
class RegisterTotal:
    funding: str
    year: str
    instruments: int
    cost: Decimal
    disposed: int
    proceeds: Decimal
    below_threshold: int


def purchase_year(column):
    """The school year a date falls in, as its first calendar year (2024 for 2024-25), in SQL."""
    year = extract("year", column)
    return case((extract("month", column) >= 9, year), else_=year - 1)


def register_totals(session: Session, filters: RegisterFilters, capitalisation: Decimal) -> list[RegisterTotal]:
    """Instruments, net cost, disposals and proceeds by funding source and the school year of purchase,
    added up in the database."""
    register = register_query(filters).order_by(None).subquery()
    bought = purchase_year(register.c.purchased_on).label("bought")
    rows = session.execute(
        select(register.c.funding_source, bought, func.count(), func.sum(register.c.purchase_cost),
               func.count(register.c.disposed_on), func.sum(register.c.disposal_proceeds),
               func.sum(case((register.c.purchase_cost < capitalisation, 1), else_=0)))
        .group_by(register.c.funding_source, bought))
    totals = [RegisterTotal(funding or "Not recorded", SchoolYear(int(start)).label if start is not None else NOT_KNOWN,
                            count, Decimal(cost or ZERO), disposed, Decimal(proceeds or ZERO), int(below or 0))
              for funding, start, count, cost, disposed, proceeds, below in rows]
    return sorted(totals, key=lambda t: (t.funding, t.year))


REGISTER_COLUMNS = ["Asset tag", "Description", "Make", "Model", "Serial number", "Funding source", "Purchase date",
                    "Net cost", "Below capitalisation threshold", "Location", "Condition", "Status",
                    "Last counted", "Disposal date", "Disposal reason", "Disposal proceeds"]


def last_counted(session: Session, instruments: list[Instrument]) -> dict[int, date]:
    """When each instrument was last found in a stocktake (none until the hub counts its stock)."""
    ids = [i.id for i in instruments]
    return dict(session.execute(select(InstrumentCount.instrument_id, InstrumentCount.last_counted_on)
                                .where(InstrumentCount.instrument_id.in_(ids))).all()) if ids else {}


def register_rows(session: Session, instruments: list[Instrument], capitalisation: Decimal):
    counted = last_counted(session, instruments)
    for i in instruments:
        written_off = i.status is InstrumentStatus.WRITTEN_OFF
        yield [i.asset_tag, i.description, i.make, i.model, i.serial_number, i.funding_source, i.purchased_on,
               i.purchase_cost, "Yes" if i.purchase_cost is not None and i.purchase_cost < capitalisation else "",
               i.location, CONDITION_GRADES[i.condition_grade], i.status.label, counted.get(i.id),
               i.disposed_on, i.status_reason if written_off else "", i.disposal_proceeds]


def register_batches(session: Session, filters: RegisterFilters, size: int = 1000):
    """The register's instruments, a batch at a time in tag order, so that 100,000 fit in little memory."""
    after = ""
    while True:
        batch = list(session.scalars(register_query(filters).where(Instrument.asset_tag > after).limit(size)))
        if not batch:
            return
        yield batch
        after = batch[-1].asset_tag
        session.expunge_all()


# ---------------------------------------------------------------- the dashboard


@dataclass
class Dashboard:
    today: date
    year: SchoolYear
    term: AcademicTerm | None
    by_status: list[tuple[str, int]]
    by_condition: list[tuple[str, int]]
    stock: int
    out: int
    idle: int
    pupils: dict[str, int]
    waiting: list[tuple[str, int, int, int]]  # type and size, waiting, free, to buy
    overdue: int
    overdue_value: Decimal
    money: dict[str, Decimal]
    repair_cost: Decimal
    loans_by_term: list[tuple[str, int, int]]  # term, individual loans started, sets lent
    pupils_by_year: list[tuple[str, int, int]]  # year, WCET pupils, pupils with individual loans

    @property
    def utilisation(self) -> int:
        return round(100 * self.out / self.stock) if self.stock else 0


def current_term(session: Session, on: date) -> AcademicTerm | None:
    """The term on ``on``, or the last one before it (in a holiday)."""
    return session.scalar(select(AcademicTerm).where(AcademicTerm.starts_on <= on)
                          .order_by(AcademicTerm.starts_on.desc()).limit(1))


def money_this_term(session: Session, term: AcademicTerm | None) -> dict[str, Decimal]:
    if term is None:
        return dict.fromkeys(("invoiced", "paid", "outstanding", "remission"), ZERO)
    invoiced = session.scalar(select(func.sum(LedgerEntry.amount))
                              .where(LedgerEntry.kind == EntryKind.INVOICE, LedgerEntry.term_id == term.id))
    paid = session.scalar(select(func.sum(LedgerEntry.amount))
                          .where(LedgerEntry.kind == EntryKind.PAYMENT,
                                 LedgerEntry.posted_on.between(term.starts_on, term.ends_on)))
    balances = select(func.sum(LedgerEntry.amount).label("balance")).group_by(LedgerEntry.account_id).subquery()
    outstanding = session.scalar(select(func.sum(balances.c.balance)).where(balances.c.balance > 0))
    remission = sum((amount for name, _, amount in remission_given(session) if name == term.name), ZERO)
    return {"invoiced": Decimal(invoiced or ZERO), "paid": -Decimal(paid or ZERO),
            "outstanding": Decimal(outstanding or ZERO), "remission": Decimal(remission)}


def dashboard(session: Session, on: date | None = None) -> Dashboard:
    on = on or today()
    year = SchoolYear.containing(on)
    term = current_term(session, on)
    statuses = dict(session.execute(select(Instrument.status, func.count()).group_by(Instrument.status)).all())
    by_status = [(s.label, statuses.get(s, 0)) for s in InstrumentStatus]
    grades = dict(session.execute(select(Instrument.condition_grade, func.count())
                                  .where(Instrument.status != InstrumentStatus.WRITTEN_OFF)
                                  .group_by(Instrument.condition_grade)).all())
    by_condition = [(label, grades.get(grade, 0)) for grade, label in CONDITION_GRADES.items()]
    stock = sum(n for s, n in statuses.items() if s is not InstrumentStatus.WRITTEN_OFF)
    year_ago = on - timedelta(days=365)
    idle = session.scalar(select(func.count()).select_from(Instrument).where(
        Instrument.status == InstrumentStatus.AVAILABLE, Instrument.created_at <= datetime.combine(year_ago, time()),
        # Lent at any time in the year: still out, or back since (a loan closes after it starts).
        Instrument.id.not_in(select(Loan.instrument_id)
                             .where(or_(Loan.closed_on.is_(None), Loan.closed_on >= year_ago)))))

    waiting = dict(((t, s), n) for t, s, n in session.execute(
        select(InstrumentType.name, Reservation.size, func.count()).join(Reservation.instrument_type)
        .where(Reservation.status == ReservationStatus.WAITING)
        .group_by(InstrumentType.name, Reservation.size)))
    free = dict(((t, s), n) for t, s, n in session.execute(
        select(InstrumentType.name, Instrument.size, func.count()).join(Instrument.type)
        .where(Instrument.status == InstrumentStatus.AVAILABLE).group_by(InstrumentType.name, Instrument.size)))
    waiting_rows = [(f"{name} {size}".strip(), n, free.get((name, size), 0), max(0, n - free.get((name, size), 0)))
                    for (name, size), n in sorted(waiting.items())]

    overdue_query = (select(func.count(), func.sum(Instrument.replacement_value))
                     .select_from(Loan).join(Loan.instrument)
                     .where(Loan.status == LoanStatus.OPEN, Loan.due_on < on))
    overdue, overdue_value = session.execute(overdue_query).one()
    repair_cost = session.scalar(select(func.sum(Repair.actual_cost))
                                 .where(Repair.returned_on.between(year.first, year.last)))

    terms = list(session.scalars(select(AcademicTerm).where(AcademicTerm.starts_on <= on)
                                 .order_by(AcademicTerm.starts_on.desc()).limit(6)))[::-1]
    loans_by_term = []
    for t in terms:
        started = session.scalar(select(func.count()).select_from(Loan).where(
            Loan.status.in_(LENT), Loan.set_loan_id.is_(None), Loan.started_on.between(t.starts_on, t.ends_on)))
        sets = session.scalar(select(func.count()).select_from(SetLoan)
                              .where(SetLoan.started_on.between(t.starts_on, t.ends_on)))
        loans_by_term.append((t.name, started, sets))
    reached = {start: pupils_reached(session, SchoolYear(start)) for start in range(year.start - 2, year.start + 1)}
    pupils_by_year = [(SchoolYear(start).label, n["wcet"], n["individual"]) for start, n in reached.items()]

    return Dashboard(
        today=on, year=year, term=term, by_status=by_status, by_condition=by_condition, stock=stock,
        out=statuses.get(InstrumentStatus.ON_LOAN, 0), idle=idle or 0, pupils=reached[year.start],
        waiting=waiting_rows, overdue=overdue or 0, overdue_value=Decimal(overdue_value or ZERO),
        money=money_this_term(session, term), repair_cost=Decimal(repair_cost or ZERO),
        loans_by_term=loans_by_term, pupils_by_year=pupils_by_year)
