"""Build a demo hub. Bulk inserts, so that 100,000 instruments take seconds, not minutes."""
import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import JSON, func, insert, literal, select
from sqlalchemy.orm import Session

from ..accounts.models import Role, User
from ..audit.models import AuditEvent
from ..inventory.models import (
    AssetTagCounter,
    CheckReason,
    ConditionCheck,
    Instrument,
    InstrumentStatus,
    InstrumentType,
    Repair,
)
from ..schools.models import School
from ..timeutil import today, utcnow

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
                            contact_email=f"music@{urn}.school.example", address="Demo town")
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
    batch: list[dict] = []
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
        if status is InstrumentStatus.WRITTEN_OFF:
            grade = 5
        cost = Decimal(rng.randint(*costs))
        bought = date(2019, 1, 1) + timedelta(days=rng.randint(0, (today() - date(2019, 1, 1)).days))
        tag = f"{prefix}-{n:06d}"
        batch.append(dict(
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
            created_at=now,
            updated_at=now,
        ))
        if status is InstrumentStatus.IN_REPAIR:
            sent = today() - timedelta(days=rng.randint(1, 40))
            repairs.append((tag, dict(repairer=rng.choice(REPAIRERS), fault=rng.choice(
                ["Open seam", "Sticky valve", "Cracked bridge", "Pads leaking", "Broken string, new bridge"]),
                sent_on=sent, expected_back_on=sent + timedelta(days=21),
                expected_cost=Decimal(rng.randint(15, 120)))))
        if len(batch) >= chunk:
            _flush_instruments(session, batch, staff, now, progress)
    if batch:
        _flush_instruments(session, batch, staff, now, progress)
    counter.last_value = start + count
    if repairs:
        ids = dict(session.execute(
            select(Instrument.asset_tag, Instrument.id).where(Instrument.asset_tag.in_([t for t, _ in repairs]))
        ).all())
        session.execute(insert(Repair), [
            dict(instrument_id=ids[tag], sent_by_id=staff.id, **values) for tag, values in repairs
        ])
    session.flush()


def _flush_instruments(session, batch, staff, now, progress) -> None:
    """Insert a batch and its intake condition checks in two statements."""
    tags = [row["asset_tag"] for row in batch]
    session.execute(insert(Instrument), batch)
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
    progress(len(batch))
    batch.clear()
