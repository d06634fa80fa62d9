"""Users: create, change, authenticate, end their sessions. Passwords are only ever stored hashed."""
import hashlib
import secrets
from datetime import timedelta
from functools import cache

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from ..audit.services import record
from ..errors import InvalidInput
from ..mail import send_when_committed
from ..schools.models import School
from ..timeutil import utcnow
from .models import RememberToken, Role, User, new_session_token

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
    session.flush()


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
