"""Benchmark: search as you type at 100,000 instruments and 20,000 pupils, against the same SQL run bare.

One run does everything:

1. builds a fresh SQLite database in a temporary folder (and, with ``--postgres URL``, a fresh
   PostgreSQL database that is dropped afterwards) through the migrations, seeds the demo hub with
   100,000 instruments (``loanservice.demo.seed.seed``) and adds 20,000 pupils in 12,000 families;
2. signs a Flask test client in as the demo staff user and, for each case, asks for the fragment search
   as you type asks for (``HX-Request: true``): the instrument list, the borrower search and the lend
   form's borrower field;
3. records the SQL statements that request ran, with their parameters, and replays exactly those on a
   raw DBAPI connection of the same database ("bare": no Flask, no ORM, no template);
4. alternates the two after a warm-up and prints the medians (ms) and the ratio.

The ratio says what the app adds to the SQL it needs; the absolute figure is what a person waits for
(on top of the network), against the 100 ms the issue asks for.

Usage:  .venv/bin/python bench/search.py [--postgres URL] [--no-sqlite] [--rounds N] [--instruments N]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, insert, select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.inventory_pages import analyze, bench_config, postgres_database  # noqa: E402
from loanservice import create_app  # noqa: E402
from loanservice.borrowers.models import Family, Pupil  # noqa: E402
from loanservice.extensions import db  # noqa: E402
from loanservice.schools.models import School  # noqa: E402

STAFF_EMAIL, STAFF_PASSWORD = "staff@demo.hub", "demo-staff-pass"
INSTRUMENTS, PUPILS = 100_000, 20_000
HTMX = {"HX-Request": "true"}

CASES = [
    ("instruments q=sten (typing)", "/instruments?q=sten"),
    ("instruments q=stentor 3/4", "/instruments?q=stentor+3/4"),
    ("instruments q=MIX-0123 (a tag)", "/instruments?q=MIX-0123"),
    ("instruments q=zzz (no match)", "/instruments?q=zzz"),
    ("borrowers q=pat", "/borrowers?q=pat"),
    ("borrowers q=okafor", "/borrowers?q=okafor"),
    ("lend form who=moha", "/loans/new/borrowers?who=moha"),
    ("lend form who=zzz (no match)", "/loans/new/borrowers?who=zzz"),
]

FIRST = ["Amara", "Ben", "Chloe", "Daniel", "Ella", "Finn", "Grace", "Harry", "Isla", "Jack", "Keira", "Leo",
         "Maya", "Noah", "Olivia", "Patrick", "Priya", "Ruby", "Sam", "Theo", "Uma", "Victor", "Willow", "Yusuf",
         "Zara", "Mohammed", "Aisha", "Oliver", "Sophia", "Arjun"]
LAST = ["Adams", "Brown", "Chen", "Davies", "Evans", "Patel", "Green", "Hughes", "Iqbal", "Jones", "Khan",
        "Lewis", "Murphy", "Nowak", "Okafor", "Price", "Quinn", "Roberts", "Smith", "Taylor", "Usman", "Walker",
        "Wright", "Young", "Zielinski", "Mohamud", "O'Brien", "Kowalski", "Singh", "Williams"]


def build(url: str, instruments: int) -> float:
    """Migrate, seed the demo hub and the pupils; the seconds it took."""
    from flask_migrate import upgrade

    from loanservice.demo.seed import seed

    app = create_app(bench_config(url))
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        seed(db.session, instruments=instruments)
        rng = random.Random(19)
        schools = list(db.session.scalars(select(School.id)))
        families = [{"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "email": f"family{n}@example.org"}
                    for n in range(12_000)]
        db.session.execute(insert(Family), families)
        family_ids = list(db.session.scalars(select(Family.id)))
        pupils = [{"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "family_id": rng.choice(family_ids),
                   "school_id": rng.choice(schools), "year_group": rng.randint(3, 11)} for _ in range(PUPILS)]
        db.session.execute(insert(Pupil), pupils)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return time.perf_counter() - started


class Recorder:
    """The statements (and parameters) each request runs, as the DBAPI cursor gets them."""

    def __init__(self, engine):
        self.statements: list[tuple[str, object]] = []
        self.on = False
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.statements.append((statement, parameters))


def timed_request(client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path, headers=HTMX)
    response.get_data()
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (path, response.status_code)
    return elapsed


def timed_bare(engine, statements) -> float:
    """Replay the request's statements on a raw connection, reading every row, in one transaction."""
    connection = engine.raw_connection()
    try:
        started = time.perf_counter()
        cursor = connection.cursor()
        for statement, parameters in statements:
            cursor.execute(statement, parameters)
            if cursor.description is not None:
                cursor.fetchall()
        elapsed = time.perf_counter() - started
        connection.rollback()
    finally:
        connection.close()
    return elapsed


def run(url: str, label: str, rounds: int, instruments: int = INSTRUMENTS) -> list[tuple]:
    seconds = build(url, instruments)
    if url.startswith("postgresql"):
        analyze(url)
    print(f"\n{label}: seeded {instruments:,} instruments and {PUPILS:,} pupils in {seconds:.0f} s")
    app = create_app(bench_config(url))
    client = app.test_client()
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
    assert response.status_code == 302, "could not sign in"
    with app.app_context():
        engine = db.engine
        recorder = Recorder(engine)
    results = []
    for name, path in CASES:
        for _ in range(3):
            timed_request(client, path)
        recorder.statements, recorder.on = [], True
        timed_request(client, path)
        recorder.on = False
        # Only the search's own statements: the signed-in user's load and the session touch are the
        # same on every page, and are not what a bare search would run.
        statements = list(recorder.statements)
        for _ in range(3):
            timed_bare(engine, statements)
        app_times, bare_times = [], []
        for _ in range(rounds):
            app_times.append(timed_request(client, path))
            bare_times.append(timed_bare(engine, statements))
        app_ms, bare_ms = statistics.median(app_times) * 1000, statistics.median(bare_times) * 1000
        results.append((name, app_ms, bare_ms, app_ms / bare_ms, len(statements)))
        print(f"  {name:34} {app_ms:7.1f} ms  bare SQL {bare_ms:7.1f} ms  ratio {app_ms / bare_ms:5.2f}  "
              f"({len(statements)} statements)")
    with app.app_context():
        db.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database ls_bench_search is made and dropped)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--instruments", type=int, default=INSTRUMENTS, help="fewer, for a quick look at borrowers")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{folder}/search.db", "SQLite", args.rounds, args.instruments)
    if args.postgres:
        with postgres_database(args.postgres, "ls_bench_search") as url:
            run(url, "PostgreSQL", args.rounds, args.instruments)


if __name__ == "__main__":
    main()
