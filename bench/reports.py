"""Benchmark: the reports (dashboard, data return, asset register) on a large hub.

Each report as loanservice computes it (``loanservice.reports.figures``: the figures the pages, the exports and
the tests share) against a bare script running the same aggregate SQL with SQLAlchemy Core on its own
connection, nothing of loanservice's. Same database, same run, alternating which goes first each round.

The hub: ``--instruments`` instruments of six families with funding sources and purchase dates; ``--loans``
past loans to ``--pupils`` pupils of 200 schools, spread over eight school years; 2,000 whole-class set
loans; waiting lists, repairs, invoices and payments.

Usage:  .venv/bin/python bench/reports.py [--instruments N] [--loans N] [--pupils N] [--rounds N]
                                          [--postgres URL] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

FAMILIES = ["strings", "woodwind", "brass", "percussion", "keyboard", "electric"]
CATEGORIES = ["none"] * 6 + ["free_school_meals", "pupil_premium", "looked_after"]
FUNDING = ["DfE capital grant", "Hub budget", "Donation", "Arts Council"]
CHUNK = 20_000


def make_app(url: str):
    from loanservice import create_app
    from loanservice.config import TestConfig

    return create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, "TESTING": False}))


def seed(url: str, instruments: int, loans: int, pupils: int) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from loanservice.borrowers.models import Family, Pupil
    from loanservice.extensions import db
    from loanservice.inventory.models import Instrument, InstrumentType, Repair, TagKind
    from loanservice.inventory.services import register_tags
    from loanservice.loans.models import AcademicTerm, Loan
    from loanservice.reservations.models import Reservation
    from loanservice.schools.models import School
    from loanservice.sets.models import ClassroomSet, SetLoan
    from loanservice.timeutil import today, utcnow

    rng = random.Random(2026)
    app = make_app(url)
    with app.app_context():
        upgrade()
        session = db.session
        now, on = utcnow(), today()
        this_year = on.year if on.month >= 9 else on.year - 1
        for start in range(this_year - 7, this_year + 1):
            session.add_all([AcademicTerm(name=f"Autumn {start}", starts_on=date(start, 9, 3),
                                          ends_on=date(start, 12, 19)),
                             AcademicTerm(name=f"Spring {start + 1}", starts_on=date(start + 1, 1, 5),
                                          ends_on=date(start + 1, 3, 31)),
                             AcademicTerm(name=f"Summer {start + 1}", starts_on=date(start + 1, 4, 20),
                                          ends_on=date(start + 1, 7, 20))])
        kinds = [InstrumentType(name=f"Type {n}", family=FAMILIES[n % 6], sizes=["", "1/2"]) for n in range(12)]
        session.add_all(kinds)
        schools = [School(name=f"School {n}") for n in range(200)]
        session.add_all(schools)
        session.flush()
        tags = [f"BEN-{n:06d}" for n in range(1, instruments + 1)]
        register_tags(session, tags, TagKind.INSTRUMENT)
        statuses = ["available"] * 80 + ["on_loan"] * 12 + ["in_repair"] * 3 + ["missing"] * 2 + ["written_off"] * 3
        for first in range(0, instruments, CHUNK):
            rows = []
            for tag in tags[first:first + CHUNK]:
                status = rng.choice(statuses)
                cost = Decimal(rng.randint(40, 2000))
                rows.append(dict(asset_tag=tag, type_id=rng.choice(kinds).id, size=rng.choice(["", "1/2"]),
                                 status=status, status_reason="Beyond repair" if status == "written_off" else "",
                                 condition_grade=rng.randint(1, 5), funding_source=rng.choice(FUNDING),
                                 purchased_on=date(2015, 1, 1) + timedelta(days=rng.randint(0, 4000)),
                                 purchase_cost=cost, replacement_value=cost,
                                 disposed_on=on if status == "written_off" else None,
                                 created_at=now - timedelta(days=rng.randint(0, 3000)), updated_at=now))
            session.execute(insert(Instrument), rows)
        instrument_ids = list(session.scalars(select(Instrument.id)))
        session.execute(insert(Family), [dict(name=f"Family {n}", created_at=now) for n in range(pupils // 2)])
        family_ids = list(session.scalars(select(Family.id)))
        for first in range(0, pupils, CHUNK):
            session.execute(insert(Pupil), [
                dict(name=f"Pupil {n}", family_id=rng.choice(family_ids), school_id=rng.choice(schools).id,
                     year_group=rng.randint(2, 11), remission_category="none", send=False, created_at=now)
                for n in range(first, min(pupils, first + CHUNK))])
        pupil_ids = list(session.scalars(select(Pupil.id)))
        # Past loans over eight years: returned, so that an instrument may have many.
        for first in range(0, loans, CHUNK):
            rows = []
            for _ in range(first, min(loans, first + CHUNK)):
                started = date(this_year - 7, 9, 1) + timedelta(days=rng.randint(0, 7 * 365))
                closed = started + timedelta(days=rng.randint(30, 300))
                rows.append(dict(instrument_id=rng.choice(instrument_ids), pupil_id=rng.choice(pupil_ids),
                                 status="returned", started_on=started, due_on=closed, closed_on=closed,
                                 condition_at_issue=2, condition_at_return=2,
                                 fee_per_term=Decimal("36.00"), remission_category=rng.choice(CATEGORIES),
                                 charge_per_term=Decimal("36.00"), deposit=Decimal("0.00"),
                                 pupil_year_group=rng.randint(2, 11), pupil_send=rng.random() < 0.05,
                                 created_at=now))
            session.execute(insert(Loan), rows)
        sets = [ClassroomSet(name=f"Set {n}", tag=f"SET-{n:05d}") for n in range(2000)]
        register_tags(session, [s.tag for s in sets], TagKind.SET)
        session.add_all(sets)
        session.flush()
        session.execute(insert(SetLoan), [
            dict(set_id=s.id, school_id=rng.choice(schools).id, started_on=date(start, 9, 8),
                 due_on=date(start + 1, 7, 17), closed_on=date(start + 1, 7, 17), item_count=30,
                 pupils=rng.choice([None, 28, 30, 32]), year_group=rng.choice([None, 3, 4, 5]), created_at=now)
            for s in sets for start in [this_year - 1 - (s.id % 3)]])
        session.execute(insert(Reservation), [
            dict(pupil_id=pupil, type_id=rng.choice(kinds).id, size="1/2", preferred_start_on=on, status="waiting",
                 created_at=now) for pupil in rng.sample(pupil_ids, 300)])
        session.execute(insert(Repair), [
            dict(instrument_id=rng.choice(instrument_ids), repairer="Luthier", fault="",
                 sent_on=on - timedelta(days=40),
                 returned_on=on - timedelta(days=10), actual_cost=Decimal(rng.randint(10, 200)), work_done="")
            for _ in range(500)])
        session.commit()
        db.engine.dispose()


def ours(url: str) -> dict[str, float]:
    from decimal import Decimal as D

    from sqlalchemy import select

    from loanservice.extensions import db
    from loanservice.reports import figures

    app = make_app(url)
    times = {}
    with app.app_context():
        session = db.session
        session.execute(select(1))
        year = figures.SchoolYear.containing(figures.today()).previous
        started = time.perf_counter()
        figures.dashboard(session)
        times["dashboard"] = time.perf_counter() - started
        started = time.perf_counter()
        figures.data_return(session, year, 5)
        times["data return"] = time.perf_counter() - started
        started = time.perf_counter()
        filters = figures.RegisterFilters()
        figures.register_totals(session, filters, D("500"))
        page = list(session.scalars(figures.register_query(filters).limit(50)))
        list(figures.register_rows(session, page, D("500")))
        times["asset register page"] = time.perf_counter() - started
        session.remove()
        db.engine.dispose()
    return times


LOANS_IN = ("l.status IN ('open', 'returned', 'exchanged', 'lost') AND l.started_on <= :last "
            "AND (l.closed_on IS NULL OR l.closed_on >= :first)")
SETS_IN = "s.started_on <= :last AND (s.closed_on IS NULL OR s.closed_on >= :first)"
FIRST_LOANS = (
    "SELECT p.school_id, l.pupil_year_group AS year_group, l.remission_category AS remission, l.pupil_send AS send, "
    "t.family, row_number() OVER (PARTITION BY l.pupil_id ORDER BY l.started_on, l.id) AS rank "
    "FROM loan l JOIN pupil p ON p.id = l.pupil_id JOIN instrument i ON i.id = l.instrument_id "
    "JOIN instrument_type t ON t.id = i.type_id "
    f"WHERE {LOANS_IN} AND l.set_loan_id IS NULL AND NOT EXISTS (SELECT 1 FROM take_home h WHERE h.loan_id = l.id)")
LEARNERS = (f"SELECT school_id, year_group, remission, send, family, count(*) FROM ({FIRST_LOANS}) f "
            "WHERE rank = 1 GROUP BY school_id, year_group, remission, send, family")
PUPILS = ("SELECT count(DISTINCT l.pupil_id) FROM loan l "
          f"WHERE {LOANS_IN} AND l.pupil_id IS NOT NULL AND l.set_loan_id IS NULL "
          "AND NOT EXISTS (SELECT 1 FROM take_home h WHERE h.loan_id = l.id)")
CLASS_SETS = f"SELECT school_id, coalesce(pupils, item_count), year_group FROM set_loan s WHERE {SETS_IN}"


def bare(url: str) -> dict[str, float]:
    from sqlalchemy import create_engine, text

    from loanservice.reports.figures import SchoolYear
    from loanservice.timeutil import today

    engine = create_engine(url)
    times = {}
    with engine.connect() as c:
        c.execute(text("SELECT 1"))
        on = today()
        this = SchoolYear.containing(on)
        year_ago = on - timedelta(days=365)
        started = time.perf_counter()
        c.execute(text("SELECT status, count(*) FROM instrument GROUP BY status")).all()
        c.execute(text("SELECT condition_grade, count(*) FROM instrument WHERE status <> 'written_off' "
                       "GROUP BY condition_grade")).all()
        c.execute(text("SELECT count(*) FROM instrument i WHERE i.status = 'available' AND i.created_at <= :ago "
                       "AND i.id NOT IN (SELECT instrument_id FROM loan l WHERE l.closed_on IS NULL "
                       "OR l.closed_on >= :day)"),
                  {"ago": year_ago, "day": year_ago}).scalar()
        c.execute(text("SELECT t.name, r.size, count(*) FROM reservation r JOIN instrument_type t ON t.id = r.type_id "
                       "WHERE r.status = 'waiting' GROUP BY t.name, r.size")).all()
        c.execute(text("SELECT t.name, i.size, count(*) FROM instrument i JOIN instrument_type t ON t.id = i.type_id "
                       "WHERE i.status = 'available' GROUP BY t.name, i.size")).all()
        c.execute(text("SELECT count(*), sum(i.replacement_value) FROM loan l JOIN instrument i "
                       "ON i.id = l.instrument_id WHERE l.status = 'open' AND l.due_on < :on"), {"on": on}).one()
        c.execute(text("SELECT sum(actual_cost) FROM repair WHERE returned_on BETWEEN :first AND :last"),
                  {"first": this.first, "last": this.last}).scalar()
        term = c.execute(text("SELECT id, name, starts_on, ends_on FROM academic_term WHERE starts_on <= :on "
                              "ORDER BY starts_on DESC LIMIT 1"), {"on": on}).one()
        c.execute(text("SELECT sum(amount) FROM ledger_entry WHERE kind = 'invoice' AND term_id = :t"),
                  {"t": term.id}).scalar()
        c.execute(text("SELECT sum(amount) FROM ledger_entry WHERE kind = 'payment' AND posted_on BETWEEN :a AND :b"),
                  {"a": term.starts_on, "b": term.ends_on}).scalar()
        c.execute(text("SELECT sum(b) FROM (SELECT sum(amount) AS b FROM ledger_entry GROUP BY account_id) x "
                       "WHERE b > 0")).scalar()
        c.execute(text("SELECT t.name, l.remission_category, sum(l.fee_per_term - c.amount) FROM loan_charge c "
                       "JOIN loan l ON l.id = c.loan_id JOIN academic_term t ON t.id = c.term_id "
                       "WHERE l.remission_category <> 'none' GROUP BY t.starts_on, t.name, l.remission_category")).all()
        for t in c.execute(text("SELECT starts_on, ends_on FROM academic_term WHERE starts_on <= :on "
                                "ORDER BY starts_on DESC LIMIT 6"), {"on": on}).all():
            c.execute(text("SELECT count(*) FROM loan WHERE status IN ('open', 'returned', 'exchanged', 'lost') "
                           "AND set_loan_id IS NULL AND started_on BETWEEN :a AND :b"),
                      {"a": t.starts_on, "b": t.ends_on}).scalar()
            c.execute(text("SELECT count(*) FROM set_loan WHERE started_on BETWEEN :a AND :b"),
                      {"a": t.starts_on, "b": t.ends_on}).scalar()
        for start in range(this.start - 2, this.start + 1):
            span = {"first": SchoolYear(start).first, "last": SchoolYear(start).last}
            c.execute(text(CLASS_SETS), span).all()
            c.execute(text(PUPILS), span).scalar()
        times["dashboard"] = time.perf_counter() - started

        year = this.previous
        started = time.perf_counter()
        c.execute(text(CLASS_SETS), {"first": year.first, "last": year.last}).all()
        c.execute(text(LEARNERS), {"first": year.first, "last": year.last}).all()
        c.execute(text(CLASS_SETS), {"first": year.previous.first, "last": year.previous.last}).all()
        times["data return"] = time.perf_counter() - started

        started = time.perf_counter()
        bought = ("CAST(strftime('%Y', purchased_on) AS INTEGER) - (CAST(strftime('%m', purchased_on) AS INTEGER) < 9)"
                  if c.dialect.name == "sqlite" else
                  "EXTRACT(YEAR FROM purchased_on) - CASE WHEN EXTRACT(MONTH FROM purchased_on) < 9 THEN 1 ELSE 0 END")
        c.execute(text(f"SELECT funding_source, {bought} AS bought, count(*), sum(purchase_cost), count(disposed_on), "
                       "sum(disposal_proceeds), sum(CASE WHEN purchase_cost < 500 THEN 1 ELSE 0 END) "
                       "FROM instrument GROUP BY funding_source, bought")).all()
        c.execute(text("SELECT i.*, t.* FROM instrument i JOIN instrument_type t ON t.id = i.type_id "
                       "ORDER BY i.asset_tag LIMIT 50")).all()
        times["asset register page"] = time.perf_counter() - started
    engine.dispose()
    return times


def bench(url: str, name: str, rounds: int) -> None:
    mine, theirs = [], []
    for n in range(rounds):
        if n % 2:
            theirs.append(bare(url))
            mine.append(ours(url))
        else:
            mine.append(ours(url))
            theirs.append(bare(url))
    for report in mine[0]:
        a = statistics.median(t[report] for t in mine)
        b = statistics.median(t[report] for t in theirs)
        print(f"{name} {report}: loanservice {a * 1000:.0f} ms, bare SQL {b * 1000:.0f} ms, ratio {a / b:.2f}x",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instruments", type=int, default=100_000)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--pupils", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (database ls_bench_reports)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    targets = []
    if not args.no_sqlite:
        targets.append(("SQLite", f"sqlite:///{tempfile.mkdtemp(prefix='bench-reports-')}/hub.sqlite3"))
    if args.postgres:
        from sqlalchemy import create_engine

        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql("DROP DATABASE IF EXISTS ls_bench_reports")
            connection.exec_driver_sql("CREATE DATABASE ls_bench_reports")
        targets.append(("PostgreSQL", args.postgres.rsplit("/", 1)[0] + "/ls_bench_reports"))
    for name, url in targets:
        started = time.perf_counter()
        seed(url, args.instruments, args.loans, args.pupils)
        if name == "PostgreSQL":
            from sqlalchemy import create_engine

            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")
            engine.dispose()
        print(f"{name}: seeded {args.instruments:,} instruments and {args.loans:,} loans in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        bench(url, name, args.rounds)


if __name__ == "__main__":
    main()
