"""Users: create, change, authenticate. Passwords are only ever stored hashed."""
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..audit.services import record
from ..errors import InvalidInput
from ..schools.models import School
from ..timeutil import utcnow
from .models import Role, User

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


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )


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
    _check_password(password)
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
        _check_password(password)
        user.set_password(password)
        changes["password"] = "changed"
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
