"""Users: create, change, authenticate, end their sessions. Passwords are only ever stored hashed."""
import hashlib
import secrets
from datetime import timedelta
from functools import cache

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from ..audit.services import record
from ..errors import InvalidInput, LoanServiceError, NotFound
from ..mail import send_when_committed
from ..schools.models import School
from ..timeutil import utcnow
from .models import Invitation, RememberToken, Role, User, UserSession, new_session_token

MIN_PASSWORD_LENGTH = 10
# Compared against when the email is unknown, so both paths take the same time.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user with this email and password, or None."""
    user = find_user(session, email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    user.last_login_at = utcnow()
    return user


@cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 passwords most often found in leaks (zxcvbn's list, from real breaches), in lower case."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_new_password(password: str, email: str = "", field: str = "password") -> None:
    """Refuse a password that is short, common, the account's email or one character repeated."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.", field=field)
    lowered = password.lower()
    email = normalise_email(email)
    if lowered in _common_passwords() or len(set(lowered)) <= 2:
        raise InvalidInput("That password is one of the most common, and among the first any attacker tries: "
                           "choose another. A few unrelated words make a strong one.", field=field)
    if email and lowered in (email, email.partition("@")[0]):
        raise InvalidInput("A password cannot be your email address: choose another.", field=field)


# ---------------------------------------------------------------- sessions


def end_sessions(session: Session, user: User) -> None:
    """End every session of ``user`` on every device, copies of the cookie and "keep me signed in" included."""
    user.session_token = new_session_token()
    session.execute(delete(RememberToken).where(RememberToken.user_id == user.id)
                    .execution_options(synchronize_session=False))
    session.execute(delete(UserSession).where(UserSession.user_id == user.id)
                    .execution_options(synchronize_session=False))
    session.flush()


def start_session(session: Session, user: User, user_agent: str = "", remember_token: str | None = None) -> str:
    """Record a new signed-in browser for ``user``; return its key (kept in the browser's session cookie)."""
    key = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, key_sha256=_token_digest(key), user_agent=(user_agent or "")[:300],
                            remember_sha256=_token_digest(remember_token) if remember_token else None))
    session.flush()
    return key


def live_session(key: str):
    """A condition for a query of users: the browser's session, by its key, is one of the user's and has not
    been ended (read with the user in one statement on every signed-in request)."""
    return exists().where(UserSession.key_sha256 == _token_digest(key), UserSession.user_id == User.id)


def session_is_live(session: Session, user_id: int, key: str) -> bool:
    """Whether the browser's session, by its key, has not been ended."""
    return session.scalar(select(UserSession.id).where(UserSession.key_sha256 == _token_digest(key),
                                                       UserSession.user_id == user_id)) is not None


def sessions_of(session: Session, user: User) -> list[UserSession]:
    return list(session.scalars(select(UserSession).where(UserSession.user_id == user.id)
                                .order_by(UserSession.created_at.desc(), UserSession.id.desc())))


def current_session_id(session: Session, user: User, key: str | None) -> int | None:
    if not key:
        return None
    return session.scalar(select(UserSession.id).where(UserSession.key_sha256 == _token_digest(key),
                                                       UserSession.user_id == user.id))


def end_session(session: Session, user: User, session_id: int) -> UserSession:
    """End one of ``user``'s own sessions (its "keep me signed in" token too); another person's is not found."""
    row = session.get(UserSession, session_id)
    if row is None or row.user_id != user.id:
        raise NotFound("That session is not one of yours, or it has already ended.")
    if row.remember_sha256:
        session.execute(delete(RememberToken).where(RememberToken.token_sha256 == row.remember_sha256)
                        .execution_options(synchronize_session=False))
    session.delete(row)
    session.flush()
    record(session, user, "user.session_ended", user, "Ended a session on another device")
    return row


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_remember_token(session: Session, user: User, days: int, replacing: str | None = None) -> str:
    """A new "keep me signed in" token for one browser (the one it replaces stops working); only its digest is kept."""
    if replacing:
        forget_remember_token(session, replacing)
    token = secrets.token_urlsafe(32)
    session.add(RememberToken(user_id=user.id, token_sha256=_token_digest(token),
                              expires_at=utcnow() + timedelta(days=days)))
    session.flush()
    return token


def forget_remember_token(session: Session, token: str) -> None:
    session.execute(delete(RememberToken).where(RememberToken.token_sha256 == _token_digest(token))
                    .execution_options(synchronize_session=False))


def user_for_remember_token(session: Session, token: str) -> User | None:
    """The active user a browser's unexpired "keep me signed in" token belongs to, or None."""
    if not token:
        return None
    row = session.scalar(select(RememberToken).where(RememberToken.token_sha256 == _token_digest(token)))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def change_password(session: Session, user: User, *, current: str, new: str) -> User:
    """Change one's own password: the current one must be right; every other session of theirs ends."""
    if not user.check_password(current or ""):
        raise InvalidInput("That is not your current password.", field="current_password")
    check_new_password(new, user.email, field="new_password")
    if user.check_password(new):
        raise InvalidInput("Choose a password different from the current one.", field="new_password")
    user.set_password(new)
    end_sessions(session, user)
    record(session, user, "user.password_changed", user, "Password changed by its owner")
    return user


def tell_of_failed_sign_ins(session: Session, config, email: str) -> None:
    """Mail an account's owner that it is seeing many failed sign-ins (nothing when there is no such account)."""
    user = find_user(session, email)
    if user is None:
        return
    hub = config.get("HUB_NAME", "The music hub")
    send_when_committed(session, config, to=user.email, subject=f"{hub}: many failed sign-ins to your account",
                        body=_MANY_FAILURES.format(name=user.name, hub=hub))


def _check_role(session: Session, role: str, school_id: int | None) -> tuple[Role, School | None]:
    """The role, and the school for a school user; only school users belong to a school."""
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role!r}.", field="role") from None
    if role is not Role.SCHOOL:
        # Refused rather than dropped: a school chosen with another role is most likely the wrong role,
        # and store staff or a hub manager sees every school's loans, not one school's.
        if school_id:
            raise InvalidInput("Only a school music lead belongs to a school: choose (none), or change the role "
                               "to School music lead.", field="school_id")
        return role, None
    school = session.get(School, school_id) if school_id else None
    if school is None:
        raise InvalidInput("A school user must belong to a school.", field="school_id")
    return role, school


def create_user(
    session: Session,
    actor,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    school_id: int | None = None,
) -> User:
    """Create an account; the email must be new."""
    email = normalise_email(email)
    if not email or "@" not in email:
        raise InvalidInput("Enter an email address.", field="email")
    if find_user(session, email) is not None:
        raise InvalidInput(f"There is already an account for {email}.", field="email")
    role, school = _check_role(session, role, school_id)
    check_new_password(password, email)
    user = User(email=email, name=name.strip() or email, role=role, school=school)
    user.set_password(password)
    session.add(user)
    session.flush()
    record(session, actor, "user.created", user, f"Created {role.label.lower()} {email}",
           {"role": role, "school": school.name if school else None})
    return user


def update_user(
    session: Session,
    actor,
    user: User,
    *,
    name: str,
    role: str,
    school_id: int | None,
    active: bool,
    password: str = "",
) -> User:
    """Change a user's name, role, school or access; optionally set a new password."""
    role, school = _check_role(session, role, school_id)
    if user.id == getattr(actor, "id", None) and (role is not Role.ADMIN or not active):
        raise InvalidInput("You cannot remove your own admin access.", field="role")
    changes = {}
    for attr, new in (("name", name.strip() or user.email), ("role", role.value),
                      ("school_id", school.id if school else None), ("active", active)):
        if getattr(user, attr) != new:
            changes[attr] = [getattr(user, attr), new]
            setattr(user, attr, new)
    user.school = school
    if password:
        check_new_password(password, user.email)
        user.set_password(password)
        changes["password"] = "changed"
    if "password" in changes or "active" in changes:
        end_sessions(session, user)  # a reset or a disabled account signs them out everywhere
    if changes:
        session.flush()
        record(session, actor, "user.edited", user, f"Changed {user.email}", changes)
    return user


def set_active(session: Session, actor, user: User, active: bool) -> User:
    """Deactivate a user (every session of theirs ends at once) or let them sign in again."""
    if user.id == getattr(actor, "id", None) and not active:
        raise InvalidInput("You cannot deactivate your own account.")
    if user.active == active:
        return user
    user.active = active
    if not active:
        end_sessions(session, user)
    session.flush()
    record(session, actor, "user.edited", user, f"{'Reactivated' if active else 'Deactivated'} {user.email}",
           {"active": [not active, active]})
    return user


def list_users(session: Session, roles: list[str] | None = None, q: str = ""):
    query = select(User).order_by(User.role, func.lower(User.name))
    if roles:
        query = query.where(User.role.in_(roles))
    if q.strip():
        like = f"%{q.strip().lower()}%"
        query = query.where(func.lower(User.email).like(like) | func.lower(User.name).like(like))
    return query


_MANY_FAILURES = """Hello {name},

Someone has tried many wrong passwords while signing in to your {hub} instrument loans account.

If it was you, you need do nothing. If not, your password kept them out: nobody has signed in with it.
Browsers you have signed in with before are not slowed down, so you can still sign in as usual.
If your password is short or used on other sites, change it once you are signed in (Password, in the menu).

We send this at most once an hour.
"""


# ---------------------------------------------------------------- invitations


class InvitationInvalid(LoanServiceError):
    """An invitation link that is unknown, expired or already used."""

    status_code = 410


INVITABLE_ROLES = (Role.ADMIN, Role.STAFF, Role.SCHOOL)


def invite_user(session: Session, actor, config, *, email: str, name: str, role: str, school_id: int | None,
                link_for) -> User:
    """Create a staff or school account with no password yet and mail it a single-use link to set one.

    ``link_for(token)`` makes the link's address. The account cannot sign in until the password is set.
    """
    email = normalise_email(email)
    if not email or "@" not in email or " " in email:
        raise InvalidInput("Enter an email address.", field="email")
    if find_user(session, email) is not None:
        raise InvalidInput(f"{email} already has an account: nobody was invited. Find it on the Users page.",
                           field="email")
    role, school = _check_role(session, role, school_id)
    if role not in INVITABLE_ROLES:
        raise InvalidInput("Parents and carers register themselves: invite staff and school users only.",
                           field="role")
    user = User(email=email, name=name.strip() or email, role=role, school=school)
    # Nobody knows this password: the account is used only once its owner sets one from the link.
    user.set_password(secrets.token_urlsafe(32))
    session.add(user)
    session.flush()
    hours = int(config.get("INVITE_LINK_HOURS", 72))
    token = secrets.token_urlsafe(32)
    session.add(Invitation(user_id=user.id, token_sha256=_token_digest(token),
                           invited_by_id=getattr(actor, "id", None), expires_at=utcnow() + timedelta(hours=hours)))
    session.flush()
    record(session, actor, "user.invited", user, f"Invited {role.label.lower()} {email}",
           {"role": role, "school": school.name if school else None})
    hub = config.get("HUB_NAME", "The music hub")
    send_when_committed(session, config, to=email, subject=f"{hub}: you are invited to the instrument loans service",
                        body=_INVITED.format(name=user.name, hub=hub, role=role.label.lower(), link=link_for(token),
                                             hours=hours, inviter=getattr(actor, "name", "A hub manager")))
    return user


def check_invitation(session: Session, token: str) -> Invitation:
    """The invitation a link carries, while it can still be used; else InvitationInvalid with a clear message."""
    row = session.scalar(select(Invitation).where(Invitation.token_sha256 == _token_digest(token or "")))
    if row is None:
        raise InvitationInvalid("This invitation link is not valid: check you copied the whole link from the "
                                "email, or ask a hub manager to invite you again.")
    if row.used_at is not None:
        raise InvitationInvalid("This invitation link has already been used to set a password: sign in with it, "
                                "or ask a hub manager to reset it.")
    if row.expires_at <= utcnow():
        raise InvitationInvalid("This invitation link has expired: ask a hub manager to invite you again.")
    return row


def accept_invitation(session: Session, token: str, password: str) -> User:
    """Set the invited user's password from the link; the link then stops working."""
    invitation = check_invitation(session, token)
    used = session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if used.rowcount != 1:  # the same link, used twice at once
        raise InvitationInvalid("This invitation link has already been used to set a password.")
    user = invitation.user
    check_new_password(password, user.email, field="new_password")
    user.set_password(password)
    end_sessions(session, user)
    record(session, user, "user.invitation_accepted", user, "Password set from the invitation")
    return user


def reinvite(session: Session, actor, config, user: User, link_for) -> User:
    """Send a fresh invitation to an account that has not yet set its password (earlier links stop working)."""
    pending = session.scalars(select(Invitation).where(Invitation.user_id == user.id)).all()
    if not pending or any(i.used_at for i in pending):
        raise InvalidInput(f"{user.email} has already set a password.")
    for row in pending:
        session.delete(row)
    hours = int(config.get("INVITE_LINK_HOURS", 72))
    token = secrets.token_urlsafe(32)
    session.add(Invitation(user_id=user.id, token_sha256=_token_digest(token),
                           invited_by_id=getattr(actor, "id", None), expires_at=utcnow() + timedelta(hours=hours)))
    session.flush()
    record(session, actor, "user.invited", user, f"Invited {user.email} again")
    hub = config.get("HUB_NAME", "The music hub")
    send_when_committed(session, config, to=user.email,
                        subject=f"{hub}: you are invited to the instrument loans service",
                        body=_INVITED.format(name=user.name, hub=hub, role=user.role.label.lower(),
                                             link=link_for(token), hours=hours,
                                             inviter=getattr(actor, "name", "A hub manager")))
    return user


def invited_user_ids(session: Session, user_ids: list[int]) -> set[int]:
    """Of ``user_ids``, those invited who have not yet set their password."""
    if not user_ids:
        return set()
    return set(session.scalars(select(Invitation.user_id).where(Invitation.user_id.in_(user_ids))
                               .group_by(Invitation.user_id)
                               .having(func.count(Invitation.used_at) == 0)))


_INVITED = """Hello {name},

{inviter} has invited you to {hub}'s instrument loans service as {role}.

Set your password with this link (it works once, for {hours} hours):

{link}

Then sign in with this email address and that password. If you did not expect this email, you can ignore it.
"""
