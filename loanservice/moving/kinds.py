"""The kinds of import a hub runs when it moves in, each a declaration for ``csvimport``, in the order to run them.

Rows name each other by natural keys (a school's URN, a family's email, an instrument's asset tag),
never by database ids. Rows are written in bulk (one INSERT per table, an audit event per row), so
a file of 10,000 rows takes seconds; the database's constraints (one open loan per instrument,
unique URNs) still decide any race, and a broken one rolls the whole file back.
"""
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import JSON, DateTime, Integer, String, and_, bindparam, cast, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..accounts.models import Role, User
from ..accounts.services import INVITABLE_ROLES, invite_user
from ..audit.models import AuditEvent
from ..borrowers.models import Family, OtherBorrower, Pupil, RemissionCategory
from ..csvimport import (
    ImportKind,
    RowProblem,
    a_date,
    collect,
    email,
    money,
    text,
    whole,
    yes_no,
)
from ..errors import InvalidInput
from ..inventory.models import CONDITION_GRADES, Instrument, InstrumentStatus
from ..inventory.tags import normalise_tag
from ..loans.models import Loan, LoanStatus
from ..schools.models import School
from ..schools.services import tidy_address
from ..sets.models import ClassroomSetItem
from ..timeutil import today, utcnow


def _bulk_insert(session: Session, model, rows: list[dict]):
    """Insert ``rows`` with one executemany; return a condition that picks exactly them.

    They share one ``created_at`` stamp and come after the highest id before them (rows another
    transaction is writing are not visible to this one's statements), so the audit events can be
    written from them with one INSERT ... SELECT, with no ids read back row by row.
    """
    before = session.scalar(select(func.max(model.id))) or 0
    stamp = utcnow()
    for row in rows:
        row["created_at"] = stamp
    if rows:
        session.execute(insert(model.__table__), rows)
    return and_(model.id > before, model.created_at == stamp)


def _audit_inserted(session: Session, actor, action: str, model, summary, where, *, entity_id=None,
                    instrument_id=None) -> None:
    """One audit event for each row of ``model`` that ``where`` picks (``summary`` is an SQL expression)."""
    columns = ["at", "actor_id", "action", "entity_type", "entity_id", "instrument_id", "summary", "changes"]
    session.execute(insert(AuditEvent.__table__).from_select(columns, select(
        literal(utcnow(), DateTime()), literal(getattr(actor, "id", None), Integer()), literal(action),
        literal(model.__tablename__ if entity_id is None else "instrument"),
        model.id if entity_id is None else entity_id,
        instrument_id if instrument_id is not None else literal(None, Integer()),
        summary, literal({"imported": True}, JSON()),
    ).select_from(model).where(where)))


def _id_text(column):
    return cast(column, String)


def _integrity(error: IntegrityError, what: str) -> InvalidInput:
    return InvalidInput(f"Someone else changed the same {what} while this file was being imported: "
                        "nothing was imported. Check the file again.")


# ---------------------------------------------------------------- schools


@dataclass
class SchoolRow:
    name: str
    urn: str
    address: str
    contact_name: str
    contact_email: str
    phone: str
    line: int = 0


def _schools_context(session: Session, records: list[dict]) -> dict:
    rows = session.execute(select(School.name, School.urn)).all()
    return {"names": {name.lower() for name, _ in rows}, "urns": {urn for _, urn in rows if urn}}


def _school_row(context: dict, values: dict) -> SchoolRow:
    def urn():
        value = text(values, "urn", required=True, label="URN")
        if not value.isdigit() or not 5 <= len(value) <= 8:
            raise RowProblem("urn", f"URN {value!r} is not a school's Unique Reference Number (6 digits).")
        if value in context["urns"]:
            raise RowProblem("urn", f"A school with URN {value} is already recorded.")
        return value

    def name():
        value = text(values, "name", required=True, label="The school's name")
        if value.lower() in context["names"]:
            raise RowProblem("name", f"There is already a school called {value}.")
        return value

    name_, urn_, contact_email, *_ = collect(
        name, urn, lambda: email(values, "contact_email"),
        lambda: text(values, "contact_name"), lambda: text(values, "phone", max_length=40),
        lambda: text(values, "address", max_length=500))
    return SchoolRow(name_, urn_, tidy_address(values.get("address", "").replace(";", "\n")),
                     values.get("contact_name", ""), contact_email, values.get("phone", ""))


def _apply_schools(session: Session, actor, rows: list[SchoolRow]) -> int:
    added = _bulk_insert(session, School, [
        dict(name=r.name, urn=r.urn, address=r.address, contact_name=r.contact_name,
             contact_email=r.contact_email, phone=r.phone) for r in rows])
    _audit_inserted(session, actor, "school.added", School, literal("Added school (import): ") + School.name, added)
    return len(rows)


SCHOOLS = ImportKind(
    name="schools", noun="school", plural="schools",
    columns=["name", "urn", "address", "contact_name", "contact_email", "phone"],
    required={"name", "urn"},
    example={"name": "Hillside Primary School", "urn": "123456", "address": "1 Hill Road; Exampleton EX1 1AA",
             "contact_name": "Ms A Teacher", "contact_email": "music@hillside.sch.uk", "phone": "01234 111222"},
    help="One school a row. The URN (from Get Information about Schools) is how the pupils file names the school. "
         "Separate address lines with a semicolon.",
    prepare=_schools_context, parse_row=_school_row, apply=_apply_schools,
    key=lambda r: r.urn, key_column="urn",
    preview=[("Name", "name"), ("URN", "urn"), ("Contact", "contact_name"), ("Email", "contact_email")],
)


# ---------------------------------------------------------------- families


@dataclass
class FamilyRow:
    name: str
    email: str
    phone: str
    address: str
    line: int = 0


def _families_named(session: Session, emails: list[str]) -> dict[str, int]:
    """The ids of the families with these emails (lower case), looked up a thousand at a time."""
    emails = sorted(set(emails))
    found: dict[str, int] = {}
    for start in range(0, len(emails), 1000):
        found.update(session.execute(select(func.lower(Family.email), Family.id)
                                     .where(Family.email.in_(emails[start:start + 1000]))).all())
    return found


def _families_context(session: Session, records: list[dict]) -> dict:
    return {"emails": set(_families_named(session, [values.get("email", "").lower() for values in records]))}


def _family_row(context: dict, values: dict) -> FamilyRow:
    def address():
        return tidy_address(text(values, "address", max_length=500).replace(";", "\n"))

    def the_email():
        value = email(values, "email", required=True)
        if value in context["emails"]:
            raise RowProblem("email", f"A family with the email {value} is already recorded.")
        return value

    name, email_, phone, address_ = collect(
        lambda: text(values, "hirer", required=True, label="The hirer's name"), the_email,
        lambda: text(values, "phone", max_length=40), address)
    return FamilyRow(name, email_, phone, address_)


def _apply_families(session: Session, actor, rows: list[FamilyRow]) -> int:
    added = _bulk_insert(session, Family, [
        dict(name=r.name, email=r.email, phone=r.phone, address=r.address) for r in rows])
    # No names in the append-only trail: they must be erasable at the end of retention.
    _audit_inserted(session, actor, "family.added", Family,
                    literal("Added family #") + _id_text(Family.id) + literal(" (import)"), added)
    return len(rows)


FAMILIES = ImportKind(
    name="families", noun="family", plural="families",
    columns=["hirer", "email", "phone", "address"],
    required={"hirer", "email"},
    example={"hirer": "Sam Parent", "email": "sam.parent@example.com", "phone": "07700 900123",
             "address": "2 Elm Street; Exampleton EX1 2BB"},
    help="One family a row: the hirer is the parent or carer who signs. The email is how the pupils and loans "
         "files name the family.",
    prepare=_families_context, parse_row=_family_row, apply=_apply_families,
    key=lambda r: r.email, key_column="email",
    preview=[("Hirer", "name"), ("Email", "email"), ("Phone", "phone")],
)


# ---------------------------------------------------------------- pupils


@dataclass
class PupilRow:
    name: str
    family_id: int
    family_email: str
    school_id: int | None
    school_name: str
    year_group: int | None
    remission_category: RemissionCategory
    remission_verified_on: date | None
    send: bool
    line: int = 0

    @property
    def remission_label(self) -> str:
        return self.remission_category.label


_CATEGORIES = {c.value: c for c in RemissionCategory} | {c.label.lower(): c for c in RemissionCategory} | {
    "fsm": RemissionCategory.FREE_SCHOOL_MEALS, "pp": RemissionCategory.PUPIL_PREMIUM,
    "lac": RemissionCategory.LOOKED_AFTER, "": RemissionCategory.NONE}


def remission_category(values: dict, column: str = "remission_category") -> RemissionCategory:
    value = values.get(column, "").strip().lower()
    category = _CATEGORIES.get(value) or _CATEGORIES.get(value.replace(" ", "_"))
    if category is None:
        raise RowProblem(column, f"Unknown remission category {values.get(column)!r}: use one of "
                                 f"{', '.join(c.value for c in RemissionCategory)}.")
    return category


def _pupils_context(session: Session, records: list[dict]) -> dict:
    families = _families_named(session, [values.get("family_email", "").lower() for values in records])
    schools = {urn: (id_, name) for id_, urn, name in session.execute(select(School.id, School.urn, School.name))
               if urn}
    family_ids = sorted(families.values())
    pupils = set()
    for start in range(0, len(family_ids), 1000):
        pupils.update((family_id, name.lower()) for family_id, name in session.execute(
            select(Pupil.family_id, Pupil.name).where(Pupil.family_id.in_(family_ids[start:start + 1000]))))
    return {"families": families, "schools": schools, "pupils": pupils}


def _pupil_row(context: dict, values: dict) -> PupilRow:
    def family():
        value = email(values, "family_email", required=True)
        family_id = context["families"].get(value)
        if family_id is None:
            raise RowProblem("family_email", f"No family has the email {value}: import the families first.")
        return value, family_id

    def school():
        urn = values.get("school_urn", "")
        if not urn:
            return None, ""
        if urn not in context["schools"]:
            raise RowProblem("school_urn", f"No school has the URN {urn}: import the schools first.")
        return context["schools"][urn]

    def verified():
        value = a_date(values, "remission_verified_on")
        if value and value > today():
            raise RowProblem("remission_verified_on", "The verification date is in the future.")
        return value

    name, (family_email, family_id), (school_id, school_name), year, category, verified_on, send = (
        collect(lambda: text(values, "name", required=True, label="The pupil's name"),
                family, school,
                lambda: whole(values, "year_group", 0, 13, words={"reception": 0, "r": 0}),
                lambda: remission_category(values), verified, lambda: yes_no(values, "send")))
    if category is not RemissionCategory.NONE and verified_on is None:
        raise RowProblem("remission_verified_on", f"{category.label} needs the date eligibility was verified.")
    if (family_id, name.lower()) in context["pupils"]:
        raise RowProblem("name", f"{name} is already recorded in the family {family_email}.")
    return PupilRow(name, family_id, family_email, school_id, school_name, year, category,
                    verified_on if category is not RemissionCategory.NONE else None, send)


def _apply_pupils(session: Session, actor, rows: list[PupilRow]) -> int:
    added = _bulk_insert(session, Pupil, [
        dict(name=r.name, family_id=r.family_id, school_id=r.school_id, year_group=r.year_group,
             remission_category=r.remission_category, remission_verified_on=r.remission_verified_on,
             send=r.send) for r in rows])
    _audit_inserted(session, actor, "pupil.added", Pupil,
                    literal("Added pupil #") + _id_text(Pupil.id) + literal(" to family #")
                    + _id_text(Pupil.family_id) + literal(" (import)"), added)
    return len(rows)


PUPILS = ImportKind(
    name="pupils", noun="pupil", plural="pupils",
    columns=["name", "family_email", "school_urn", "year_group", "remission_category", "remission_verified_on",
             "send"],
    required={"name", "family_email"},
    example={"name": "Alex Parent", "family_email": "sam.parent@example.com", "school_urn": "123456",
             "year_group": "5", "remission_category": "free_school_meals", "remission_verified_on": "2026-09-01",
             "send": "no"},
    help="One pupil a row, in a family from the families file (by its email) and at a school from the schools "
         "file (by its URN). Year group 0 (Reception) to 13. Remission category: "
         + ", ".join(c.value for c in RemissionCategory)
         + ", with the date eligibility was verified. SEND: yes or no (optional).",
    prepare=_pupils_context, parse_row=_pupil_row, apply=_apply_pupils,
    key=lambda r: (r.family_id, r.name.lower()), key_column="name",
    preview=[("Pupil", "name"), ("Family", "family_email"), ("School", "school_name"), ("Year", "year_group"),
             ("Remission", "remission_label")],
)


# ---------------------------------------------------------------- other borrowers


@dataclass
class OtherRow:
    name: str
    description: str
    email: str
    phone: str
    line: int = 0


def _others_context(session: Session, records: list[dict]) -> dict:
    return {"names": set(session.scalars(select(func.lower(OtherBorrower.name))))}


def _other_row(context: dict, values: dict) -> OtherRow:
    def name():
        value = text(values, "name", required=True, label="The name")
        if value.lower() in context["names"]:
            raise RowProblem("name", f"{value} is already recorded as a borrower.")
        return value

    name_, description, email_, phone = collect(
        name, lambda: text(values, "description"), lambda: email(values, "email"),
        lambda: text(values, "phone", max_length=40))
    return OtherRow(name_, description, email_, phone)


def _apply_others(session: Session, actor, rows: list[OtherRow]) -> int:
    added = _bulk_insert(session, OtherBorrower, [
        dict(name=r.name, description=r.description, email=r.email, phone=r.phone) for r in rows])
    _audit_inserted(session, actor, "other_borrower.added", OtherBorrower,
                    literal("Added (import): ") + OtherBorrower.name, added)
    return len(rows)


OTHERS = ImportKind(
    name="others", noun="other borrower", plural="other borrowers",
    columns=["name", "description", "email", "phone"],
    required={"name"},
    example={"name": "County Youth Orchestra", "description": "Youth orchestra", "email": "cyo@example.org",
             "phone": "01234 333444"},
    help="Ensembles, teachers and partner organisations, one a row; the description says which "
         "(e.g. Youth orchestra, Peripatetic teacher). The name is how the loans file names them.",
    prepare=_others_context, parse_row=_other_row, apply=_apply_others,
    key=lambda r: r.name.lower(), key_column="name",
    preview=[("Name", "name"), ("Description", "description"), ("Email", "email")],
)


# ---------------------------------------------------------------- running loans


@dataclass
class LoanRow:
    asset_tag: str
    instrument_id: int
    borrower_type: str
    borrower_id: int
    borrower_label: str
    started_on: date
    due_on: date
    fee_per_term: Decimal
    remission_category: RemissionCategory
    charge_per_term: Decimal
    deposit: Decimal
    condition: int
    accessories: str
    grade_before: int = 0
    line: int = 0


BORROWER_TYPES = {"pupil": "pupil_id", "family": "family_id", "school": "school_id", "other": "other_borrower_id"}


def _loans_context(session: Session, records: list[dict]) -> dict:
    tags = sorted({normalise_tag(values.get("asset_tag", "")) for values in records})
    instruments = {}
    for start in range(0, len(tags), 1000):  # only the instruments the file names
        instruments.update({tag: (id_, status, grade, accessories) for id_, tag, status, grade, accessories in
                            session.execute(select(Instrument.id, Instrument.asset_tag, Instrument.status,
                                                   Instrument.condition_grade, Instrument.accessories)
                                            .where(Instrument.asset_tag.in_(tags[start:start + 1000])))})
    emails = sorted({values.get("borrower", "").lower() for values in records
                     if values.get("borrower_type", "").lower() in ("pupil", "family")})
    families, pupils = _families_named(session, emails), {}  # only the families the file names, and their children
    family_ids = sorted(families.values())
    for start in range(0, len(family_ids), 1000):
        pupils.update({(family_id, name.lower()): (id_, category) for id_, family_id, name, category in
                       session.execute(select(Pupil.id, Pupil.family_id, Pupil.name, Pupil.remission_category)
                                       .where(Pupil.family_id.in_(family_ids[start:start + 1000])))})
    schools = {urn: id_ for id_, urn in session.execute(select(School.id, School.urn)) if urn}
    others = {}
    for id_, name, email_ in session.execute(select(OtherBorrower.id, OtherBorrower.name, OtherBorrower.email)):
        others[name.lower()] = id_
        if email_:
            others.setdefault(email_.lower(), id_)
    ids = [found[0] for found in instruments.values()]
    in_sets = set()
    for start in range(0, len(ids), 1000):
        in_sets.update(session.scalars(select(ClassroomSetItem.instrument_id)
                                       .where(ClassroomSetItem.instrument_id.in_(ids[start:start + 1000]))))
    return {"instruments": instruments, "families": families, "pupils": pupils, "schools": schools,
            "others": others, "in_sets": in_sets, "today": today()}


def _borrower(context: dict, values: dict) -> tuple[str, int, str]:
    kind = values.get("borrower_type", "").lower()
    key = values.get("borrower", "")
    if kind not in BORROWER_TYPES:
        raise RowProblem("borrower_type", f"borrower_type must be one of {', '.join(BORROWER_TYPES)}, "
                                          f"not {values.get('borrower_type')!r}.")
    if not key:
        raise RowProblem("borrower", "borrower is empty: a family's email, a school's URN or another "
                                     "borrower's name.")
    if kind in ("pupil", "family"):
        family_id = context["families"].get(key.lower())
        if family_id is None:
            raise RowProblem("borrower", f"No family has the email {key}: import the families first.")
        if kind == "family":
            return kind, family_id, key.lower()
        pupil_name = values.get("pupil", "")
        if not pupil_name:
            raise RowProblem("pupil", "A loan to a pupil names the pupil (and the family's email as borrower).")
        found = context["pupils"].get((family_id, pupil_name.lower()))
        if found is None:
            raise RowProblem("pupil", f"The family {key} has no pupil called {pupil_name}: import the pupils first.")
        return kind, found[0], f"{pupil_name} ({key.lower()})"
    if kind == "school":
        if key not in context["schools"]:
            raise RowProblem("borrower", f"No school has the URN {key}: import the schools first.")
        return kind, context["schools"][key], f"URN {key}"
    if key.lower() not in context["others"]:
        raise RowProblem("borrower", f"No other borrower is called {key}: import the other borrowers first.")
    return kind, context["others"][key.lower()], key


def _loan_row(context: dict, values: dict) -> LoanRow:
    def instrument():
        tag = normalise_tag(text(values, "asset_tag", required=True, label="The asset tag"))
        found = context["instruments"].get(tag)
        if found is None:
            raise RowProblem("asset_tag", f"No instrument has the tag {tag}: import the instruments first.")
        if found[1] is InstrumentStatus.ON_LOAN or found[1] is InstrumentStatus.AWAITING_AGREEMENT:
            raise RowProblem("asset_tag", f"{tag} is already out on loan.")
        if found[1] is not InstrumentStatus.AVAILABLE:
            raise RowProblem("asset_tag", f"{tag} is {found[1].label.lower()}, so it cannot be out on loan.")
        if found[0] in context["in_sets"]:
            raise RowProblem("asset_tag", f"{tag} belongs to a classroom set: sets are lent as sets.")
        return tag, found

    def started():
        value = a_date(values, "started_on", required=True)
        if value > context["today"]:
            raise RowProblem("started_on", "The start date is in the future: a running loan has started.")
        return value

    def condition():
        return whole(values, "condition", min(CONDITION_GRADES), max(CONDITION_GRADES))

    (tag, found), borrower, started_on, due_on, fee, category, charge, deposit, grade = collect(
        instrument, lambda: _borrower(context, values), started, lambda: a_date(values, "due_on", required=True),
        lambda: money(values, "fee_per_term"), lambda: remission_category(values),
        lambda: money(values, "charge_per_term"), lambda: money(values, "deposit"), condition)
    if due_on < started_on:
        raise RowProblem("due_on", "The due date is before the start date.")
    fee = fee or Decimal("0.00")
    if charge is None:
        charge = Decimal("0.00") if category is not RemissionCategory.NONE else fee
    if charge > fee:
        raise RowProblem("charge_per_term", f"The charge per term (£{charge}) is more than the fee (£{fee}).")
    kind, borrower_id, label = borrower
    if kind != "pupil" and category is not RemissionCategory.NONE:
        raise RowProblem("remission_category", "Remission applies to a pupil's loan only.")
    return LoanRow(tag, found[0], kind, borrower_id, label, started_on, due_on, fee, category, charge,
                   deposit or Decimal("0.00"), grade or found[2], values.get("accessories") or found[3], found[2])


def _apply_loans(session: Session, actor, rows: list[LoanRow]) -> int:
    actor_id = getattr(actor, "id", None)
    now = utcnow()
    table = Instrument.__table__
    try:
        # Only instruments still in the store: one taken meanwhile leaves fewer rows changed, and the lot goes back.
        changed = 0
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            changed += session.execute(
                update(table).where(table.c.id.in_([r.instrument_id for r in chunk]),
                                    table.c.status == InstrumentStatus.AVAILABLE)
                .values(status=InstrumentStatus.ON_LOAN, status_reason="on loan when the hub moved in",
                        updated_at=now)).rowcount
        if changed != len(rows):
            taken = session.scalars(select(Instrument.asset_tag).where(
                Instrument.id.in_([r.instrument_id for r in rows]),
                Instrument.status != InstrumentStatus.AVAILABLE).limit(5)).all()
            raise InvalidInput(f"{', '.join(taken) or 'Some instruments'}: lent or moved while the file was being "
                               "imported, so nothing was imported. Check the file again.")
        regraded = [{"b_id": r.instrument_id, "b_grade": r.condition} for r in rows if r.condition != r.grade_before]
        if regraded:
            session.execute(update(table).where(table.c.id == bindparam("b_id"))
                            .values(condition_grade=bindparam("b_grade")), regraded)
        added = _bulk_insert(session, Loan, [
            {"instrument_id": r.instrument_id, "pupil_id": None, "family_id": None, "school_id": None,
             "other_borrower_id": None, BORROWER_TYPES[r.borrower_type]: r.borrower_id,
             "status": LoanStatus.OPEN, "started_on": r.started_on, "due_on": r.due_on,
             "accessories": r.accessories, "condition_at_issue": r.condition, "fee_per_term": r.fee_per_term,
             "remission_category": r.remission_category, "charge_per_term": r.charge_per_term,
             "deposit": r.deposit, "issued_by_id": actor_id}
            for r in rows])
    except IntegrityError as error:
        raise _integrity(error, "instruments") from error
    _audit_inserted(session, actor, "loan.out", Loan,
                    literal("Lent (on loan when the hub moved in), loan #") + _id_text(Loan.id), added,
                    instrument_id=Loan.instrument_id)
    _audit_inserted(session, actor, "instrument.status", Loan,
                    literal("Available → On loan: on loan when the hub moved in"), added,
                    entity_id=Loan.instrument_id, instrument_id=Loan.instrument_id)
    return len(rows)


LOANS = ImportKind(
    name="loans", noun="running loan", plural="running loans",
    columns=["asset_tag", "borrower_type", "borrower", "pupil", "started_on", "due_on", "fee_per_term",
             "remission_category", "charge_per_term", "deposit", "condition", "accessories"],
    required={"asset_tag", "borrower_type", "borrower", "started_on", "due_on"},
    example={"asset_tag": "MIX-000001", "borrower_type": "pupil", "borrower": "sam.parent@example.com",
             "pupil": "Alex Parent", "started_on": "2026-09-07", "due_on": "2027-07-16", "fee_per_term": "30.00",
             "remission_category": "free_school_meals", "charge_per_term": "0.00", "deposit": "0.00",
             "condition": "2", "accessories": "Case, bow, rosin"},
    help="Instruments out on the day the hub switches, one a row, each named by its asset tag (the instruments "
         "must be imported first). borrower_type is pupil, family, school or other; borrower is then the "
         "family's email (for a pupil too, with the pupil's name in pupil), the school's URN, or the other "
         "borrower's name. Fee, remission and charge per term as agreed; condition at issue 1 to 5.",
    prepare=_loans_context, parse_row=_loan_row, apply=_apply_loans,
    key=lambda r: r.asset_tag, key_column="asset_tag",
    preview=[("Tag", "asset_tag"), ("Borrower", "borrower_label"), ("Type", "borrower_type"),
             ("Due", "due_on"), ("Fee", "fee_per_term"), ("Charge", "charge_per_term")],
)


# ---------------------------------------------------------------- people (invitations)


@dataclass
class PersonRow:
    email: str
    name: str
    role: Role
    school_id: int | None
    school_name: str
    line: int = 0

    @property
    def role_label(self) -> str:
        return self.role.label


_ROLES = {r.value: r for r in INVITABLE_ROLES} | {r.label.lower(): r for r in INVITABLE_ROLES} | {
    "manager": Role.ADMIN, "hub manager": Role.ADMIN, "school music lead": Role.SCHOOL}


def _people_context(session: Session, records: list[dict]) -> dict:
    return {"emails": set(session.scalars(select(User.email))),
            "schools": {urn: (id_, name) for id_, urn, name in session.execute(select(School.id, School.urn,
                                                                                          School.name)) if urn}}


def _person_row(context: dict, values: dict) -> PersonRow:
    def the_email():
        value = email(values, "email", required=True)
        if value in context["emails"]:
            raise RowProblem("email", f"{value} already has an account: leave this row out.")
        return value

    def role():
        value = values.get("role", "").lower()
        if value not in _ROLES:
            raise RowProblem("role", f"role must be staff, school or admin, not {values.get('role')!r}.")
        return _ROLES[value]

    def school():
        urn = values.get("school_urn", "")
        if not urn:
            return None, ""
        if urn not in context["schools"]:
            raise RowProblem("school_urn", f"No school has the URN {urn}: import the schools first.")
        return context["schools"][urn]

    email_, name, role_, (school_id, school_name) = collect(
        the_email, lambda: text(values, "name", required=True, label="The name"), role, school)
    if role_ is Role.SCHOOL and school_id is None:
        raise RowProblem("school_urn", "A school music lead needs their school's URN.")
    if role_ is not Role.SCHOOL and school_id is not None:
        raise RowProblem("school_urn", "Only a school music lead belongs to a school: leave school_urn empty.")
    return PersonRow(email_, name, role_, school_id, school_name)


def _apply_people(session: Session, actor, rows: list[PersonRow], *, config, link_for) -> int:
    for row in rows:
        invite_user(session, actor, config, email=row.email, name=row.name, role=row.role,
                    school_id=row.school_id, link_for=link_for)
    return len(rows)


PEOPLE = ImportKind(
    name="people", noun="invitation", plural="invitations",
    columns=["email", "name", "role", "school_urn"],
    required={"email", "name", "role"},
    example={"email": "store.assistant@hub.example", "name": "Chris Store", "role": "staff", "school_urn": ""},
    help="Staff and school users to invite, one a row: each gets an email with a single-use link to set their "
         "own password. role is staff, school (a school music lead, with the school's URN in school_urn) or admin "
         "(a hub manager).",
    prepare=_people_context, parse_row=_person_row, apply=_apply_people,
    key=lambda r: r.email, key_column="email",
    preview=[("Email", "email"), ("Name", "name"), ("Role", "role_label"), ("School", "school_name")],
)


# The order to run them: each file names only what the ones before it brought in.
KINDS: dict[str, ImportKind] = {kind.name: kind for kind in (SCHOOLS, FAMILIES, PUPILS, OTHERS, LOANS, PEOPLE)}
