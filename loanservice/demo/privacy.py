"""Demo data for children's data: families past their retention period (one on hold), one falling due
within the month, and an open subject access request."""
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..borrowers.models import Family, Pupil
from ..inventory.models import Instrument
from ..loans.models import Loan, LoanStatus
from ..privacy.services import add_years, hold_family, record_access_request
from ..schools.models import School
from ..timeutil import today

# (family, child, year group, when the last loan ended) - the last falls due within the coming month.
PAST_FAMILIES = [
    ("Mrs Rosalind Franklin", "Rosa Franklin", 6, date(2018, 7, 20)),
    ("Mr Alan Brooke", "Sam Brooke", 4, date(2019, 3, 29)),
    ("Ms Mary Seacole", "Ada Seacole", 5, None),
]


def seed_privacy(session: Session, admin: User) -> None:
    """Add the families the Privacy page shows, one held for a reason, and a request to answer."""
    school = session.scalar(select(School).order_by(School.id))
    instrument_ids = session.scalars(select(Instrument.id).order_by(Instrument.id).limit(len(PAST_FAMILIES))).all()
    families = []
    for (name, child, year, ended), instrument_id in zip(PAST_FAMILIES, instrument_ids, strict=False):
        ended = ended or add_years(today(), -6) + timedelta(days=12)
        family = Family(name=name, email=f"{name.split()[-1].lower()}@example.org", phone="01632 960000",
                        address=f"{len(families) + 3} Archive Street\nExampleton EX4 1AA",
                        created_at=datetime.combine(ended - timedelta(days=400), datetime.min.time()))
        session.add(family)
        session.flush()
        pupil = Pupil(name=child, family_id=family.id, school_id=school.id if school else None, year_group=year,
                      created_at=family.created_at)
        session.add(pupil)
        session.flush()
        session.add(Loan(instrument_id=instrument_id, pupil_id=pupil.id, status=LoanStatus.RETURNED,
                         started_on=ended - timedelta(days=300), due_on=ended, closed_on=ended,
                         condition_at_issue=2, condition_at_return=2, created_at=family.created_at))
        families.append(family)
    session.flush()
    if len(families) > 1:
        hold_family(session, admin, families[1], "Debt recovery: the 2019 replacement invoice is with the agency")
    parent_family = session.scalar(select(Family).join(User, User.id == Family.user_id)
                                   .where(User.email == "parent@demo.hub"))
    if parent_family is not None:
        record_access_request(session, admin, family_id=parent_family.id, requester_name=parent_family.name,
                              relationship_to_child="parent", received_on=today() - timedelta(days=9))
