"""Schools: the hub's admins keep their details (the address goes on delivery notes and letters)."""
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit.services import assign_changed, record
from ..errors import InvalidInput
from .models import School


def save_school(session: Session, actor, school: School | None, *, name: str, urn: str = "", address: str = "",
                contact_name: str = "", contact_email: str = "") -> School:
    """Add a school (``school`` None) or change one; names and URNs are unique."""
    name, urn = name.strip(), urn.strip() or None
    if not name:
        raise InvalidInput("Give the school's name.", field="name")
    others = select(School).where(School.id != school.id) if school is not None else select(School)
    if session.scalar(others.where(School.name == name)) is not None:
        raise InvalidInput(f"There is already a school called {name}.", field="name")
    if urn and session.scalar(others.where(School.urn == urn)) is not None:
        raise InvalidInput(f"Another school has the URN {urn}.", field="urn")
    adding = school is None
    if adding:
        school = School()
        session.add(school)
    changed = assign_changed(school, name=name, urn=urn, address=tidy_address(address),
                             contact_name=contact_name.strip(), contact_email=contact_email.strip().lower())
    session.flush()
    if adding:
        record(session, actor, "school.added", school, f"Added school {name}")
    elif changed:
        record(session, actor, "school.changed", school, f"Changed school {name}: {', '.join(changed)}",
               {"fields": changed})
    return school


def tidy_address(address: str) -> str:
    """A postal address as lines: each trimmed, blank ones dropped (forms send \\r\\n)."""
    return "\n".join(line.strip() for line in address.replace("\r\n", "\n").split("\n") if line.strip())
