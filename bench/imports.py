"""Benchmark: importing a 10,000-row moving-in file against bare inserts of the same rows, in the same run.

One run, on SQLite and (with ``--postgres URL``) on PostgreSQL:

1. builds a fresh database through the migrations (as ``tests/conftest.py`` does), with a hub
   manager, an instrument type, and for each round and side its own 10,000 families (by bare
   inserts) and its own 10,000 instruments in the store, so that every round starts alike;
2. **loanservice**: for each kind (families, pupils, running loans) the real import as the
   Moving in page's confirm step runs it, ``moving.services.run_import``: the CSV read and every
   row checked (the plan, with its look-ups of what the rows name), then the rows written with
   their audit events and the file's fingerprint, and the commit;
3. **bare**: the same rows, already parsed, as ONE executemany INSERT of the table's own columns
   (no checks, no audit, no look-ups) and a commit;
4. the two sides alternate (which goes first flips every round); prints the median seconds of each
   over the rounds and the ratio. Target: within 3x.

Usage:  .venv/bin/python bench/imports.py [--rows N] [--rounds N] [--postgres URL] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loanservice import create_app  # noqa: E402
from loanservice.config import TestConfig  # noqa: E402
from loanservice.extensions import db  # noqa: E402

DB_NAME = "ls_bench_imports"


def bench_config(url: str) -> type:
    return type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url})


@contextmanager
def postgres_database(server_url: str, name: str = DB_NAME):
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


def csv_text(columns: list[str], rows: list[dict]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def prepare(rows: int, rounds: int) -> dict:
    """The actor, and for each (round, side) its own families and instruments, inserted bare."""
    from loanservice.accounts.models import User
    from loanservice.borrowers.models import Family
    from loanservice.inventory.models import Instrument, InstrumentType, TagKind
    from loanservice.inventory.services import register_tags

    admin = User(email="bench-admin@hub.example", name="Bench admin", role="admin")
    admin.set_password("bench-admin-password")
    kind = InstrumentType(name="Bench violin", family="strings", sizes=["4/4"])
    db.session.add_all([admin, kind])
    db.session.flush()
    sets = {}
    for r in range(rounds):
        for side in ("ls", "bare"):
            prefix = f"r{r}{side}"
            db.session.execute(insert(Family), [
                dict(name=f"Parent {prefix} {i}", email=f"{prefix}.{i}@example.org", phone="", address="")
                for i in range(rows)])
            tags = [f"B{prefix.upper()}-{i:06d}" for i in range(rows)]
            register_tags(db.session, tags, TagKind.INSTRUMENT)
            db.session.execute(insert(Instrument), [dict(asset_tag=tag, type_id=kind.id, size="4/4") for tag in tags])
            sets[(r, side)] = prefix
    db.session.commit()
    return {"admin_id": admin.id}


def family_rows(prefix: str, rows: int) -> list[dict]:
    return [dict(hirer=f"New parent {prefix} {i}", email=f"new.{prefix}.{i}@example.org", phone="07700 900000",
                 address=f"{i} Long Road; Exampleton") for i in range(rows)]


def pupil_rows(prefix: str, rows: int) -> list[dict]:
    return [dict(name=f"Child {i}", family_email=f"{prefix}.{i}@example.org", school_urn="", year_group=str(i % 14),
                 remission_category="free_school_meals" if i % 5 == 0 else "none",
                 remission_verified_on="2026-09-01" if i % 5 == 0 else "", send="no") for i in range(rows)]


def loan_rows(prefix: str, rows: int) -> list[dict]:
    return [dict(asset_tag=f"B{prefix.upper()}-{i:06d}", borrower_type="family", borrower=f"{prefix}.{i}@example.org",
                 pupil="", started_on="2026-09-07", due_on="2027-07-16", fee_per_term="30.00", remission_category="",
                 charge_per_term="", deposit="", condition="2", accessories="") for i in range(rows)]


def bare_families(prefix: str, rows: list[dict]) -> None:
    from loanservice.borrowers.models import Family

    db.session.execute(insert(Family.__table__), [
        dict(name=r["hirer"], email=r["email"], phone=r["phone"], address=r["address"].replace("; ", "\n"),
             created_at=_now()) for r in rows])


def bare_pupils(prefix: str, rows: list[dict]) -> None:
    from loanservice.borrowers.models import Family, Pupil

    ids = dict(db.session.execute(select(Family.email, Family.id).where(Family.email.like(f"{prefix}.%"))).all())
    db.session.execute(insert(Pupil.__table__), [
        dict(name=r["name"], family_id=ids[r["family_email"]], school_id=None, year_group=int(r["year_group"]),
             remission_category=r["remission_category"],
             remission_verified_on=date(2026, 9, 1) if r["remission_verified_on"] else None, send=False,
             created_at=_now()) for r in rows])


def bare_loans(prefix: str, rows: list[dict]) -> None:
    from loanservice.borrowers.models import Family
    from loanservice.inventory.models import Instrument
    from loanservice.loans.models import Loan

    families = dict(db.session.execute(select(Family.email, Family.id).where(Family.email.like(f"{prefix}.%"))).all())
    instruments = dict(db.session.execute(select(Instrument.asset_tag, Instrument.id)
                                          .where(Instrument.asset_tag.like(f"B{prefix.upper()}-%"))).all())
    db.session.execute(insert(Loan.__table__), [
        dict(instrument_id=instruments[r["asset_tag"]], family_id=families[r["borrower"]], status="open",
             started_on=date(2026, 9, 7), due_on=date(2027, 7, 16), accessories="", condition_at_issue=2,
             fee_per_term=Decimal("30.00"), remission_category="none", charge_per_term=Decimal("30.00"),
             deposit=Decimal("0.00"), damaged=False, return_note="", created_at=_now()) for r in rows])


def _now():
    from loanservice.timeutil import utcnow

    return utcnow()


CASES = {"families": (family_rows, bare_families), "pupils": (pupil_rows, bare_pupils),
         "loans": (loan_rows, bare_loans)}


def run(url: str, rows: int, rounds: int) -> dict:
    from flask_migrate import upgrade

    from loanservice.accounts.models import User
    from loanservice.moving.kinds import KINDS
    from loanservice.moving.services import run_import

    app = create_app(bench_config(url))
    results = {}
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        context = prepare(rows, rounds)
        print(f"  set-up: {time.perf_counter() - started:.1f} s")
        for name, (make_rows, bare) in CASES.items():
            kind = KINDS[name]
            times = {"ls": [], "bare": []}
            for r in range(rounds):
                order = ("ls", "bare") if r % 2 == 0 else ("bare", "ls")
                for side in order:
                    prefix = f"r{r}{side}"
                    data = make_rows(prefix, rows)
                    if side == "ls":
                        document = csv_text(kind.columns, data)
                        actor = db.session.get(User, context["admin_id"])
                        started = time.perf_counter()
                        count = run_import(db.session, actor, kind, document)
                        db.session.commit()
                        elapsed = time.perf_counter() - started
                        assert count == rows, count
                    else:
                        started = time.perf_counter()
                        bare(prefix, data)
                        db.session.commit()
                        elapsed = time.perf_counter() - started
                    times[side].append(elapsed)
                    db.session.expunge_all()
            ls, plain = statistics.median(times["ls"]), statistics.median(times["bare"])
            results[name] = (ls, plain)
            print(f"  {name:9} {rows:,} rows: loanservice {ls:6.2f} s   bare inserts {plain:6.2f} s   "
                  f"ratio {ls / plain:4.1f}x   (rounds {', '.join(f'{t:.2f}' for t in times['ls'])} / "
                  f"{', '.join(f'{t:.2f}' for t in times['bare'])})")
        db.session.remove()
        db.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", "bench")
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            print("SQLite")
            run(f"sqlite:///{folder}/bench.sqlite3", args.rows, args.rounds)
    if args.postgres:
        with postgres_database(args.postgres) as url:
            print("PostgreSQL")
            run(url, args.rows, args.rounds)


if __name__ == "__main__":
    main()
