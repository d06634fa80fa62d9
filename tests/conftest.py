"""Fixtures: a fresh, migrated database per test (SQLite by default, PostgreSQL when
DATABASE_URL says so), the app built by the real factory, and small factories."""
import os
import shutil
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from loanservice import create_app
from loanservice.config import TestConfig
from loanservice.extensions import db

DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith("postgresql")
# Nothing listens on these ports: a database and a Redis that are down.
UNREACHABLE_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5439/loanservice_down"
UNREACHABLE_REDIS_URL = "redis://127.0.0.1:6390/0"
REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")


def config_for(url: str, **extra) -> type:
    return type("Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, **extra})


def migrate(url: str) -> None:
    """Build the schema the way production does: through the migrations."""
    from flask_migrate import upgrade

    app = create_app(config_for(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    if ON_POSTGRES:
        migrate(DATABASE_URL)
        return DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_url(template_db, tmp_path):
    if ON_POSTGRES:
        yield DATABASE_URL
        truncate_all(DATABASE_URL)
    else:
        path = tmp_path / "test.sqlite3"
        shutil.copy(template_db, path)
        yield f"sqlite:///{path}"


def truncate_all(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        if tables:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def redis_or_skip() -> str:
    """The URL of a Redis that answers (REDIS_TEST_URL), or skip the test."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
    except RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_TEST_URL} ({error})")
    return REDIS_TEST_URL


@pytest.fixture
def app_config(database_url):
    return config_for(database_url)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@contextmanager
def in_app(app):
    """A fresh app context and session, as a separate request would have."""
    with app.app_context():
        yield db.session
        db.session.remove()


@contextmanager
def statements_run(app):
    """The SQL statements (and their parameters) that the database is sent inside the block."""
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    statements = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.fixture
def factory(app):
    return Factory(app)


class Factory:
    """Create committed rows in their own session and hand back detached objects."""

    def __init__(self, app):
        self.app = app
        self._n = 0

    def _keep(self, session, obj):
        session.commit()
        session.refresh(obj)
        session.expunge(obj)
        return obj

    def school(self, name=None, **kw):
        from loanservice.schools.models import School

        self._n += 1
        with in_app(self.app) as session:
            return self._keep(session, _add(session, School(name=name or f"School {self._n}", **kw)))

    def user(self, role="staff", email=None, password="correct-horse-battery", school=None, **kw):
        from loanservice.accounts.models import User

        self._n += 1
        if role == "school" and school is None:
            school = self.school()
        with in_app(self.app) as session:
            user = User(email=email or f"{role}{self._n}@example.org", name=kw.pop("name", f"{role.title()} {self._n}"),
                        role=role, school_id=school.id if school else None, **kw)
            user.set_password(password)
            return self._keep(session, _add(session, user))

    def instrument_type(self, name=None, family="strings", sizes=("1/2", "3/4", "4/4"), **kw):
        from loanservice.inventory.models import InstrumentType

        self._n += 1
        with in_app(self.app) as session:
            return self._keep(session, _add(session, InstrumentType(
                name=name or f"Violin {self._n}", family=family, sizes=list(sizes), **kw)))

    def instrument(self, instrument_type=None, asset_tag=None, size=None, **kw):
        from loanservice.inventory.services import InstrumentDetails, add_instrument

        instrument_type = instrument_type or self.instrument_type()
        fields = {k: kw.pop(k) for k in list(kw) if k in InstrumentDetails.field_names()}
        fields.setdefault("make", "Stentor")
        fields.setdefault("purchase_cost", Decimal("120.00"))
        fields.setdefault("purchased_on", date(2024, 9, 1))
        if size is None:
            size = instrument_type.sizes[0] if instrument_type.sizes else ""
        with in_app(self.app) as session:
            instrument = add_instrument(session, None,
                                        InstrumentDetails(type_id=instrument_type.id, size=size, **fields),
                                        asset_tag=asset_tag or "", **kw)
            return self._keep(session, instrument)

    def family(self, name=None, **kw):
        from loanservice.borrowers.models import Family

        self._n += 1
        with in_app(self.app) as session:
            return self._keep(session, _add(session, Family(name=name or f"Parent {self._n}", **kw)))

    def pupil(self, name=None, school=None, family=None, **kw):
        from loanservice.borrowers.models import Pupil

        self._n += 1
        family = family or self.family()
        with in_app(self.app) as session:
            return self._keep(session, _add(session, Pupil(
                name=name or f"Pupil {self._n}", school_id=school.id if school else None,
                family_id=family.id, **kw)))

    def other_borrower(self, name=None, **kw):
        from loanservice.borrowers.models import OtherBorrower

        self._n += 1
        with in_app(self.app) as session:
            return self._keep(session, _add(session, OtherBorrower(name=name or f"Ensemble {self._n}", **kw)))

    def term(self, name, starts_on, ends_on):
        from loanservice.loans.models import AcademicTerm

        with in_app(self.app) as session:
            return self._keep(session, _add(session, AcademicTerm(name=name, starts_on=starts_on, ends_on=ends_on)))

    def classroom_set(self, size=3, name=None, instruments=None, **kw):
        """A set of ``size`` new instruments of one type (or of ``instruments``)."""
        from loanservice.sets.services import save_set

        self._n += 1
        if instruments is None:
            kind = self.instrument_type(f"Ukulele {self._n}", sizes=())
            instruments = [self.instrument(kind) for _ in range(size)]
        with in_app(self.app) as session:
            classroom_set = save_set(session, None, name=name or f"Set {self._n}", tag=kw.pop("tag", f"SET-{self._n}"),
                                     tags=[i.asset_tag for i in instruments], **kw)
            return self._keep(session, classroom_set)

    def loan(self, instrument, borrower, **kw):
        """Check ``instrument`` out to ``borrower`` in its own transaction, as a request would; the loan's id."""
        from loanservice.inventory.tags import resolve_instrument
        from loanservice.loans import lending

        with in_app(self.app) as session:
            locked = resolve_instrument(session, instrument.asset_tag, for_update=True)
            model = type(borrower)
            loan = lending.open_loan(session, None, locked, session.get(model, borrower.id), **kw)
            session.commit()
            return loan.id

    def check_out_set(self, classroom_set, school, **kw):
        """Check ``classroom_set`` out to ``school`` (due in 60 days unless ``due_on``); the set loan's id."""
        from loanservice.schools.models import School
        from loanservice.sets import services
        from loanservice.sets.models import ClassroomSet
        from loanservice.timeutil import today

        kw.setdefault("due_on", today() + timedelta(days=60))
        with in_app(self.app) as session:
            set_loan = services.check_out_set(session, None, session.get(ClassroomSet, classroom_set.id),
                                              session.get(School, school.id), **kw)
            session.commit()
            return set_loan.id


def _add(session, obj):
    session.add(obj)
    session.flush()
    return obj


def tags_of(app, classroom_set):
    """The asset tags of a classroom set's instruments, in the set's order."""
    from loanservice.sets import services
    from loanservice.sets.models import ClassroomSet

    with in_app(app) as session:
        return [i.asset_tag for i in services.set_instruments(session, session.get(ClassroomSet, classroom_set.id))]


def login(client, user, password="correct-horse-battery"):
    """Sign in through the sign-in page's form, as a person would."""
    from .pages import submit

    response = submit(client, "/login", {"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def staff_client(client, factory):
    login(client, factory.user("staff"))
    return client


# ---------------------------------------------------------------- documents and notices


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd); ``.messages`` holds what it received."""
    import socket
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.messages = []
            self.refuse = set()  # answered "550" (for good)
            self.defer = set()  # answered "451" (try again later)

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address in self.refuse:
                return "550 No such mailbox"
            if address in self.defer:
                return "451 Mailbox busy, try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 Message accepted"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


def pdf_text(data: bytes) -> str:
    """The text of a PDF, pages joined, whitespace collapsed."""
    import io

    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages).split())


def attachment_text(message) -> str:
    """The text of a mail's one attachment, which must be a PDF."""
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    return pdf_text(part.get_content())


def label_pdf_text(pdf: bytes) -> str:
    """The text of a labels PDF as pdfium reads it, pages joined by newlines (layout kept, unlike ``pdf_text``)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    finally:
        document.close()


def decode_pdf(pdf: bytes, dpi: int = 300):
    """Every QR code on every page: (page index, text, corner points in mm from the page's top left)."""
    import pypdfium2 as pdfium
    import zxingcpp

    found = []
    document = pdfium.PdfDocument(pdf)
    try:
        for index in range(len(document)):
            page = document[index]
            image = page.render(scale=dpi / 72, grayscale=True).to_pil()
            for barcode in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode):
                p = barcode.position
                corners = [(c.x * 25.4 / dpi, c.y * 25.4 / dpi)
                           for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]
                found.append((index, barcode.text, corners))
            page.close()
    finally:
        document.close()
    return found


HIRE_CONDITIONS = ("Look after the instrument & keep it in its case.\n\n"
         "Loss or theft: you pay the replacement cost within 28 days.")


def publish_hire_conditions(app, text=HIRE_CONDITIONS):
    """Save ``text`` as the current terms and conditions; the new version's number."""
    from loanservice.documents import services

    with in_app(app) as session:
        version = services.save_hire_conditions(session, None, text).version
        session.commit()
        return version


def mail_to(app, smtp_server):
    """Send the app's mail to ``smtp_server`` (the fixture)."""
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port, MAIL_TIMEOUT=5)


def send_mail(app):
    """Run the mail sender once, as ``flask mail send`` does after a request: what it did."""
    from loanservice.mail.sender import send_queued

    with in_app(app) as session:
        return send_queued(session, app.config)


# Autumn 2025 ends 19 Dec; the Christmas holiday runs 20 Dec to 4 Jan; Spring starts 5 Jan.
AUTUMN = ("Autumn 2025", date(2025, 9, 3), date(2025, 12, 19))
SPRING = ("Spring 2026", date(2026, 1, 5), date(2026, 3, 27))
DUE = date(2025, 12, 12)
AS_OF = date(2026, 1, 20)  # 39 calendar days after DUE, but 23 without the Christmas holiday (7 + 16)


@pytest.fixture
def overdue(app, factory):
    """Usual stages, two terms, and three overdue loans: one hirer with email, one without, one set."""
    from loanservice.documents import notices
    from loanservice.sets.services import check_out_set

    factory.term(*AUTUMN)
    factory.term(*SPRING)
    with in_app(app) as session:
        notices.add_usual_stages(session, None)
        session.commit()
    school = factory.school("Oak Lane Primary", contact_name="Ms Patel", contact_email="music@oaklane.example",
                            address="Oak Lane\nExampleton")
    kind = factory.instrument_type("Cello", sizes=("1/2", "3/4"))
    emailed = factory.instrument(kind, size="3/4", serial_number="CE-1")
    posted = factory.instrument(kind, size="1/2", replacement_value=Decimal("450"))
    with_email = factory.pupil("Ava Jones", family=factory.family("Mr Jones", email="jones@example.org"))
    without_email = factory.family("Mrs Smith", address="4 Elm Road\nExampleton EX2 3CD")
    factory.loan(emailed, with_email, started_on=date(2025, 9, 10), due_on=DUE)
    factory.loan(posted, without_email, started_on=date(2025, 9, 10), due_on=DUE)
    classroom_set = factory.classroom_set(size=2, name="Ukulele set A")
    with in_app(app) as session:
        check_out_set(session, None, session.merge(classroom_set), session.merge(school),
                      started_on=date(2025, 9, 10), due_on=DUE)
        session.commit()
    return {"emailed": emailed, "posted": posted, "set": classroom_set}


# ---------------------------------------------------------------- parents and reservations


def _parent(self, email=None, password="correct-horse-battery", confirmed=True, name=None):
    """A self-registered parent with their family; ``confirmed`` says whether the email link was used."""
    from loanservice.borrowers.models import Family
    from loanservice.parents.models import ParentAccount
    from loanservice.timeutil import utcnow

    user = self.user("parent", email=email, password=password, **({"name": name} if name else {}))
    with in_app(self.app) as session:
        session.add(ParentAccount(user_id=user.id, email_confirmed_at=utcnow() if confirmed else None))
        family = Family(name=user.name, email=user.email, user_id=user.id)
        session.add(family)
        session.commit()
        user.family_id = family.id
    return user


def _child(self, parent, name=None, **kw):
    """A child in ``parent``'s family."""
    from sqlalchemy import select

    from loanservice.borrowers.models import Family

    with in_app(self.app) as session:
        family = session.scalar(select(Family).where(Family.user_id == parent.id))
        session.expunge(family)
    return self.pupil(name=name, family=family, **kw)


Factory.parent = _parent
Factory.child = _child


def mail_link(message, path_start: str) -> str:
    """The path of the first link in a mail's text that starts with ``path_start`` (after the host)."""
    import re

    body = message.get_body(("plain",)).get_content()
    match = re.search(r"https?://[^/\s]+(" + re.escape(path_start) + r"[^\s]*)", body)
    assert match, f"no link to {path_start} in:\n{body}"
    return match.group(1)
