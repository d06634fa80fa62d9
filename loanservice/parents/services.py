"""Parents: registration, confirmation and reset links, their children, and what their home page shows.

Registration and reset never say whether an address has an account: the caller shows the same
page either way, and the address's owner gets a mail that explains.
"""
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import generate_password_hash

from ..accounts.models import Role, User
from ..accounts.services import check_new_password, end_sessions, find_user, normalise_email
from ..audit.services import record
from ..borrowers.models import Family, Pupil, RemissionCategory, RemissionClaim
from ..borrowers.services import claims_for, family_of
from ..documents.models import Agreement
from ..documents.services import latest_agreements
from ..errors import InvalidInput, LoanServiceError, NotAllowed, NotFound
from ..loans.models import Loan, LoanStatus
from ..locks import lock
from ..mail import send_when_committed
from ..reservations.models import Reservation
from ..reservations.services import cancel_reservation, reservations_with_places
from ..schools.models import School
from ..signals import parent_registered, reserving
from ..timeutil import utcnow
from .models import AccountToken, ParentAccount, ParentRequest, RequestKind, TokenPurpose

LinkMaker = Callable[[str], str]


class LinkInvalid(LoanServiceError):
    """A confirmation or reset link that is unknown, expired or already used."""

    status_code = 410


def _hub(config) -> str:
    return config.get("HUB_NAME", "The music hub")


# ---------------------------------------------------------------- links


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str]:
    """A fresh link token and its digest."""
    token = secrets.token_urlsafe(32)
    return token, _digest(token)


def issue_token(session: Session, user: User, purpose: TokenPurpose, hours: int) -> str:
    """A new single-use link token for ``user``; only its digest is stored."""
    token, digest = _new_token()
    session.add(AccountToken(user_id=user.id, purpose=purpose, token_sha256=digest,
                             expires_at=utcnow() + timedelta(hours=hours)))
    session.flush()
    return token


def check_token(session: Session, token: str, purpose: TokenPurpose) -> AccountToken:
    """The token's record if the link can still be used, else LinkInvalid with a clear message."""
    row = session.scalar(select(AccountToken).where(AccountToken.token_sha256 == _digest(token or ""),
                                                    AccountToken.purpose == purpose))
    what = "confirmation" if purpose is TokenPurpose.CONFIRM else "password reset"
    if row is None:
        raise LinkInvalid(f"This {what} link is not valid. Check that the whole link was copied.")
    if row.used_at is not None:
        raise LinkInvalid(f"This {what} link has already been used. Each link works once.")
    if row.expires_at <= utcnow():
        raise LinkInvalid(f"This {what} link has expired. Ask for a new one.")
    return row


def _use_token(session: Session, token: str, purpose: TokenPurpose) -> User:
    """Mark the link used, exactly once even when it is followed twice at the same moment."""
    row = check_token(session, token, purpose)
    used = session.execute(
        update(AccountToken).where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if used != 1:
        raise LinkInvalid("This link has already been used. Each link works once.")
    return session.get(User, row.user_id)


def is_confirmed(session: Session, user: User) -> bool:
    """Whether the parent's email is confirmed (parents that staff set up count as confirmed)."""
    account = session.get(ParentAccount, user.id)
    return account is None or account.email_confirmed_at is not None


def require_confirmed(session: Session, user: User) -> None:
    if not is_confirmed(session, user):
        raise NotAllowed("Confirm your email address first: follow the link in the email we sent you.")


@reserving.connect
def _refuse_unconfirmed_parent(user: User, *, session: Session) -> None:
    """A parent reserves only once their email address is confirmed."""
    require_confirmed(session, user)


def _mark_confirmed(session: Session, user: User) -> None:
    account = session.get(ParentAccount, user.id)
    if account is not None and account.email_confirmed_at is None:
        account.email_confirmed_at = utcnow()


# ---------------------------------------------------------------- registration and reset


def register_parent(session: Session, config, *, name: str, email: str, password: str,
                    confirm_link: LinkMaker, reset_page: str) -> None:
    """Create a parent's account and family and mail a confirmation link.

    If the address already has an account, create nothing and tell its owner instead.
    """
    email = normalise_email(email)
    if not email or "@" not in email:
        raise InvalidInput("Enter an email address.", field="email")
    check_new_password(password, email)
    password_hash = generate_password_hash(password)  # hashed either way, so both take as long
    existing = find_user(session, email)
    if existing is None:
        try:
            with session.begin_nested():
                user = User(email=email, name=name.strip() or email, role=Role.PARENT, password_hash=password_hash)
                session.add(user)
                session.flush()
        except IntegrityError:
            existing = find_user(session, email)  # registered at the same moment
    if existing is not None:
        send_when_committed(session, config, to=email, subject=f"{_hub(config)}: someone tried to register",
                            body=_ALREADY_REGISTERED.format(hub=_hub(config), reset=reset_page))
        return
    session.add(ParentAccount(user_id=user.id))
    family = Family(name=user.name, email=email, user_id=user.id)
    session.add(family)
    session.flush()
    record(session, user, "parent.registered", user, f"Parent registered, family #{family.id}")
    parent_registered.send(user, session=session)
    token = issue_token(session, user, TokenPurpose.CONFIRM, int(config.get("CONFIRM_LINK_HOURS", 48)))
    _send_confirmation(session, config, user, confirm_link(token))


def resend_confirmation(session: Session, config, user: User, confirm_link: LinkMaker) -> None:
    if is_confirmed(session, user):
        raise InvalidInput("Your email address is already confirmed.")
    token = issue_token(session, user, TokenPurpose.CONFIRM, int(config.get("CONFIRM_LINK_HOURS", 48)))
    _send_confirmation(session, config, user, confirm_link(token))


def resend_confirmation_to(session: Session, config, email: str, confirm_link: LinkMaker) -> None:
    """Mail a new confirmation link to a parent whose address is not confirmed yet; any other address gets nothing."""
    user = find_user(session, email)
    if user is None or not user.active or user.role != Role.PARENT or is_confirmed(session, user):
        return
    resend_confirmation(session, config, user, confirm_link)


def _send_confirmation(session, config, user: User, link: str) -> None:
    send_when_committed(session, config, to=user.email, subject=f"{_hub(config)}: confirm your email address",
                        body=_CONFIRM.format(name=user.name, hub=_hub(config), link=link,
                                             hours=config.get("CONFIRM_LINK_HOURS", 48)))


def confirm_email(session: Session, token: str) -> User:
    """Use a confirmation link: the parent's email is confirmed."""
    user = _use_token(session, token, TokenPurpose.CONFIRM)
    _mark_confirmed(session, user)
    record(session, user, "parent.confirmed", user, "Email address confirmed")
    session.flush()
    return user


def request_password_reset(session: Session, config, email: str, reset_link: LinkMaker) -> None:
    """Mail a reset link to a parent's address; staff are told to ask a hub manager; unknown addresses get nothing.

    An unknown address makes a token all the same (and keeps it nowhere), so that the answer takes as
    long either way and does not tell whether the address has an account.
    """
    user = find_user(session, email)
    if user is None or not user.active:
        _new_token()
        return
    if user.role != Role.PARENT:
        _new_token()
        send_when_committed(session, config, to=user.email, subject=f"{_hub(config)}: password reset",
                            body=_STAFF_RESET.format(hub=_hub(config)))
        return
    token = issue_token(session, user, TokenPurpose.RESET, int(config.get("RESET_LINK_HOURS", 2)))
    send_when_committed(session, config, to=user.email, subject=f"{_hub(config)}: reset your password",
                        body=_RESET.format(name=user.name, hub=_hub(config), link=reset_link(token),
                                           hours=config.get("RESET_LINK_HOURS", 2)))


def reset_password(session: Session, token: str, password: str) -> User:
    """Use a reset link to set a new password; other reset links, and every session, of the account stop working."""
    user = _use_token(session, token, TokenPurpose.RESET)
    check_new_password(password, user.email)
    user.set_password(password)
    end_sessions(session, user)
    _mark_confirmed(session, user)  # the link reached them: the address is theirs
    session.execute(update(AccountToken).where(
        AccountToken.user_id == user.id, AccountToken.purpose == TokenPurpose.RESET, AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    record(session, user, "parent.password_reset", user, "Password reset by email link")
    session.flush()
    return user


# ---------------------------------------------------------------- children


@dataclass
class ChildDetails:
    name: str
    school_id: int | None = None
    year_group: int | None = None
    claimed_remission: str = RemissionCategory.NONE


def _apply_child(session: Session, pupil: Pupil, details: ChildDetails) -> None:
    name = (details.name or "").strip()
    if not name:
        raise InvalidInput("Enter your child's name.", field="name")
    if details.school_id and session.get(School, details.school_id) is None:
        raise InvalidInput("Choose a school from the list.", field="school_id")
    if details.year_group is not None and not 0 <= details.year_group <= 13:
        raise InvalidInput("Choose a year group from Reception to Year 13.", field="year_group")
    try:
        claimed = RemissionCategory(details.claimed_remission or RemissionCategory.NONE)
    except ValueError:
        raise InvalidInput("Choose an eligibility from the list.", field="claimed_remission") from None
    pupil.name, pupil.school_id, pupil.year_group = name, details.school_id or None, details.year_group
    session.flush()
    claim = session.get(RemissionClaim, pupil.id)
    if claimed is RemissionCategory.NONE:
        if claim is not None:
            session.delete(claim)
    elif claim is None:
        session.add(RemissionClaim(pupil_id=pupil.id, category=claimed))
    elif claim.category != claimed:
        claim.category, claim.stated_at = claimed, utcnow()
    session.flush()


def add_child(session: Session, user: User, details: ChildDetails) -> Pupil:
    """Add a child to the parent's family; a stated remission eligibility waits for staff to verify it."""
    family = family_of(session, user, create=True)
    pupil = Pupil(name="", family_id=family.id)
    session.add(pupil)
    _apply_child(session, pupil, details)
    record(session, user, "pupil.added", pupil, f"Child added by their parent, family #{family.id}")
    return pupil


def update_child(session: Session, user: User, pupil: Pupil, details: ChildDetails) -> Pupil:
    _check_no_open_loan(session, pupil, "changed")
    _apply_child(session, pupil, details)
    record(session, user, "pupil.edited", pupil, "Child's details changed by their parent")
    return pupil


def _check_no_open_loan(session: Session, pupil: Pupil, verb: str) -> None:
    if session.scalar(select(exists().where(Loan.pupil_id == pupil.id, Loan.closed_on.is_(None)))):
        raise LoanServiceError(f"{pupil.name} has an instrument on loan (or waiting for a signed agreement), so "
                               f"their details cannot be {verb} here. Contact the hub.")


def remove_child(session: Session, user: User, pupil: Pupil, config) -> None:
    """Take a child off the family: their open reservations are cancelled first.

    A child with past loans stays on the hub's records (kept for the retention period), unlinked
    from the family; one without is deleted.
    """
    lock(session, pupil)  # a reservation for them waits, or is seen here if it came first
    _check_no_open_loan(session, pupil, "removed")
    for reservation in session.scalars(select(Reservation).where(Reservation.pupil_id == pupil.id)):
        if reservation.is_active:
            cancel_reservation(session, user, reservation, config, notify=False)
    claim = session.get(RemissionClaim, pupil.id)
    if claim is not None:
        session.delete(claim)
    has_history = session.scalar(select(exists().where(Loan.pupil_id == pupil.id))) or session.scalar(
        select(exists().where(Reservation.pupil_id == pupil.id)))
    record(session, user, "pupil.removed", pupil, "Child removed from their family by their parent")
    if has_history:
        pupil.family_id = None
    else:
        session.delete(pupil)
    session.flush()


# ---------------------------------------------------------------- loans and requests


def loan_of(session: Session, user: User, loan_id: int) -> Loan:
    """An open or past loan to the parent's family or one of its children, or NotFound."""
    loan = session.get(Loan, loan_id)
    family = family_of(session, user)
    if loan is None or family is None:
        raise NotFound("There is no such loan in your family.")
    hirer = loan.pupil.family_id if loan.pupil is not None else loan.family_id
    if hirer != family.id:
        raise NotFound("There is no such loan in your family.")
    return loan


def ask_about_loan(session: Session, user: User, loan: Loan, kind: str, note: str = "") -> ParentRequest:
    """Record a parent's request to return an instrument or exchange it for the next size, for staff."""
    try:
        kind = RequestKind(kind)
    except ValueError:
        raise InvalidInput("Choose what you would like to do.", field="kind") from None
    if loan.is_pending:
        raise LoanServiceError(f"The {loan.instrument.description} has not been handed over yet: it is waiting for "
                               "you to sign the loan agreement.")
    if loan.status is LoanStatus.CANCELLED:
        raise LoanServiceError(f"The loan of the {loan.instrument.description} was cancelled.")
    if not loan.is_open:
        raise LoanServiceError(f"{loan.instrument.description} has already come back.")
    pending = session.scalar(select(ParentRequest).where(
        ParentRequest.loan_id == loan.id, ParentRequest.kind == kind, ParentRequest.handled_at.is_(None)))
    if pending is not None:
        raise LoanServiceError(f"You have already asked to {kind.label.lower()}; the hub will be in touch.")
    family = family_of(session, user)
    request = ParentRequest(family_id=family.id, loan_id=loan.id, kind=kind, note=(note or "").strip()[:1000])
    session.add(request)
    session.flush()
    record(session, user, f"parent.request.{kind.value}", loan, kind.label, {"note": request.note},
           instrument=loan.instrument)
    return request


def open_requests(session: Session) -> list[ParentRequest]:
    return list(session.scalars(
        select(ParentRequest).where(ParentRequest.handled_at.is_(None))
        .options(joinedload(ParentRequest.loan).joinedload(Loan.instrument), joinedload(ParentRequest.family))
        .order_by(ParentRequest.created_at)))


def handle_request(session: Session, actor, request: ParentRequest) -> ParentRequest:
    if request.handled_at is not None:
        raise LoanServiceError("That request was already dealt with.")
    request.handled_at, request.handled_by_id = utcnow(), actor.id
    record(session, actor, "parent.request.handled", request.loan, f"Dealt with: {request.kind.label}")
    session.flush()
    return request


# ---------------------------------------------------------------- the parent's home


@dataclass
class ChildSummary:
    pupil: Pupil
    claim: RemissionClaim | None
    reservations: list = field(default_factory=list)  # (reservation, place on the waiting list or None)
    loans: list[Loan] = field(default_factory=list)
    has_open_loan: bool = False
    past_loans: list[Loan] = field(default_factory=list)  # returned, exchanged or lost: each has a receipt


@dataclass
class ParentOverview:
    family: Family | None
    confirmed: bool
    children: list[ChildSummary]
    family_loans: list[Loan]
    agreements: dict[int, Agreement]
    requests: dict[int, list[ParentRequest]]
    family_past_loans: list[Loan] = field(default_factory=list)


def parent_overview(session: Session, user: User, config) -> ParentOverview:
    """Everything a parent's home shows: each child's reservations, loans and documents."""
    family = family_of(session, user)
    confirmed = is_confirmed(session, user)
    if family is None:
        return ParentOverview(None, confirmed, [], [], {}, {})
    # A constant number of statements whatever the number of children (their schools come with
    # them), each reading the family's rows by index, whatever the size of the hub's stock.
    pupils = list(session.scalars(select(Pupil).where(Pupil.family_id == family.id)
                                  .options(joinedload(Pupil.school)).order_by(Pupil.name, Pupil.id)))
    claims = claims_for(session, pupils)
    everything = list(session.scalars(
        select(Loan).where(Loan.status != LoanStatus.CANCELLED,  # never handed over: nothing to show
                           (Loan.family_id == family.id) | Loan.pupil_id.in_([p.id for p in pupils] or [0]))
        # An inner join (every loan has its instrument): an outer one, around the instrument's own
        # joined type, is a nested join that SQLite builds for the whole instrument table first.
        .options(joinedload(Loan.instrument, innerjoin=True)).order_by(Loan.due_on)))
    loans = [loan for loan in everything if not loan.is_closed]
    # The latest returned first: what a parent looks for is the receipt of what they just brought back.
    past = sorted((loan for loan in everything if loan.is_closed), key=lambda loan: (loan.closed_on, loan.id),
                  reverse=True)
    reservations = reservations_with_places(session, pupils, config)
    children = []
    for pupil in pupils:
        mine = [loan for loan in loans if loan.pupil_id == pupil.id]
        children.append(ChildSummary(pupil=pupil, claim=claims.get(pupil.id), reservations=reservations[pupil.id],
                                     loans=mine, has_open_loan=bool(mine),
                                     past_loans=[loan for loan in past if loan.pupil_id == pupil.id]))
    agreements = latest_agreements(session, everything)
    requests: dict[int, list[ParentRequest]] = {}
    for request in session.scalars(select(ParentRequest).where(
            ParentRequest.family_id == family.id, ParentRequest.handled_at.is_(None))):
        requests.setdefault(request.loan_id, []).append(request)
    return ParentOverview(family, confirmed, children, [loan for loan in loans if loan.pupil_id is None],
                          agreements, requests, [loan for loan in past if loan.pupil_id is None])


# ---------------------------------------------------------------- the mails

_CONFIRM = """Hello {name},

Thank you for registering with {hub} instrument loans.

Confirm your email address by opening this link (it works once, for {hours} hours):

{link}

Until you confirm it you can add your children, but not reserve an instrument.

If you did not register, ignore this email: nothing more will happen.
"""

_ALREADY_REGISTERED = """Hello,

Someone (perhaps you) tried to register with {hub} instrument loans using this email address,
which already has an account. No new account was made.

If it was you, sign in with your password. If you have forgotten it, reset it here:

{reset}

If it was not you, you need do nothing: your account has not changed.
"""

_RESET = """Hello {name},

Someone (we hope you) asked to reset the password for your {hub} instrument loans account.

Choose a new password with this link (it works once, for {hours} hours):

{link}

If you did not ask, ignore this email: your password has not changed.
"""

_STAFF_RESET = """Hello,

Someone asked to reset the password for this {hub} instrument loans account. Staff and school
accounts are not reset by email: ask a hub manager to set a new password for you.

If you did not ask, you need do nothing.
"""
