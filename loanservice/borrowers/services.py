"""Borrowers: families and their pupils. Session first, flush, never commit."""
import csv
import enum
import io
from collections.abc import Iterator
from datetime import date

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import Session, joinedload, selectinload

from ..accounts.models import User
from ..audit.services import assign_changed, record
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..inventory.csvio import spreadsheet_cell
from ..inventory.services import escape_like
from ..schools.models import School
from ..schools.services import tidy_address
from ..timeutil import today
from .models import BORROWER_KINDS, Family, OtherBorrower, Pupil, RemissionCategory, RemissionClaim, borrower_kind


def add_family(session: Session, actor, *, name: str, email: str = "", phone: str = "", address: str = "") -> Family:
    """Record a parent or carer who hires instruments for their children."""
    family = Family()
    _set_family(family, name=name, email=email, phone=phone, address=address)
    session.add(family)
    session.flush()
    record(session, actor, "family.added", family, f"Added family #{family.id}")
    return family


def add_other_borrower(session: Session, actor, *, name: str, description: str = "", email: str = "",
                       phone: str = "") -> OtherBorrower:
    """Record an ensemble, a teacher or a partner organisation; names are not shared."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give their name.", field="name")
    if session.scalar(select(OtherBorrower.id).where(func.lower(OtherBorrower.name) == name.lower())) is not None:
        raise InvalidInput(f"{name} is already recorded: find them on the Borrowers page.", field="name")
    other = OtherBorrower(name=name, description=description.strip(), email=email.strip().lower(),
                          phone=phone.strip())
    session.add(other)
    session.flush()
    record(session, actor, "other_borrower.added", other, f"Added {name}")
    return other


def update_family(session: Session, actor, family: Family, *, name: str, email: str = "", phone: str = "",
                  address: str = "") -> Family:
    """Change a family's contact details (their loans keep the terms they were made on)."""
    changed = _set_family(family, name=name, email=email, phone=phone, address=address)
    if changed:
        session.flush()
        # Which fields changed, not their values: no personal data in the append-only trail.
        record(session, actor, "family.changed", family, f"Changed family #{family.id}: {', '.join(changed)}",
               {"fields": changed})
    return family


def _set_family(family: Family, *, name: str, email: str, phone: str, address: str) -> list[str]:
    if not name.strip():
        raise InvalidInput("Give the parent or carer's name.", field="name")
    return assign_changed(family, name=name.strip(), email=email.strip().lower(), phone=phone.strip(),
                          address=tidy_address(address))


def add_pupil(
    session: Session, actor, family: Family, *, name: str, school_id: int | None = None,
    year_group: int | None = None, remission_category: str = RemissionCategory.NONE,
    remission_verified_on: date | None = None, send: bool = False,
) -> Pupil:
    """Add a pupil to a family; remission needs the date its eligibility was verified."""
    pupil = Pupil(family_id=family.id)
    _set_pupil(session, pupil, name=name, school_id=school_id, year_group=year_group,
               remission_category=remission_category, remission_verified_on=remission_verified_on, send=send)
    session.add(pupil)
    session.flush()
    # No names in the append-only audit trail: they must be erasable at the end of retention.
    record(session, actor, "pupil.added", pupil, f"Added pupil #{pupil.id} to family #{family.id}",
           {"remission": remission_category})
    return pupil


def update_pupil(
    session: Session, actor, pupil: Pupil, *, name: str, school_id: int | None = None,
    year_group: int | None = None, remission_category: str = RemissionCategory.NONE,
    remission_verified_on: date | None = None, send: bool = False,
) -> Pupil:
    """Change a pupil's details. Loans already made keep the fee and remission copied onto them."""
    changed = _set_pupil(session, pupil, name=name, school_id=school_id, year_group=year_group,
                         remission_category=remission_category, remission_verified_on=remission_verified_on,
                         send=send)
    if remission_category != RemissionCategory.NONE:
        _resolve_claim(session, pupil)  # staff recorded a verified category: the parent's claim is answered
    if changed:
        session.flush()
        record(session, actor, "pupil.changed", pupil, f"Changed pupil #{pupil.id}: {', '.join(changed)}",
               {"fields": changed, "remission": pupil.remission_category})
    return pupil


def _set_pupil(session: Session, pupil: Pupil, *, name: str, school_id: int | None, year_group: int | None,
               remission_category: str, remission_verified_on: date | None, send: bool) -> list[str]:
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
    return assign_changed(pupil, name=name.strip(), school_id=school_id or None, year_group=year_group,
                   remission_category=remission_category,
                   remission_verified_on=remission_verified_on if remission_category != "none" else None,
                   send=send)


def families_query(q: str = ""):
    """The select of families whose name or email, or a pupil's name, contains ``q`` (any case), by name.

    A select rather than a list, for the page to page through; their pupils come with them.
    """
    query = select(Family).options(selectinload(Family.pupils)).order_by(Family.name, Family.id)
    like = _like(q)
    if like:
        # A UNION of three index look-ups (the trigram indexes on PostgreSQL), not an OR with a
        # subquery, which no index serves: the whole family table was read for each keystroke.
        query = query.where(Family.id.in_(union(
            select(Family.id).where(Family.name.ilike(like, escape="\\")),
            select(Family.id).where(Family.email.ilike(like, escape="\\")),
            select(Pupil.family_id).where(Pupil.name.ilike(like, escape="\\"), Pupil.family_id.is_not(None)),
        )))
    return query


EXPORT_COLUMNS = ["kind", "name", "family", "email", "phone", "address", "school", "year_group"]


def export_borrowers(session: Session, q: str = "") -> Iterator[str]:
    """The borrowers the list shows for ``q`` (every one when blank) as CSV: families with their pupils,
    then schools, then ensembles, teachers and partners."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def row(*values) -> str:
        writer.writerow([spreadsheet_cell(value) for value in values])
        data = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return data

    yield row(*EXPORT_COLUMNS)
    for family in session.scalars(families_query(q).options(
            selectinload(Family.pupils).joinedload(Pupil.school)).execution_options(yield_per=500)):
        yield row("family", family.name, "", family.email, family.phone, family.address, "", "")
        for pupil in family.pupils:
            yield row("pupil", pupil.name, family.name, "", "", "", pupil.school.name if pupil.school else "",
                      pupil.year_label)
    for school in find_schools(session, q):
        yield row("school", school.name, "", school.contact_email, school.phone, school.address, school.urn or "", "")
    for other in find_other_borrowers(session, q):
        yield row("other", other.name, other.description, other.email, other.phone, "", "", "")


def find_schools(session: Session, q: str = "") -> list[School]:
    """The schools whose name contains ``q`` (every school when it is blank), by name."""
    query = select(School).order_by(School.name, School.id)
    if like := _like(q):
        query = query.where(School.name.ilike(like, escape="\\"))
    return list(session.scalars(query))


def find_other_borrowers(session: Session, q: str = "") -> list[OtherBorrower]:
    """Ensembles, teachers and partners whose name or description contains ``q`` (all when blank), by name."""
    query = select(OtherBorrower).order_by(OtherBorrower.name, OtherBorrower.id)
    if like := _like(q):
        query = query.where(or_(OtherBorrower.name.ilike(like, escape="\\"),
                                OtherBorrower.description.ilike(like, escape="\\")))
    return list(session.scalars(query))


def _like(q: str) -> str:
    """A LIKE pattern for text containing ``q`` (its own % and _ taken literally), or "" for a blank search."""
    q = q.strip()
    return f"%{escape_like(q)}%" if q else ""


# ---------------------------------------------------------------- remission claims


class ClaimDecision(enum.StrEnum):
    """What staff decide about the remission a parent stated, before an instrument is lent."""

    VERIFY = "verify"
    REFUSE = "refuse"


class RemissionUnverified(LoanServiceError):
    """A pupil's parent stated a remission category that staff have not verified or refused yet."""

    status_code = 409


def claims_for(session: Session, pupils: list[Pupil]) -> dict[int, RemissionClaim]:
    """The remission claims waiting for staff among ``pupils``, by pupil id (one query)."""
    if not pupils:
        return {}
    rows = session.scalars(select(RemissionClaim).where(RemissionClaim.pupil_id.in_([p.id for p in pupils])))
    return {claim.pupil_id: claim for claim in rows}


def pending_claim(session: Session, borrower) -> RemissionClaim | None:
    """The remission a pupil's parent stated that staff have not yet verified or refused (None for others)."""
    if not isinstance(borrower, Pupil):
        return None
    return session.get(RemissionClaim, borrower.id)


def _resolve_claim(session: Session, pupil: Pupil) -> None:
    claim = session.get(RemissionClaim, pupil.id)
    if claim is not None:
        session.delete(claim)
        session.flush()


def verify_claim(session: Session, actor, pupil: Pupil, on: date | None = None) -> Pupil:
    """Record the category the parent stated as verified (today unless ``on``): loans made from now take it."""
    claim = pending_claim(session, pupil)
    if claim is None:
        raise LoanServiceError(f"{pupil.name} has no remission claim waiting to be verified.")
    category, on = claim.category, on or today()
    if on > today():
        raise InvalidInput("The verification date is in the future.", field="remission_verified_on")
    pupil.remission_category, pupil.remission_verified_on = category, on
    _resolve_claim(session, pupil)
    record(session, actor, "pupil.remission_verified", pupil,
           f"Verified {RemissionCategory(category).label.lower()} for pupil #{pupil.id} on {on:%-d %b %Y}",
           {"remission": category, "verified_on": on})
    return pupil


def refuse_claim(session: Session, actor, pupil: Pupil) -> Pupil:
    """Turn down the category the parent stated: the pupil keeps what staff had recorded (usually none)."""
    claim = pending_claim(session, pupil)
    if claim is None:
        raise LoanServiceError(f"{pupil.name} has no remission claim waiting to be verified.")
    category = claim.category
    _resolve_claim(session, pupil)
    record(session, actor, "pupil.remission_refused", pupil,
           f"Refused the claim of {RemissionCategory(category).label.lower()} for pupil #{pupil.id}",
           {"claimed": category})
    return pupil


def decide_claim(session: Session, actor, borrower, decision: str | None) -> None:
    """Verify or refuse a pupil's waiting remission claim as staff chose; nothing when there is none.

    Refused without a decision: an instrument is never lent at the full fee to a pupil whose parent
    said they qualify for remission, nor for free to one who does not, without someone checking.
    """
    claim = pending_claim(session, borrower)
    if claim is None:
        return
    if decision == ClaimDecision.VERIFY:
        verify_claim(session, actor, borrower)
    elif decision == ClaimDecision.REFUSE:
        refuse_claim(session, actor, borrower)
    else:
        raise RemissionUnverified(unverified_message(borrower, claim), field="remission_claim")


def unverified_message(pupil: Pupil, claim: RemissionClaim) -> str:
    return (f"{pupil.name}'s parent or carer says they are eligible for remission ({claim.label.lower()}): "
            "verify the claim or refuse it before the instrument is lent.")


# ---------------------------------------------------------------- any kind of borrower


def audit_name(borrower) -> str:
    """How the append-only audit trail names a borrower: people by record number only, so that
    erasing a family's or pupil's details at the end of retention leaves no name behind."""
    if isinstance(borrower, (Pupil, Family)):
        return f"{borrower_kind(borrower)} #{borrower.id}"
    return str(borrower)


def get_borrower(session: Session, kind: str, borrower_id: int):
    """The pupil, family, school or other borrower named by ``kind`` and id, or NotFound."""
    model = BORROWER_KINDS.get(kind)
    borrower = session.get(model, borrower_id) if model is not None else None
    if borrower is None:
        raise NotFound("There is no such borrower.", field="borrower")
    return borrower


def find_borrowers(session: Session, q: str, *, limit: int = 15) -> list:
    """Pupils, families, schools and other borrowers whose name contains ``q`` (each kind up to ``limit``)."""
    q = q.strip()
    if not q:
        return []
    like = f"%{escape_like(q)}%"
    found = list(session.scalars(select(Pupil).where(Pupil.name.ilike(like, escape="\\"))
                                 .options(joinedload(Pupil.school)).order_by(Pupil.name, Pupil.id).limit(limit)))
    for model in (Family, School, OtherBorrower):
        found += session.scalars(select(model).where(model.name.ilike(like, escape="\\"))
                                 .order_by(model.name, model.id).limit(limit))
    return found


# ---------------------------------------------------------------- a parent's own family


def family_of(session: Session, user: User, *, create: bool = False) -> Family | None:
    """The family a parent's sign-in belongs to (made on first need for parents set up by staff)."""
    family = session.scalar(select(Family).where(Family.user_id == user.id))
    if family is None and create:
        family = Family(name=user.name, email=user.email, user_id=user.id)
        session.add(family)
        session.flush()
    return family


def child_of(session: Session, user: User, pupil_id: int | None, *, for_update: bool = False) -> Pupil:
    """One of the parent's own children, or NotFound: another family's child does not exist for them."""
    query = (select(Pupil).join(Family, Pupil.family_id == Family.id)
             .where(Pupil.id == pupil_id, Family.user_id == user.id))
    if for_update:
        query = query.with_for_update(of=Pupil)
    pupil = session.scalar(query)
    if pupil is None:
        raise NotFound("There is no such child in your family.", field="pupil_id")
    return pupil
