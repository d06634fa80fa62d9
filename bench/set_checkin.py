"""Benchmark: checking a 30-instrument classroom set back in, scan by scan, as the school's own user.

One run does everything, on SQLite and (with ``--postgres URL``) on PostgreSQL:

1. builds a fresh database through the migrations (as ``tests/conftest.py`` does), seeds it with
   ``loanservice.demo.seed.seed`` (100,000 instruments), then bulk-inserts ONE MILLION past,
   closed loans spread over those instruments (``INSERT ... SELECT`` from the instrument table
   crossed with a small table of past terms, in chunks); on PostgreSQL it then runs
   ``VACUUM ANALYZE``, as autovacuum would soon after;
2. through the services, as the store would: adds a school and a school user for it, builds
   fresh 30-instrument classroom sets (``save_set``) and lends each to that school
   (``check_out_set``), one set for loanservice and one for the bare page per round;
3. **loanservice**: a Flask test client signed in as the school user scans each item of a set back
   in through the real endpoint, ``POST /set-loans/<id>/check-in`` with ``code`` (the label's URL,
   as a keyboard-wedge scanner types it) and ``grade``, asking for JSON as the page's scan queue
   does, then fetches the check-in page the queue refreshes its lists from; a third set per round
   is scanned through the plain form (no JavaScript: a redirect and a flash message), for comparison;
4. **bare**: a Flask app with no loanservice code whose one POST view runs one indexed UPDATE
   (close the item's open loan, found by asset tag) on the same database, commits, and returns a
   few bytes; its own test client scans the items of the other set of the round;
5. the two apps' scans alternate, item by item (which app goes first flips every round); the
   first round is a warm-up. Prints the median ms per scan and per whole set of 30, the ratio,
   the SQL statements per scan, and (``--explain``, on by default) the statements of one scan with
   their times plus a profile of where a scan's time goes.

Usage:  .venv/bin/python bench/set_checkin.py [--sets N] [--postgres URL] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from flask import Flask, request
from sqlalchemy import (
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    Table,
    case,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from loanservice import create_app  # noqa: E402
from loanservice.config import TestConfig  # noqa: E402
from loanservice.extensions import db  # noqa: E402

SET_SIZE = 30
SCHOOL_EMAIL, SCHOOL_PASSWORD = "music-lead@bench-school.example", "bench-school-password"
BASE_URL = "http://hub.test"  # TestConfig.PUBLIC_BASE_URL: the host the labels' URLs carry
DB_NAME = "ls_bench_sets"


def bench_config(url: str) -> type:
    return type("BenchConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": url,
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "PAGE_SIZE": 50,  # the production default
    })


# ---------------------------------------------------------------- databases


@contextmanager
def postgres_database(server_url: str, name: str = DB_NAME):
    """Create a fresh database on the server, yield its SQLAlchemy URL, drop it afterwards."""
    base = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build_database(url: str, instruments: int, past_loans: int) -> dict:
    """Migrate, seed, add the past loans; return the timings in seconds."""
    from flask_migrate import upgrade

    from loanservice.demo.seed import seed

    times = {}
    app = create_app(bench_config(url))
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        seed(db.session, instruments=instruments)
        db.session.commit()
        times["seed"] = time.perf_counter() - started
        started = time.perf_counter()
        insert_past_loans(db.session, past_loans)
        times["past_loans"] = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    if url.startswith("postgresql"):
        started = time.perf_counter()
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
        engine.dispose()
        times["analyze"] = time.perf_counter() - started
    return times


def insert_past_loans(session, total: int, variants: int = 7) -> None:
    """``total`` closed loans, about total / instruments per instrument, with INSERT ... SELECT.

    A helper table holds past terms (``per`` of them, each in ``variants`` shifted versions, so
    neighbouring instruments do not share dates); every instrument is crossed with the terms of
    its variant. Borrowers: mostly the seeded pupils, one loan in ten a school.
    """
    from loanservice.accounts.models import User
    from loanservice.borrowers.models import Pupil
    from loanservice.inventory.models import Instrument
    from loanservice.loans.models import Loan
    from loanservice.schools.models import School
    from loanservice.timeutil import utcnow

    n_instruments, first_instrument, last_instrument = session.execute(
        select(func.count(), func.min(Instrument.id), func.max(Instrument.id))).one()
    per = max(1, round(total / n_instruments))
    first_pupil, pupils = session.execute(select(func.min(Pupil.id), func.count()).select_from(Pupil)).one()
    first_school, schools = session.execute(select(func.min(School.id), func.count()).select_from(School)).one()
    staff_id = session.scalar(select(User.id).where(User.email == "staff@demo.hub"))

    period = Table("bench_past_term", MetaData(), Column("k", Integer), Column("variant", Integer),
                   Column("started_on", Date), Column("due_on", Date), Column("closed_on", Date),
                   Column("grade", Integer))
    connection = session.connection()
    period.create(connection)
    first_day = date(2014, 9, 1)
    rows = []
    for k in range(per):
        for v in range(variants):
            started = first_day + timedelta(days=120 * k + 9 * v)
            rows.append(dict(k=k, variant=v, started_on=started, due_on=started + timedelta(days=110),
                             closed_on=started + timedelta(days=100 - 3 * v), grade=1 + (k + v) % 4))
    connection.execute(insert(period), rows)

    money = Numeric(10, 2)
    columns = ["instrument_id", "pupil_id", "school_id", "status", "started_on", "due_on", "closed_on",
               "accessories", "condition_at_issue", "condition_at_return", "damaged", "return_note",
               "fee_per_term", "remission_category", "charge_per_term", "deposit", "issued_by_id",
               "closed_by_id", "created_at"]
    now = utcnow()
    step = 10_000  # instruments a statement: per * step loans
    for lo in range(first_instrument, last_instrument + 1, step):
        hi = lo + step - 1
        query = (
            select(
                Instrument.id,
                case((period.c.k % 10 != 9, first_pupil + (Instrument.id * per + period.c.k) % pupils), else_=None),
                case((period.c.k % 10 == 9, first_school + Instrument.id % schools), else_=None),
                literal("returned"), period.c.started_on, period.c.due_on, period.c.closed_on,
                literal(""), period.c.grade, period.c.grade, literal(False), literal(""),
                literal(Decimal("30.00"), money), literal("none"), literal(Decimal("30.00"), money),
                literal(Decimal("0.00"), money), literal(staff_id), literal(staff_id), literal(now),
            )
            .select_from(Instrument)
            .join(period, period.c.variant == Instrument.id % variants)
            .where(Instrument.id.between(lo, hi))
        )
        connection.execute(insert(Loan).from_select(columns, query))
        session.commit()
        connection = session.connection()
    period.drop(connection)
    session.commit()
    done = session.scalar(select(func.count()).select_from(Loan).where(Loan.closed_on.is_not(None)))
    print(f"   {done:,} closed loans in the database ({per} per instrument)", flush=True)


# ---------------------------------------------------------------- sets, school, user


def prepare_sets(url: str, count: int, rng_seed: int = 7) -> tuple[int, list[tuple[int, list[str]]]]:
    """A school and its user; ``count`` new 30-instrument sets lent to it through the services.

    Returns the school id and, per set, the set loan id and the item tags (in a shuffled scanning
    order: a class hands instruments back in no particular order).
    """
    from loanservice.accounts.models import User
    from loanservice.accounts.services import create_user
    from loanservice.audit.services import record
    from loanservice.inventory.models import Instrument, InstrumentStatus, InstrumentType
    from loanservice.loans.models import Loan
    from loanservice.schools.models import School
    from loanservice.sets.models import ClassroomSetItem
    from loanservice.sets.services import check_out_set, save_set

    rng = random.Random(rng_seed)
    app = create_app(bench_config(url))
    with app.app_context():
        session = db.session
        staff = session.scalar(select(User).where(User.email == "staff@demo.hub"))
        school = School(name="Bench Hill Primary School", urn="199999", contact_name="Ms Bench",
                        contact_email="music@bench-school.example", address="Bench town")
        session.add(school)
        session.flush()
        record(session, staff, "school.added", school, f"Added school {school.name}")
        create_user(session, staff, email=SCHOOL_EMAIL, name="Bench Music Lead", role="school",
                    password=SCHOOL_PASSWORD, school_id=school.id)
        session.commit()

        # Free violins (the set type with sizes, so the types vary a little), spread over the table.
        in_sets = select(ClassroomSetItem.instrument_id)
        on_loan = select(Loan.instrument_id).where(Loan.closed_on.is_(None))
        free = session.scalars(
            select(Instrument.asset_tag).join(InstrumentType)
            .where(InstrumentType.name.in_(["Violin", "Ukulele"]), Instrument.status == InstrumentStatus.AVAILABLE,
                   Instrument.condition_grade < 5,
                   Instrument.id.not_in(in_sets), Instrument.id.not_in(on_loan))
            .order_by(Instrument.id)).all()
        if len(free) < count * SET_SIZE:
            raise SystemExit(f"Only {len(free)} free instruments for {count} sets of {SET_SIZE}.")
        chosen = rng.sample(free, count * SET_SIZE)
        sets = []
        for n in range(count):
            tags = sorted(chosen[n * SET_SIZE:(n + 1) * SET_SIZE])
            classroom_set = save_set(session, staff, name=f"Bench violin set {n + 1}", tag=f"SET-BENCH-{n + 1}",
                                     tags=tags, notes="Benchmark set")
            set_loan = check_out_set(session, staff, classroom_set, school,
                                     started_on=date.today() - timedelta(days=30),
                                     due_on=date.today() + timedelta(days=30))
            session.commit()
            order = tags[:]
            rng.shuffle(order)
            sets.append((set_loan.id, order))
        school_id = school.id
        db.session.remove()
        db.engine.dispose()
    return school_id, sets


# ---------------------------------------------------------------- the bare app


def bare_app(url: str) -> Flask:
    """A Flask app with no loanservice code: one POST view, one indexed UPDATE, a few bytes back.

    The UPDATE closes the open loan of the scanned item: the instrument by its unique asset tag,
    its open loan through the partial unique index on ``loan(instrument_id) WHERE closed_on IS NULL``.
    """
    engine = create_engine(url)
    app = Flask("bare")
    statement = text(
        "UPDATE loan SET closed_on = :today, status = 'returned', condition_at_return = :grade "
        "WHERE instrument_id = (SELECT id FROM instrument WHERE asset_tag = :tag) AND closed_on IS NULL"
    )

    @app.post("/scan")
    def scan():
        code = request.form["code"]
        tag = code.rsplit("/", 1)[-1].strip().upper()
        with engine.begin() as connection:
            updated = connection.execute(
                statement, {"today": date.today(), "grade": int(request.form["grade"]), "tag": tag}).rowcount
        if updated != 1:
            return f"{tag} is not on loan", 409
        return f"{tag} back", 200

    app.bare_engine = engine
    return app


# ---------------------------------------------------------------- the same scan, without the batch


def plain_check_in_set_item(session, actor, set_loan, code, *, grade=None, note="", damaged=False, base_url="",
                            loan=None):
    """``check_in_set_item`` as it would be without ``loanservice.batch``: the same rules through the
    plain services (the ORM's unit of work writes the changes at the flush), then the set's progress
    counted by ``progress``. For comparison only: ``--plain`` scans a set this way each round."""
    from loanservice.inventory.models import CheckReason, InstrumentStatus
    from loanservice.inventory.services import change_status, record_condition, send_to_repair
    from loanservice.loans.lending import DAMAGE_REPAIRER, _refuse_unless_issued, audit_name, record
    from loanservice.loans.models import LoanStatus
    from loanservice.loans.queries import lock_loan
    from loanservice.locks import lock
    from loanservice.sets import services
    from loanservice.signals import instrument_freed
    from loanservice.timeutil import today

    lock(session, set_loan)
    if not set_loan.is_open:
        return services.check_in_set_item(session, actor, set_loan, code, base_url=base_url)  # says why
    if loan is None:
        loan = services._scanned_loan(session, set_loan, code, base_url, actor)
    grade = loan.condition_at_issue if grade is None else grade
    lock_loan(session, loan)
    _refuse_unless_issued(loan, "checked in")
    returned_on = today()
    instrument = loan.instrument
    record_condition(session, actor, instrument, grade, CheckReason.RETURN, note)
    loan.status, loan.closed_on, loan.condition_at_return = LoanStatus.RETURNED, returned_on, grade
    loan.damaged, loan.return_note, loan.closed_by_id = damaged, note, actor.id if actor is not None else None
    change_status(session, actor, instrument, InstrumentStatus.AVAILABLE)
    record(session, actor, "loan.in", loan,
           f"Returned by {audit_name(loan.borrower)}" + (" damaged" if damaged else ""),
           {"grade": grade, "note": note, "damaged": damaged, "returned_on": returned_on}, instrument=instrument)
    if damaged:
        send_to_repair(session, actor, instrument, repairer=DAMAGE_REPAIRER, fault=note.strip())
    else:
        instrument_freed.send(instrument, session=session, actor=actor, batch=None)
    session.execute(services._END_TAKE_HOME, {"item": loan.instrument_id, "back_on": max(today(), loan.started_on)})
    session.flush()
    return loan, services._close_if_complete(session, actor, set_loan, services.progress(session, set_loan))


@contextmanager
def plain_services():
    """The app's set scans go through ``plain_check_in_set_item`` meanwhile."""
    from loanservice.sets import services

    batched = services.check_in_set_item
    services.check_in_set_item = plain_check_in_set_item
    try:
        yield
    finally:
        services.check_in_set_item = batched


# ---------------------------------------------------------------- measuring


class StatementLog:
    """Counts (and, when asked, times in place) the SQL statements an engine runs."""

    def __init__(self, engine):
        self.entries: list[list] = []
        self.on = False
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.entries.append([statement, time.perf_counter(), None])

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on and self.entries:
            self.entries[-1][2] = time.perf_counter() - self.entries[-1][1]

    @contextmanager
    def capture(self):
        self.entries = []
        self.on = True
        try:
            yield self.entries
        finally:
            self.on = False


def signed_in_client(app):
    client = app.test_client()
    response = client.post("/login", data={"email": SCHOOL_EMAIL, "password": SCHOOL_PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"Could not sign in as {SCHOOL_EMAIL}: HTTP {response.status_code}")
    return client


def label_url(tag: str) -> str:
    return f"{BASE_URL}/i/{tag}"


JSON = {"Accept": "application/json"}  # what the page's scan queue sends (static/scan-queue.js)


def plain_scan(client, set_loan_id: int, tag: str) -> float:
    """One scan queue POST (JSON) through ``plain_check_in_set_item``: the check-in without the batch."""
    with plain_services():
        started = time.perf_counter()
        response = client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": label_url(tag), "grade": "2"},
                               headers=JSON)
        answer = response.get_json()
        elapsed = time.perf_counter() - started
    if response.status_code != 200 or not answer.get("ok"):
        raise SystemExit(f"plain scan {tag}: HTTP {response.status_code}\n{response.get_data(as_text=True)[:2000]}")
    return elapsed


def ls_scan(client, log: StatementLog, set_loan_id: int, tag: str) -> tuple[float, float, str, int]:
    """One scan the way the page makes it: the scan queue's POST, answered in JSON (timed, its SQL
    statements counted), then the check-in page the queue refreshes its lists from (timed)."""
    with log.capture() as captured:
        started = time.perf_counter()
        response = client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": label_url(tag), "grade": "2"},
                               headers=JSON)
        answer = response.get_json()
        posted = time.perf_counter()
    if response.status_code != 200 or not answer.get("ok"):
        raise SystemExit(f"scan {tag}: HTTP {response.status_code}\n{response.get_data(as_text=True)[:2000]}")
    page = client.get(answer["page"])
    body = page.get_data(as_text=True)
    shown = time.perf_counter()
    if page.status_code != 200:
        raise SystemExit(f"check-in page after {tag}: HTTP {page.status_code}")
    return posted - started, shown - posted, body, len(captured)


def form_scan(client, set_loan_id: int, tag: str) -> float:
    """One scan without JavaScript: the form's POST (timed), answered by a redirect to the page."""
    started = time.perf_counter()
    response = client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": label_url(tag), "grade": "2"})
    response.get_data()
    elapsed = time.perf_counter() - started
    if response.status_code != 303:
        raise SystemExit(f"form scan {tag}: HTTP {response.status_code}\n{response.get_data(as_text=True)[:2000]}")
    client.get(response.location).get_data()  # the page shows (and so clears) the flash message
    return elapsed


def bare_scan(client, tag: str) -> float:
    started = time.perf_counter()
    response = client.post("/scan", data={"code": label_url(tag), "grade": "2"})
    response.get_data()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"bare scan {tag}: HTTP {response.status_code} {response.get_data(as_text=True)}")
    return elapsed


def run_backend(label: str, url: str, args) -> dict:
    print(f"\n== {label}: {args.instruments:,} instruments, {args.past_loans:,} past loans", flush=True)
    times = build_database(url, args.instruments, args.past_loans)
    print(f"   seed {times['seed']:.1f} s, past loans {times['past_loans']:.1f} s"
          + (f", VACUUM ANALYZE {times['analyze']:.1f} s" if "analyze" in times else ""), flush=True)

    rounds = args.sets + 1  # the first round warms up
    extra = 2 if args.explain else 0  # one set for the SQL listing, one for the profile
    started = time.perf_counter()
    per_round = 4 if args.plain else 3
    _, sets = prepare_sets(url, per_round * rounds + extra)
    print(f"   {len(sets)} sets of {SET_SIZE} built and lent through the services in "
          f"{time.perf_counter() - started:.1f} s", flush=True)

    ls = create_app(bench_config(url))
    ls_client = signed_in_client(ls)
    with ls.app_context():
        log = StatementLog(db.engine)
    bare = bare_app(url)
    bare_client = bare.test_client()

    ls_post, ls_page, bare_post, ls_form, ls_plain = [], [], [], [], []  # per round: 30 times each
    statements = Counter()
    for n in range(rounds):
        (ls_loan, ls_tags), (bare_loan, bare_tags), (form_loan, form_tags) = sets[per_round * n:per_round * n + 3]
        post_times, page_times, bare_times, form_times, plain_times = [], [], [], [], []
        for i in range(SET_SIZE):
            if n % 2 == 0:
                post, page, body, count = ls_scan(ls_client, log, ls_loan, ls_tags[i])
                if args.plain:
                    plain_times.append(plain_scan(ls_client, sets[per_round * n + 3][0], sets[per_round * n + 3][1][i]))
                bare_times.append(bare_scan(bare_client, bare_tags[i]))
            else:
                bare_times.append(bare_scan(bare_client, bare_tags[i]))
                if args.plain:
                    plain_times.append(plain_scan(ls_client, sets[per_round * n + 3][0], sets[per_round * n + 3][1][i]))
                post, page, body, count = ls_scan(ls_client, log, ls_loan, ls_tags[i])
            form_times.append(form_scan(ls_client, form_loan, form_tags[i]))
            post_times.append(post)
            page_times.append(page)
            if n > 0:
                statements[count] += 1
        if f"{SET_SIZE} of {SET_SIZE} back" not in body:
            raise SystemExit(f"set loan {ls_loan} is not all back after {SET_SIZE} scans")
        if n > 0:
            ls_post.append(post_times)
            ls_page.append(page_times)
            bare_post.append(bare_times)
            ls_form.append(form_times)
            ls_plain.append(plain_times)
        print(f"   round {n}{' (warm-up)' if n == 0 else ''}: loanservice "
              f"{statistics.median(post_times) * 1000:.2f} ms a scan (+{statistics.median(page_times) * 1000:.2f} ms "
              f"page; form {statistics.median(form_times) * 1000:.2f} ms), bare "
              f"{statistics.median(bare_times) * 1000:.2f} ms"
              + (f", plain services {statistics.median(plain_times) * 1000:.2f} ms" if plain_times else ""), flush=True)

    flat = lambda rows: [t for row in rows for t in row]  # noqa: E731
    result = dict(
        backend=label, sets=args.sets, times=times,
        post=statistics.median(flat(ls_post)) * 1000,
        page=statistics.median(flat(ls_page)) * 1000,
        scan_and_page=statistics.median([p + g for rp, rg in zip(ls_post, ls_page, strict=True)
                                         for p, g in zip(rp, rg, strict=True)]) * 1000,
        bare=statistics.median(flat(bare_post)) * 1000,
        form=statistics.median(flat(ls_form)) * 1000,
        set_post=statistics.median(sum(row) for row in ls_post) * 1000,
        set_scan_and_page=statistics.median(sum(p) + sum(g) for p, g in zip(ls_post, ls_page, strict=True)) * 1000,
        set_bare=statistics.median(sum(row) for row in bare_post) * 1000,
        p90_post=statistics.quantiles(flat(ls_post), n=10)[-1] * 1000,
        p90_bare=statistics.quantiles(flat(bare_post), n=10)[-1] * 1000,
        n=len(flat(ls_post)), statements=statements,
    )
    result["ratio"] = result["post"] / result["bare"]
    if args.plain:
        result["plain"] = statistics.median(flat(ls_plain)) * 1000
        result["set_plain"] = statistics.median(sum(row) for row in ls_plain) * 1000
    result["ratio_with_page"] = result["scan_and_page"] / result["bare"]

    if args.explain:
        result["explain"] = explain(ls_client, log, sets[-2], sets[-1])
    with ls.app_context():
        db.session.remove()
        db.engine.dispose()
    bare.bare_engine.dispose()
    return result


def explain(client, log: StatementLog, listed, profiled) -> dict:
    """The SQL of each scan of one set (in-place times), and a profile of scanning another set."""
    set_loan_id, tags = listed
    per_scan = []
    for tag in tags:
        with log.capture() as captured:
            response = client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": label_url(tag), "grade": "2"},
                                   headers=JSON)
            response.get_data()
        per_scan.append([(" ".join(s.split()), t) for s, _, t in captured])
    # A typical (not the last) scan's statements, each with its median time over the set's scans.
    typical = [scan for scan in per_scan[:-1] if len(scan) == len(per_scan[0])]
    listing = []
    for i, (statement, _) in enumerate(typical[0]):
        listing.append((statistics.median(scan[i][1] for scan in typical) * 1000, statement))
    counts = Counter(len(scan) for scan in per_scan[:-1])
    # Statements some scans run and others do not (e.g. a lazy load the first time only).
    seen = Counter(s for scan in per_scan[:-1] for s in {s for s, _ in scan})
    odd = {s: n for s, n in seen.items() if n < len(per_scan) - 1}

    set_loan_id, tags = profiled
    profile = cProfile.Profile()
    wall = 0.0
    for tag in tags:
        started = time.perf_counter()
        profile.enable()
        response = client.post(f"/set-loans/{set_loan_id}/check-in", data={"code": label_url(tag), "grade": "2"},
                               headers=JSON)
        response.get_data()
        profile.disable()
        wall += time.perf_counter() - started
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream)
    stats.sort_stats("cumulative").print_stats(45)
    buckets = profile_buckets(stats, len(tags))
    return dict(statements=listing, counts=counts, odd=odd, last=len(per_scan[-1]), profile=stream.getvalue(),
                buckets=buckets, profiled_wall=wall / len(tags) * 1000)


# Where a scan's time goes: cumulative time of these functions, per scan (they nest).
def profile_points() -> list[tuple[str, object]]:
    import flask.app
    import flask.sessions
    import flask_wtf.form
    import sqlalchemy.orm.session
    import werkzeug.test

    from loanservice.accounts import views as accounts_views
    from loanservice.batch import Batch
    from loanservice.inventory import services as inventory_services
    from loanservice.loans import lending
    from loanservice.reservations import services as reservation_services
    from loanservice.sets import services as set_services
    from loanservice.sets import views as set_views

    return [
        ("whole request (test client)", werkzeug.test.Client.open),
        ("Flask full_dispatch_request", flask.app.Flask.full_dispatch_request),
        ("  load_user (Flask-Login, 1 SELECT)", accounts_views.load_user),
        ("  view scan_in", set_views.scan_in),
        ("    ScanInForm.validate_on_submit", flask_wtf.form.FlaskForm.validate_on_submit),
        ("    locate_scan (1 SELECT ... FOR UPDATE)", set_services.locate_scan),
        ("    _load_set_loan (wrong scans only)", set_views._load_set_loan),
        ("    services.check_in_set_item", set_services.check_in_set_item),
        ("      loans.check_in", lending.check_in),
        ("        record_condition", inventory_services.record_condition),
        ("        change_status", inventory_services.change_status),
        ("        offer_returned_instrument (asks)", reservation_services.offer_returned_instrument),
        ("      Batch.write (PostgreSQL 1 statement, SQLite 6)", Batch.write),
        ("      _close_if_complete", set_services._close_if_complete),
        ("    Session.commit (view)", sqlalchemy.orm.session.Session.commit),
        ("Session.flush (all, nested above)", sqlalchemy.orm.session.Session.flush),
        ("Session.execute (all)", sqlalchemy.orm.session.Session.execute),
        ("SecureCookieSessionInterface.open_session", flask.sessions.SecureCookieSessionInterface.open_session),
        ("SecureCookieSessionInterface.save_session", flask.sessions.SecureCookieSessionInterface.save_session),
        ("sqlite3 cursor.execute (all)", "<method 'execute' of 'sqlite3.Cursor' objects>"),
        ("sqlite3 cursor.executemany (all)", "<method 'executemany' of 'sqlite3.Cursor' objects>"),
        ("sqlite3 commit (all)", "<method 'commit' of 'sqlite3.Connection' objects>"),
        ("psycopg cursor.execute (all)", "psycopg.Cursor.execute"),
        ("psycopg cursor.executemany (all)", "psycopg.Cursor.executemany"),
        ("psycopg commit (all)", "psycopg.Connection.commit"),
    ]


def _key(target):
    if isinstance(target, str):
        if target.startswith("psycopg."):
            import psycopg

            cls, name = target.split(".")[1:]
            code = getattr(getattr(psycopg, cls), name).__code__
            return code.co_filename, code.co_firstlineno, code.co_name
        return "~", 0, target
    code = getattr(target, "__wrapped__", target).__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def profile_buckets(stats: pstats.Stats, scans: int) -> list[tuple[str, float, float]]:
    out = []
    for label, target in profile_points():
        try:
            key = _key(target)
        except (AttributeError, ImportError):
            continue
        entry = stats.stats.get(key)
        if entry:
            _, ncalls, _, cumulative, _ = entry
            out.append((label, cumulative / scans * 1000, ncalls / scans))
    return out


# ---------------------------------------------------------------- report


def print_results(results: list[dict]) -> None:
    width = 100
    print("\n" + "=" * width)
    print(f"Per scan (median of {results[0]['n']} scans, ms): POST = the scan queue's request (JSON answer); "
          f"+page = also the check-in page it refreshes the lists from; form = the same scan without JavaScript "
          f"(redirect and flash)")
    print(f"{'backend':<11}{'loanservice POST':>17}{'bare POST':>11}{'ratio':>7}{'p90 ls/bare':>15}"
          f"{'ls POST+page':>14}{'ratio':>7}{'form POST':>11}{'ratio':>7}")
    print("-" * width)
    for r in results:
        print(f"{r['backend']:<11}{r['post']:>17.2f}{r['bare']:>11.2f}{r['ratio']:>6.1f}x"
              f"{r['p90_post']:>8.2f}/{r['p90_bare']:<6.2f}{r['scan_and_page']:>14.2f}{r['ratio_with_page']:>6.1f}x"
              f"{r['form']:>11.2f}{r['form'] / r['bare']:>6.1f}x")
    print(f"\nPer whole set of {SET_SIZE} (median of {results[0]['sets']} sets, ms)")
    print(f"{'backend':<11}{'loanservice POSTs':>18}{'bare POSTs':>12}{'ratio':>7}{'ls POSTs+pages':>16}")
    print("-" * width)
    for r in results:
        print(f"{r['backend']:<11}{r['set_post']:>18.1f}{r['set_bare']:>12.1f}{r['set_post'] / r['set_bare']:>6.1f}x"
              f"{r['set_scan_and_page']:>16.1f}")
    print("=" * width)
    for r in results:
        print(f"{r['backend']}: SQL statements per scan POST (count: scans) {dict(sorted(r['statements'].items()))}")
    for r in results:
        if "plain" in r:
            print(f"{r['backend']}: the same scan POST through the plain services (no Batch) {r['plain']:.2f} ms, "
                  f"with the batch {r['post']:.2f} ms: the batch is {r['plain'] / r['post']:.2f}x as fast; "
                  f"a set of {SET_SIZE}: {r['set_plain']:.0f} / {r['set_post']:.0f} ms")
    for r in results:
        if "explain" not in r:
            continue
        e = r["explain"]
        total = sum(t for t, _ in e["statements"])
        print(f"\n[{r['backend']}] SQL of one scan POST (not the last of the set): {len(e['statements'])} statements "
              f"(counts over the set: {dict(e['counts'])}; the last scan, which closes the set loan: {e['last']}); "
              f"{total:.2f} ms inside cursor.execute of {r['post']:.2f} ms (median in-place times):")
        for ms, statement in e["statements"]:
            shown = statement if len(statement) <= 150 else statement[:95] + " ... " + statement[-50:]
            print(f"  {ms:6.2f} ms  {shown}")
        for statement, times in e["odd"].items():
            print(f"  (in {times} of {len(e['counts']) and sum(e['counts'].values())} scans)  {statement[:150]}")
        print(f"\n[{r['backend']}] Where a scan POST's time goes (cProfile, cumulative per scan; the profiler "
              f"inflates times, profiled wall {e['profiled_wall']:.2f} ms a scan):")
        for label, ms, calls in e["buckets"]:
            print(f"  {label:<44}{ms:8.2f} ms  ({calls:g} calls)")
        if os.environ.get("BENCH_PROFILE"):
            print(e["profile"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instruments", type=int, default=100_000)
    parser.add_argument("--past-loans", type=int, default=1_000_000)
    parser.add_argument("--sets", type=int, default=8, help="timed sets of 30 per app (after one warm-up set)")
    parser.add_argument("--postgres", metavar="URL",
                        help="also run on PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/postgres "
                             f"(a database {DB_NAME} is created on that server and dropped afterwards)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite (with --postgres)")
    parser.add_argument("--plain", action="store_true",
                        help="also scan a set each round through the plain services (no Batch), for the ratio")
    parser.add_argument("--no-explain", dest="explain", action="store_false",
                        help="skip the SQL listing and the profile of a scan")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="ls-bench-sets-") as folder:
            results.append(run_backend("SQLite", f"sqlite:///{Path(folder) / 'bench.sqlite3'}", args))
    if args.postgres:
        with postgres_database(args.postgres) as url:
            results.append(run_backend("PostgreSQL", url, args))
    if results:
        print_results(results)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
