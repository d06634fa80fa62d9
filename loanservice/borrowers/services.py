"""Borrowers: families and their pupils. Session first, flush, never commit."""
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit.services import record
from ..errors import InvalidInput
from ..schools.models import School
from ..timeutil import today
from .models import Family, Pupil, RemissionCategory


def add_family(session: Session, actor, *, name: str, email: str = "", phone: str = "") -> Family:
    """Record a parent or carer who hires instruments for their children."""
    if not name.strip():
        raise InvalidInput("Give the parent or carer's name.", field="name")
    family = Family(name=name.strip(), email=email.strip().lower(), phone=phone.strip())
    session.add(family)
    session.flush()
    record(session, actor, "family.added", family, f"Added family #{family.id}")
    return family


def add_pupil(
    session: Session, actor, family: Family, *, name: str, school_id: int | None = None,
    year_group: int | None = None, remission_category: str = RemissionCategory.NONE,
    remission_verified_on: date | None = None, send: bool = False,
) -> Pupil:
    """Add a pupil to a family; remission needs the date its eligibility was verified."""
    if not name.strip():
        raise InvalidInput("Give the pupil's name.", field="name")
    if remission_category not in list(RemissionCategory):
        raise InvalidInput("Unknown remission category.", field="remission_category")
    if remission_category != RemissionCategory.NONE and remission_verified_on is None:
        raise InvalidInput("Give the date eligibility was verified.", field="remission_verified_on")
    if remission_verified_on and remission_verified_on > today():
        raise InvalidInput("The verification date is in the future.", field="remission_verified_on")
    if school_id and session.get(School, school_id) is None:
        raise InvalidInput("Unknown school.", field="school_id")
    pupil = Pupil(name=name.strip(), family_id=family.id, school_id=school_id or None, year_group=year_group,
                  remission_category=remission_category,
                  remission_verified_on=remission_verified_on if remission_category != "none" else None,
                  send=send)
    session.add(pupil)
    session.flush()
    # No names in the append-only audit trail: they must be erasable at the end of retention.
    record(session, actor, "pupil.added", pupil, f"Added pupil #{pupil.id} to family #{family.id}",
           {"remission": remission_category})
    return pupil


def search_families(session: Session, q: str = "", limit: int = 100) -> list[Family]:
    query = select(Family).order_by(Family.name).limit(limit)
    if q.strip():
        like = f"%{q.strip()}%"
        query = query.where(Family.name.ilike(like) | Family.id.in_(
            select(Pupil.family_id).where(Pupil.name.ilike(like))))
    return list(session.scalars(query))
