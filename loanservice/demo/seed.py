"""Build a demo hub. Bulk inserts, so that 100,000 instruments take seconds, not minutes."""
import io
import os
import random
from datetime import date, timedelta
from decimal import Decimal

from PIL import Image, ImageDraw
from sqlalchemy import JSON, func, insert, literal, select, update
from sqlalchemy.orm import Session

from ..accounts.models import Role, User
from ..accounts.services import invite_user
from ..audit.models import AuditEvent
from ..borrowers.models import Family, OtherBorrower, Pupil
from ..documents.models import HireConditions, NoticeKind, NoticeStage
from ..documents.notices import add_usual_stages
from ..inventory.models import (
    AssetTagCounter,
    CheckReason,
    ConditionCheck,
    Instrument,
    InstrumentStatus,
    InstrumentType,
    PhotoStage,
    Repair,
    TagKind,
)
from ..inventory.photos import Upload, add_photos, latest_check
from ..inventory.services import register_tags
from ..loans.models import AcademicTerm, FeeBand, Loan, LoanStatus, RemissionRule
from ..loans.pricing import raise_term_charges
from ..parents.models import ParentAccount
from ..reservations.models import Reservation
from ..reservations.services import add_working_days, reservable
from ..schools.models import School
from ..sets.models import ClassroomSet, ClassroomSetItem, SetLoan
from ..timeutil import today, utcnow
from .bookings import seed_bookings
from .money import seed_money
from .privacy import seed_privacy
from .servicing import seed_servicing

FRACTIONS = ["1/16", "1/10", "1/8", "1/4", "1/2", "3/4", "7/8", "4/4"]

# name, family, sizes, band, accessories, makes, (cost low, high)
TYPES = [
    ("Violin", "strings", FRACTIONS, "A", "case, bow, rosin", ["Stentor", "Primavera", "Hidersine"], (60, 180)),
    ("Viola", "strings", ['13"', '14"', '15"', '15.5"', '16"', '16.5"'], "A", "case, bow, rosin",
     ["Stentor", "Primavera"], (90, 250)),
    ("Cello", "strings", ["1/4", "1/2", "3/4", "4/4"], "B", "soft case, bow, rosin, endpin stop",
     ["Stentor", "Primavera"], (300, 700)),
    ("Double bass", "strings", ["1/4", "1/2", "3/4"], "C", "soft case, bow", ["Stentor"], (700, 1400)),
    ("Ukulele", "strings", [], "A", "gig bag", ["Mahalo", "Kala"], (25, 60)),
    ("Classical guitar", "strings", ["1/2", "3/4", "4/4"], "A", "gig bag", ["Valencia", "Admira"], (50, 150)),
    ("Flute", "woodwind", [], "B", "case, cleaning rod", ["Trevor James", "Yamaha", "Jupiter"], (250, 600)),
    ("Clarinet", "woodwind", [], "B", "case, mouthpiece, ligature, cap", ["Buffet", "Yamaha", "Jupiter"],
     (300, 650)),
    ("Alto saxophone", "woodwind", [], "C", "case, mouthpiece, ligature, sling", ["Yamaha", "Trevor James"],
     (600, 1200)),
    ("Trumpet", "brass", [], "B", "case, mouthpiece", ["Yamaha", "Bach", "Jupiter"], (250, 600)),
    ("Cornet", "brass", [], "B", "case, mouthpiece", ["Besson", "Yamaha"], (250, 550)),
    ("Trombone", "brass", [], "B", "case, mouthpiece", ["Yamaha", "Jupiter"], (300, 650)),
    ("pBone", "brass", [], "A", "mouthpiece", ["Warwick Music"], (90, 130)),
    ("Djembe", "percussion", ['10"', '12"'], "A", "", ["Meinl", "Remo"], (40, 120)),
    ("Glockenspiel", "percussion", [], "A", "beaters", ["Percussion Plus"], (30, 90)),
    ("Keyboard", "keyboard", [], "B", "power supply, stand", ["Yamaha", "Casio"], (100, 300)),
    ("Electric guitar", "electric", [], "B", "gig bag, lead", ["Squier", "Yamaha"], (150, 350)),
    ("Bass guitar", "electric", [], "B", "gig bag, lead", ["Squier", "Yamaha"], (180, 380)),
    ("One-handed recorder", "adaptive", [], "A", "case", ["Aulos"], (60, 120)),
    ("Adaptive trumpet (one-handed)", "adaptive", [], "B", "case, mouthpiece, stand", ["Warwick Music"],
     (300, 500)),
]

SCHOOLS = [
    ("Riverside Primary School", "100001", "Ms Amara Okafor"),
    ("St Mary's CE Primary", "100002", "Mr Tom Hughes"),
    ("Hillcrest Academy", "100003", "Mrs Priya Shah"),
    ("Oakfield Junior School", "100004", "Mr Daniel Byrne"),
    ("Castle Park Primary", "100005", "Miss Ellie Watson"),
    ("Northgate High School", "100006", "Dr Sam Patel"),
]

DEMO_LOGINS = [
    ("admin@demo.hub", "demo-admin-pass", Role.ADMIN.label),
    ("staff@demo.hub", "demo-staff-pass", Role.STAFF.label),
    ("school@demo.hub", "demo-school-pass", Role.SCHOOL.label),
    ("parent@demo.hub", "demo-parent-pass", Role.PARENT.label),
    ("parent2@demo.hub", "demo-parent2-pass", Role.PARENT.label),
]

LOCATIONS = [f"Store / Shelf {row}{n}" for row in "ABCDEF" for n in range(1, 6)] + ["Store / Intake bench"]
REPAIRERS = ["Hubbard Strings (luthier)", "Brass & Wind Repairs Ltd", "Store workshop"]
FUNDING = ["DfE capital grant 2024", "DfE capital grant 2025", "Hub core budget", "Donation"]


def database_is_empty(session: Session) -> bool:
    return session.scalar(select(func.count()).select_from(User)) == 0


def seed(session: Session, *, instruments: int = 400, progress=lambda n: None, rng_seed: int = 2026) -> None:
    """Add types, schools, one user per role and ``instruments`` instruments."""
    rng = random.Random(rng_seed)
    types = _seed_types(session)
    schools = _seed_schools(session)
    users = _seed_users(session, schools)
    _seed_instruments(session, rng, types, users["staff@demo.hub"], instruments, progress)
    _seed_loans(session, rng, schools, users, instruments)
    _seed_reservations(session, schools, users)
    seed_bookings(session, schools, users)
    _seed_hire_conditions(session, users)
    _seed_notice_stages(session, users["admin@demo.hub"])
    seed_money(session, users["admin@demo.hub"])
    seed_privacy(session, users["admin@demo.hub"])
    _seed_invitation(session, users["admin@demo.hub"])
    seed_servicing(session, users["admin@demo.hub"], users["staff@demo.hub"])


def _seed_invitation(session: Session, admin: User) -> None:
    """A store assistant invited and not yet signed up: the Users page shows them as invited, and the
    invitation waits on the Mail page (or in their inbox, with a mail server), its link ready to set a password."""
    base = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    config = {"HUB_NAME": os.environ.get("HUB_NAME", "Demo Music Hub"), "INVITE_LINK_HOURS": 24 * 14}
    invite_user(session, admin, config, email="new.assistant@demo.hub", name="Nia Assistant", role="staff",
                school_id=None, link_for=lambda token: f"{base}/invitation/{token}")


def _seed_notice_stages(session: Session, admin: User) -> None:
    """The usual stages for overdue instruments and for unpaid invoices, so that the notices run works in the
    demo at once (last term's unpaid invoices get their reminders)."""
    if session.scalar(select(func.count()).select_from(NoticeStage)) == 0:
        add_usual_stages(session, admin)
        add_usual_stages(session, admin, NoticeKind.INVOICE)


def _seed_types(session: Session) -> list[tuple[InstrumentType, tuple]]:
    result = []
    for name, family, sizes, band, accessories, makes, costs in TYPES:
        instrument_type = session.scalar(select(InstrumentType).where(InstrumentType.name == name))
        if instrument_type is None:
            instrument_type = InstrumentType(name=name, family=family, sizes=sizes, hire_band=band,
                                             default_accessories=accessories)
            session.add(instrument_type)
        result.append((instrument_type, (makes, costs, accessories)))
    session.flush()
    return result


def _seed_schools(session: Session) -> list[School]:
    schools = []
    for name, urn, lead in SCHOOLS:
        school = session.scalar(select(School).where(School.name == name))
        if school is None:
            school = School(name=name, urn=urn, contact_name=lead,
                            contact_email=f"music@{urn}.school.example",
                            address=f"{urn[-1]} School Lane\nDemo town DT{urn[-1]} 1SL")
            session.add(school)
        schools.append(school)
    session.flush()
    return schools


def _seed_users(session: Session, schools: list[School]) -> dict[str, User]:
    names = {"admin": "Helen Hub-Manager", "staff": "Sam Storekeeper", "school": "Amara Okafor",
             "parent": "Jo Parent"}
    users = {}
    for email, password, _ in DEMO_LOGINS:
        role = email.split("@")[0]
        if role not in names:  # further demo parents come with their families (_seed_reservations)
            continue
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=names[role], role=role,
                        school=schools[0] if role == Role.SCHOOL else None)
            user.set_password(password)
            session.add(user)
        users[email] = user
    session.flush()
    return users


def _seed_instruments(session, rng, types, staff: User, count: int, progress) -> None:
    prefix = "MIX"
    counter = session.get(AssetTagCounter, prefix)
    if counter is None:
        counter = AssetTagCounter(prefix=prefix, last_value=0)
        session.add(counter)
        session.flush()
    start = counter.last_value
    weights = [6 if t.name in ("Violin", "Ukulele", "Djembe", "pBone") else 2 for t, _ in types]
    now = utcnow()
    rows: list[dict] = []
    repairs: list[tuple[str, dict]] = []
    chunk = 5000
    for n in range(start + 1, start + count + 1):
        instrument_type, (makes, costs, accessories) = rng.choices(types, weights)[0]
        roll = rng.random()
        status, reason = InstrumentStatus.AVAILABLE, ""
        if roll < 0.04:
            status = InstrumentStatus.IN_REPAIR
        elif roll < 0.06:
            status, reason = InstrumentStatus.MISSING, "Not returned at end of summer term"
        elif roll < 0.08:
            status, reason = InstrumentStatus.WRITTEN_OFF, "Beyond economic repair"
        grade = rng.choices([1, 2, 3, 4, 5], [25, 40, 22, 9, 4])[0]
        written_off = status is InstrumentStatus.WRITTEN_OFF
        if written_off:
            grade = 5
        cost = Decimal(rng.randint(*costs))
        bought = date(2019, 1, 1) + timedelta(days=rng.randint(0, (today() - date(2019, 1, 1)).days))
        tag = f"{prefix}-{n:06d}"
        rows.append(dict(
            asset_tag=tag,
            type_id=instrument_type.id,
            size=rng.choice(instrument_type.sizes) if instrument_type.sizes else "",
            make=rng.choice(makes),
            model=f"{rng.choice(['Student', 'Standard', 'Prima', 'Series'])} {rng.randint(1, 5)}",
            serial_number=f"{rng.choice('ABCDEFGHJK')}{rng.randint(100000, 999999)}",
            accessories=accessories,
            location=rng.choice(LOCATIONS),
            status=status,
            status_reason=reason,
            condition_grade=grade,
            purchased_on=bought,
            purchase_cost=cost,
            funding_source=rng.choice(FUNDING),
            replacement_value=(cost * Decimal("1.15")).quantize(Decimal("1")),
            send_adapted=instrument_type.family == "adaptive",
            pat_due_on=(today() + timedelta(days=rng.randint(-30, 330))) if instrument_type.family == "electric"
            else None,
            notes="",
            disposed_on=today() - timedelta(days=rng.randint(10, 400)) if written_off else None,
            disposal_proceeds=Decimal(rng.choice([0, 0, 5, 20])) if written_off else None,
            created_at=now,
            updated_at=now,
        ))
        if status is InstrumentStatus.IN_REPAIR:
            sent = today() - timedelta(days=rng.randint(1, 40))
            repairs.append((tag, dict(repairer=rng.choice(REPAIRERS), fault=rng.choice(
                ["Open seam", "Sticky valve", "Cracked bridge", "Pads leaking", "Broken string, new bridge"]),
                sent_on=sent, expected_back_on=sent + timedelta(days=21),
                expected_cost=Decimal(rng.randint(15, 120)))))
        if len(rows) >= chunk:
            _flush_instruments(session, rows, staff, now, progress)
    if rows:
        _flush_instruments(session, rows, staff, now, progress)
    counter.last_value = start + count
    if repairs:
        ids = dict(session.execute(
            select(Instrument.asset_tag, Instrument.id).where(Instrument.asset_tag.in_([t for t, _ in repairs]))
        ).all())
        session.execute(insert(Repair), [
            dict(instrument_id=ids[tag], sent_by_id=staff.id, **values) for tag, values in repairs
        ])
    session.flush()


def _flush_instruments(session, rows, staff, now, progress) -> None:
    """Insert these instrument rows and their intake condition checks in two statements."""
    tags = [row["asset_tag"] for row in rows]
    register_tags(session, tags, TagKind.INSTRUMENT)
    session.execute(insert(Instrument), rows)
    session.execute(
        insert(ConditionCheck).from_select(
            ["instrument_id", "grade", "reason", "note", "checked_by_id", "checked_at"],
            select(Instrument.id, Instrument.condition_grade, literal(CheckReason.INTAKE.value),
                   literal("Demo intake"), literal(staff.id), literal(now))
            .where(Instrument.asset_tag.in_(tags)),
        )
    )
    session.execute(
        insert(AuditEvent).from_select(
            ["at", "actor_id", "action", "entity_type", "entity_id", "instrument_id", "summary", "changes"],
            select(literal(now), literal(staff.id), literal("instrument.added"), literal("instrument"),
                   Instrument.id, Instrument.id, literal("Added ") + Instrument.asset_tag + literal(" (demo data)"),
                   literal({}, JSON))
            .where(Instrument.asset_tag.in_(tags)),
        )
    )
    progress(len(rows))
    rows.clear()


# ---------------------------------------------------------------- loans and classroom sets

FIRST_NAMES = ["Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Leo", "Ivy", "Arthur", "Freya",
               "Muhammad", "Lily", "Oscar", "Sofia", "Harry", "Aisha", "Jack", "Zara", "Theo", "Maya", "Finley",
               "Chloe", "Kai", "Poppy", "Ravi", "Grace", "Tomasz", "Nia", "Alfie"]
SURNAMES = ["Smith", "Jones", "Khan", "Williams", "Brown", "Patel", "Taylor", "Nowak", "Davies", "Evans",
            "Okafor", "Wilson", "Hussain", "Thomas", "Roberts", "Ahmed", "Walker", "Wright", "Begum", "Green"]
STREETS = ["Elm Road", "Mill Lane", "Station Road", "Church Street", "Park Avenue", "Victoria Road", "Orchard Close",
           "The Green", "Brook Street", "Queens Road"]
REMISSION = ["free_school_meals", "pupil_premium", "looked_after", "benefits"]
FEES_BY_BAND = {"A": Decimal("30.00"), "B": Decimal("36.40"), "C": Decimal("45.00")}
SET_TYPES = ["Ukulele", "Djembe", "pBone", "Violin"]
OTHER_BORROWERS = [("Hub Youth Orchestra", "Ensemble"), ("Ms Clare Dunn", "Peripatetic violin teacher"),
                   ("County Brass Band", "Partner organisation")]


def academic_terms(around: date) -> list[tuple[str, date, date]]:
    """Autumn, Spring and Summer terms of the school year before, during and after ``around``."""
    first = around.year - 1 if around.month < 9 else around.year
    terms = []
    for year in (first - 1, first, first + 1):
        terms += [
            (f"Autumn {year}", date(year, 9, 3), date(year, 12, 19)),
            (f"Spring {year + 1}", date(year + 1, 1, 6), date(year + 1, 3, 27)),
            (f"Summer {year + 1}", date(year + 1, 4, 14), date(year + 1, 7, 22)),
        ]
    return terms


def _seed_terms(session: Session) -> list[AcademicTerm]:
    existing = set(session.scalars(select(AcademicTerm.name)))
    for name, starts_on, ends_on in academic_terms(today()):
        if name not in existing:
            session.add(AcademicTerm(name=name, starts_on=starts_on, ends_on=ends_on))
    session.flush()
    return list(session.scalars(select(AcademicTerm).order_by(AcademicTerm.starts_on)))


REMISSION_RULES = [("free_school_meals", "free", "0"), ("looked_after", "free", "0"),
                   ("pupil_premium", "percent_off", "60"), ("benefits", "fixed", "10.00")]


def _seed_fees(session: Session) -> dict[str, RemissionRule]:
    """The demo hub's fees by band (with a deposit for the dearer bands) and its remission rules."""
    for band, fee in FEES_BY_BAND.items():
        if session.scalar(select(FeeBand).where(FeeBand.band == band)) is None:
            session.add(FeeBand(band=band, fee_per_term=fee, deposit=Decimal("0.00" if band == "A" else "25.00")))
    for category, kind, value in REMISSION_RULES:
        if session.scalar(select(RemissionRule).where(RemissionRule.category == category)) is None:
            session.add(RemissionRule(category=category, kind=kind, value=Decimal(value)))
    session.flush()
    return {rule.category: rule for rule in session.scalars(select(RemissionRule))}


def _loan_row(**values) -> dict:
    """A loan for a bulk insert, every column given so that one statement takes them all."""
    row = dict(pupil_id=None, family_id=None, school_id=None, other_borrower_id=None, set_loan_id=None,
               exchanged_from_id=None, status=LoanStatus.OPEN, closed_on=None, accessories="",
               condition_at_issue=2, condition_at_return=None, damaged=False, return_note="",
               fee_per_term=Decimal("0.00"), remission_category="none", charge_per_term=Decimal("0.00"),
               deposit=Decimal("0.00"), replacement_owed=None, issued_by_id=None, closed_by_id=None,
               pupil_year_group=None, pupil_send=False,
               created_at=utcnow())
    row.update(values)
    return row


def _seed_loans(session: Session, rng: random.Random, schools: list[School], users: dict[str, User],
                instruments: int) -> None:
    """Families and pupils with loans (some overdue, some with remission), returns, a size exchange,
    and classroom sets out at schools, one of them part checked in."""
    if session.scalar(select(func.count()).select_from(Loan)):
        return  # a hub that already has loans keeps them
    staff = users["staff@demo.hub"]
    terms = _seed_terms(session)
    rules = _seed_fees(session)
    now = today()
    this_term = next((t for t in terms if t.ends_on >= now), terms[-1])
    last_term = max((t for t in terms if t.ends_on < now), key=lambda t: t.ends_on, default=terms[0])
    for name, description in OTHER_BORROWERS:
        session.add(OtherBorrower(name=name, description=description))

    # Every available instrument, by type: what the demo may lend.
    pools: dict[str, list[tuple[int, str, str, str, int]]] = {}
    for row in session.execute(
        select(Instrument.id, InstrumentType.name, Instrument.size, Instrument.accessories,
               Instrument.condition_grade, InstrumentType.hire_band)
        .join(InstrumentType).where(Instrument.status == InstrumentStatus.AVAILABLE).order_by(Instrument.id)
    ):
        pools.setdefault(row[1], []).append((row[0], row[2], row[3], row[4], row[5]))
    lent: set[int] = set()

    set_loans = _seed_sets(session, rng, pools, schools, staff, this_term, lent)
    _seed_pupil_loans(session, rng, pools, schools, users, staff, this_term, last_term, lent, instruments, rules)
    if lent:
        ids = sorted(lent)
        for start in range(0, len(ids), 5000):
            session.execute(update(Instrument).where(Instrument.id.in_(ids[start:start + 5000]))
                            .values(status=InstrumentStatus.ON_LOAN, status_reason="Demo loan"))
    _part_return_first_set(session, set_loans, staff)
    # Each loan keeps its pupil's year group and SEND flag, as lending does, for the funders' reports.
    session.execute(update(Loan).where(Loan.pupil_id.is_not(None)).values(
        pupil_year_group=select(Pupil.year_group).where(Pupil.id == Loan.pupil_id).scalar_subquery(),
        pupil_send=select(Pupil.send).where(Pupil.id == Loan.pupil_id).scalar_subquery()))
    session.flush()
    for term in (last_term, this_term):  # so the charges page and its CSV have something to show
        raise_term_charges(session, users["admin@demo.hub"], term)


def _seed_sets(session, rng, pools, schools, staff, term, lent) -> list[SetLoan]:
    """Classroom sets of 30 (fewer in a small demo), two thirds of them out at schools."""
    sets: list[tuple[ClassroomSet, list[int]]] = []
    grade_of: dict[int, int] = {}  # each member's condition now: what it goes out (and comes back) in
    for type_name in SET_TYPES:
        pool = pools.get(type_name, [])
        size = 30 if len(pool) >= 60 else len(pool) // 2
        if size < 4:
            continue
        count = min(len(pool) // (2 * size), 6)
        for n in range(count):
            # Usable instruments only (graded under 5), so a set in the store can be lent straight away.
            members = [m for m in pool if m[3] < 5][:size]
            if len(members) < size:
                break
            taken = {m[0] for m in members}
            pool = pools[type_name] = [m for m in pool if m[0] not in taken]
            letter = "ABCDEF"[n]
            tag = f"SET-{type_name[:3].upper()}-{letter}"
            register_tags(session, [tag], TagKind.SET)
            classroom_set = ClassroomSet(name=f"{type_name} set {letter}", tag=tag,
                                         notes=f"{size} {type_name.lower()}s for whole-class teaching.")
            session.add(classroom_set)
            sets.append((classroom_set, [m[0] for m in members]))
            grade_of.update((m[0], m[3]) for m in members)
    if not sets:
        return []
    session.flush()
    session.execute(insert(ClassroomSetItem), [
        dict(set_id=classroom_set.id, instrument_id=instrument_id)
        for classroom_set, members in sets for instrument_id in members
    ])
    set_loans = []
    start = max(term.starts_on, today() - timedelta(days=120))
    for n, (classroom_set, members) in enumerate(sets[: max(1, len(sets) * 2 // 3)]):
        set_loan = SetLoan(classroom_set=classroom_set, school=schools[n % len(schools)], started_on=start,
                           due_on=max(term.ends_on, start), item_count=len(members), issued_by=staff,
                           pupils=len(members) + rng.randint(0, 4), year_group=rng.choice([3, 4, 5]))
        session.add(set_loan)
        set_loans.append((set_loan, members))
    session.flush()
    session.execute(insert(Loan), [
        _loan_row(instrument_id=instrument_id, school_id=set_loan.school_id, set_loan_id=set_loan.id,
                  started_on=set_loan.started_on, due_on=set_loan.due_on, issued_by_id=staff.id,
                  condition_at_issue=grade_of[instrument_id])
        for set_loan, members in set_loans for instrument_id in members
    ])
    lent.update(instrument_id for _, members in set_loans for instrument_id in members)
    return [set_loan for set_loan, _ in set_loans]


def _part_return_first_set(session, set_loans: list[SetLoan], staff: User) -> None:
    """The demo school's first set is part-way through its check-in: most items back, a few still out."""
    if not set_loans:
        return
    set_loan = set_loans[0]
    loans = session.scalars(select(Loan).where(Loan.set_loan_id == set_loan.id).order_by(Loan.id)).all()
    back = loans[: max(1, len(loans) - 3)]
    # Each comes back as it went out, but for the last one back, whose grade was chosen: a grade worse.
    worse = back[-1]
    for loan in back:
        loan.status, loan.closed_on = LoanStatus.RETURNED, max(today(), loan.started_on)
        loan.condition_at_return, loan.closed_by_id = loan.condition_at_issue, staff.id
    if len(back) > 1 and worse.condition_at_issue < 4:
        worse.condition_at_return = worse.condition_at_issue + 1
        worse.return_note = "Scratched on the back"
        session.execute(update(Instrument).where(Instrument.id == worse.instrument_id)
                        .values(condition_grade=worse.condition_at_return))
    session.execute(update(Instrument).where(Instrument.id.in_([loan.instrument_id for loan in back]))
                    .values(status=InstrumentStatus.AVAILABLE, status_reason=""))
    # The condition checks a check-in records, so each instrument's history shows its return.
    session.execute(insert(ConditionCheck), [
        dict(instrument_id=loan.instrument_id, grade=loan.condition_at_return, reason=CheckReason.RETURN,
             note=loan.return_note, checked_by_id=staff.id, checked_at=utcnow()) for loan in back])
    if worse.return_note:
        _seed_photo(session, staff, worse)


def _seed_photo(session, staff: User, loan: Loan) -> None:
    """A condition photo of the scratch, taken at its check-in: the condition history and the loan show it."""
    instrument = session.get(Instrument, loan.instrument_id)
    check = latest_check(session, instrument)
    image = Image.new("RGB", (1200, 900), (150, 86, 40))  # a varnished back, with a pale scratch across it
    ImageDraw.Draw(image).line([(200, 650), (900, 300)], fill=(225, 200, 160), width=14)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    add_photos(session, staff, instrument, [Upload("scratch.jpg", buffer.getvalue())], PhotoStage.CHECK_IN,
               limit=len(buffer.getvalue()), condition_check_id=check.id if check else None, loan_id=loan.id)


def _seed_pupil_loans(session, rng, pools, schools, users, staff, this_term, last_term, lent, instruments,
                      rules: dict[str, RemissionRule]) -> None:
    """Families with pupils; most pupils hold an instrument, some overdue, about a quarter with remission."""
    count = min(max(instruments // 25, 12), 4000)
    # Plain bulk inserts, then read the new ids back: RETURNING for thousands of rows is slow.
    first_family = session.scalar(select(func.coalesce(func.max(Family.id), 0)))
    session.execute(insert(Family), [
        dict(name=f"{rng.choice(['Mr', 'Ms', 'Mrs', 'Mx'])} {rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}",
             # One family in eight has no email: their letters go by post, to this address.
             email="" if n % 8 == 7 else f"family{n}@parents.example", phone=f"07700 9{n % 100000:05d}",
             address=f"{n % 97 + 1} {rng.choice(STREETS)}\nDemo town DT{n % 9 + 1} {n % 7 + 1}AB", user_id=None,
             created_at=utcnow())
        for n in range(count)
    ])
    families = session.scalars(select(Family.id).where(Family.id > first_family).order_by(Family.id)).all()
    parent = users["parent@demo.hub"]  # the demo parent's own family: their name in emails and on letters
    session.execute(update(Family).where(Family.id == families[0]).values(user_id=parent.id, name=parent.name,
                                                                         email=parent.email))
    first_pupil = session.scalar(select(func.coalesce(func.max(Pupil.id), 0)))
    pupil_rows = []
    for n, family_id in enumerate(families):
        remission = rng.random() < 0.25
        pupil_rows.append(dict(
            name=f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}", family_id=family_id,
            school_id=schools[n % len(schools)].id,
            # Years 3-6 at the primary and junior schools, 7-11 at the high school.
            year_group=rng.randint(7, 11) if "High" in schools[n % len(schools)].name else rng.randint(3, 6),
            remission_category=rng.choice(REMISSION) if remission else "none",
            remission_verified_on=today() - timedelta(days=rng.randint(10, 300)) if remission else None,
            send=rng.random() < 0.05, created_at=utcnow()))
    session.execute(insert(Pupil), pupil_rows)
    pupils = session.execute(select(Pupil.id, Pupil.remission_category).where(Pupil.id > first_pupil)
                             .order_by(Pupil.id)).all()

    lendable = [item for name, pool in pools.items() if name not in SET_TYPES for item in pool
                if item[0] not in lent]
    rng.shuffle(lendable)
    exchange = _exchange_pair(pools.get("Violin", []), lent)
    rows = []
    def fee_of(band: str) -> Decimal:
        return FEES_BY_BAND.get(band, FEES_BY_BAND["A"])

    def charge_of(band: str, remission: str) -> Decimal:
        return rules[remission].charge(fee_of(band)) if remission in rules else fee_of(band)

    out_now = 0
    for n, (pupil_id, remission) in enumerate(pupils):
        # A past loan, returned, for most pupils: the history a borrower's page shows.
        if lendable and rng.random() < 0.5:
            instrument_id, _, accessories, grade, band = lendable[rng.randrange(len(lendable))]
            started = last_term.starts_on - timedelta(days=rng.randint(30, 200))
            rows.append(_loan_row(
                instrument_id=instrument_id, pupil_id=pupil_id, started_on=started, due_on=last_term.ends_on,
                status=LoanStatus.RETURNED, closed_on=last_term.ends_on - timedelta(days=rng.randint(0, 20)),
                accessories=accessories, condition_at_issue=grade, condition_at_return=grade,
                fee_per_term=fee_of(band), remission_category=remission,
                charge_per_term=charge_of(band, remission),
                issued_by_id=staff.id, closed_by_id=staff.id))
        if n == 0 and exchange:
            continue  # the first pupil gets the size exchange below
        if not lendable or rng.random() > 0.7:
            continue
        instrument_id, _, accessories, grade, band = lendable.pop()
        out_now += 1
        overdue = out_now <= 2 or rng.random() < 0.15  # the first two for sure: the overdue list is never empty
        started = (last_term.starts_on if overdue else this_term.starts_on) + timedelta(days=rng.randint(0, 20))
        started = min(started, today())
        rows.append(_loan_row(
            instrument_id=instrument_id, pupil_id=pupil_id, started_on=started,
            due_on=max(last_term.ends_on if overdue else this_term.ends_on, started),
            accessories=accessories, condition_at_issue=grade, fee_per_term=fee_of(band),
            remission_category=remission,
            charge_per_term=charge_of(band, remission),
            deposit=Decimal("25.00") if rng.random() < 0.3 else Decimal("0.00"), issued_by_id=staff.id))
        lent.add(instrument_id)
    # Past loans may reuse an instrument lent now; they are closed, so the one-open-loan rule holds.
    if rows:
        session.execute(insert(Loan), rows)
    if exchange and pupils:
        _seed_size_exchange(session, pupils[0][0], exchange, staff, this_term, lent)


def _exchange_pair(violins: list[tuple], lent: set[int]) -> tuple | None:
    """Two violins a size apart, for a pupil who has grown."""
    by_size: dict[str, tuple] = {}
    for item in violins:
        if item[0] not in lent:
            by_size.setdefault(item[1], item)
    for smaller, bigger in zip(FRACTIONS, FRACTIONS[1:], strict=False):
        if smaller in by_size and bigger in by_size:
            return by_size[smaller], by_size[bigger]
    return None


def _seed_size_exchange(session, pupil_id, pair, staff, term, lent) -> None:
    (small_id, _, small_acc, small_grade, band), (big_id, _, big_acc, big_grade, _) = pair
    fee = FEES_BY_BAND.get(band, FEES_BY_BAND["A"])
    swapped_on = max(term.starts_on, today() - timedelta(days=30))
    first = Loan(instrument_id=small_id, pupil_id=pupil_id, started_on=swapped_on - timedelta(days=400),
                 due_on=term.ends_on, closed_on=swapped_on, status=LoanStatus.EXCHANGED,
                 accessories=small_acc, condition_at_issue=small_grade, condition_at_return=small_grade,
                 return_note="Outgrown: moved up a size", fee_per_term=fee, charge_per_term=fee,
                 issued_by_id=staff.id, closed_by_id=staff.id)
    session.add(first)
    session.flush()
    session.add(Loan(instrument_id=big_id, pupil_id=pupil_id, started_on=swapped_on, due_on=term.ends_on,
                     accessories=big_acc, condition_at_issue=big_grade, fee_per_term=fee, charge_per_term=fee,
                     exchanged_from_id=first.id, issued_by_id=staff.id))
    lent.add(big_id)


# ---------------------------------------------------------------- parents and reservations (issue 5)


def _seed_reservations(session: Session, schools: list[School], users: dict[str, User]) -> None:
    """Demo parents' children with a reservation in each state, and a waiting list they are on."""
    if session.scalar(select(func.count()).select_from(Reservation)) or "parent@demo.hub" not in users:
        return
    staff, now = users["staff@demo.hub"], utcnow()
    jo = users["parent@demo.hub"]
    family = session.scalar(select(Family).where(Family.user_id == jo.id))
    if family is None:
        family = Family(name=jo.name, email=jo.email, user_id=jo.id)
        session.add(family)
    sam = session.scalar(select(User).where(User.email == "parent2@demo.hub"))
    if sam is None:
        sam = User(email="parent2@demo.hub", name="Sam Carer", role=Role.PARENT)
        sam.set_password("demo-parent2-pass")
        session.add(sam)
        session.flush()
        session.add(ParentAccount(user_id=sam.id, email_confirmed_at=now))
    sam_family = session.scalar(select(Family).where(Family.user_id == sam.id)) or Family(
        name=sam.name, email=sam.email, user_id=sam.id)
    session.add(sam_family)
    session.flush()

    def child(name: str, fam: Family, year: int) -> Pupil:
        pupil = Pupil(name=name, family_id=fam.id, school_id=schools[1].id, year_group=year)
        session.add(pupil)
        return pupil

    mia, leo, ava = child("Mia Parent", family, 4), child("Leo Parent", family, 6), child("Ava Parent", family, 3)
    ezra, nell = child("Ezra Carer", sam_family, 5), child("Nell Carer", sam_family, 7)
    session.flush()

    def free(type_name: str, exclude=()) -> list[Instrument]:
        return list(session.scalars(
            # Only what a parent could reserve: never a classroom set member or an unusable one.
            select(Instrument).join(InstrumentType).where(InstrumentType.name == type_name, *reservable(),
                                                          Instrument.id.notin_(exclude or [0]))
            .order_by(Instrument.size, Instrument.asset_tag)))

    def reservation(pupil, instrument_type, size, status, instrument=None, **extra) -> Reservation:
        row = Reservation(pupil_id=pupil.id, type_id=instrument_type.id, size=size, status=status,
                          instrument_id=instrument.id if instrument else None, preferred_start_on=today(),
                          requested_by_id=jo.id if pupil.family_id == family.id else sam.id, **extra)
        session.add(row)
        if status in ("held", "ready") and instrument is not None:
            instrument.status, instrument.status_reason = InstrumentStatus.RESERVED, "Demo reservation"
        return row

    types = {t.name: t for t in session.scalars(select(InstrumentType))}
    # Held and ready: instruments free now. Lapsed, cancelled and collected: history.
    for type_name, pupil, status in (("Violin", mia, "held"), ("Cello", leo, "ready")):
        candidates = free(type_name)
        if candidates:
            instrument = candidates[0]
            reservation(pupil, types[type_name], instrument.size, status, instrument, held_at=now,
                        collect_by=add_working_days(today(), 5) if status == "ready" else None)
    reservation(mia, types["Flute"], "", "lapsed", closed_at=now - timedelta(days=40))
    reservation(leo, types["Clarinet"], "", "cancelled", closed_at=now - timedelta(days=20))
    collected = free("Classical guitar")
    if collected:
        guitar = collected[0]
        loan = Loan(instrument_id=guitar.id, pupil_id=ava.id, started_on=today() - timedelta(days=14),
                    due_on=today() + timedelta(days=60), accessories=guitar.accessories,
                    condition_at_issue=guitar.condition_grade, issued_by_id=staff.id)
        session.add(loan)
        guitar.status, guitar.status_reason = InstrumentStatus.ON_LOAN, "Demo loan"
        session.flush()
        reservation(ava, types["Classical guitar"], guitar.size, "collected", guitar, loan_id=loan.id,
                    held_at=now - timedelta(days=20), closed_at=now - timedelta(days=14))
    # A waiting list: every free double bass 1/2 is held for someone, then three children wait.
    bass = types["Double bass"]
    for n, instrument in enumerate([i for i in free("Double bass") if i.size == "1/2"], 1):
        holder_family = Family(name=f"Demo family {n}", email=f"bass{n}@parents.example")
        session.add(holder_family)
        session.flush()
        holder = child(f"Demo bassist {n}", holder_family, 9)
        session.flush()
        reservation(holder, bass, "1/2", "held", instrument, held_at=now)
    for minutes, pupil in ((90, ezra), (60, ava), (30, nell)):
        reservation(pupil, bass, "1/2", "waiting", created_at=now - timedelta(minutes=minutes))
    session.flush()


# ---------------------------------------------------------------- terms and conditions

DEMO_HIRE_CONDITIONS = """The instrument remains the property of the hub. Keep it in its case, somewhere dry and \
away from heat, and bring it to every lesson.

Please cover the instrument on your household contents insurance. If it is lost or stolen, tell the hub at once: \
the replacement cost is payable within 28 days.

Only the hub's approved repairers may repair the instrument. Fair wear and tear is not charged; damage is, and \
writing or stickers on the instrument or its case count as damage.

Reeds, strings, rosin, valve oil and cork grease are yours to buy and keep.

Fees are charged per term or part of a term. Return the instrument when lessons stop, or when the hub asks for it \
at the end of the year for servicing."""


def _seed_hire_conditions(session: Session, users: dict[str, User]) -> None:
    """Version 1 of the hub's terms, so that agreements can be made (and signed) in the demo."""
    if session.scalar(select(func.count()).select_from(HireConditions)):
        return
    session.add(HireConditions(version=1, text=DEMO_HIRE_CONDITIONS, created_by_id=users["admin@demo.hub"].id))
    session.flush()
