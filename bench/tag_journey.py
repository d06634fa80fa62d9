"""Benchmark: the tag's journey a phone makes, against a bare Flask app running the same SQL.

A member of staff scans an instrument's QR label: the phone opens ``/i/<TAG>`` (a redirect)
and then the instrument's page. This measures both requests together, as staff, on a demo
hub of 100,000 instruments (with its loans, sets and history), against a bare Flask app that
answers the same two requests by replaying, on a raw database connection, the very SQL
statements loanservice sent for that tag (captured in a first pass), and renders a minimal
page from the rows. The difference is what the app adds: sign-in, ORM objects, rules,
templates and layout. Target (issue "A codebase a new engineer can follow"): within 2x.

Usage:  .venv/bin/python bench/tag_journey.py [--instruments N] [--tags N] [--postgres URL] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(Path(__file__).resolve().parent)):
    if path not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, path)

from flask import Flask, redirect, render_template_string  # noqa: E402
from inventory_pages import (  # noqa: E402
    StatementLog,
    analyze,
    loanservice_client,
    migrate_and_seed,
    postgres_database,
)
from sqlalchemy import create_engine, select  # noqa: E402

from loanservice.extensions import db  # noqa: E402
from loanservice.inventory.models import Instrument  # noqa: E402

BARE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{{ tag }}</title></head><body>
<h1>{{ tag }}</h1>
{% for rows in results %}<table>{% for row in rows %}<tr>{% for value in row %}<td>{{ value }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endfor %}
</body></html>"""


def capture_journeys(app, client, tags: list[str]) -> list[dict]:
    """For each tag: the redirect's and the page's SQL, and where the redirect led."""
    with app.app_context():
        log = StatementLog(db.engine)
    journeys = []
    for tag in tags:
        with log.capture() as short:
            response = client.get(f"/i/{tag.lower()}")
        if response.status_code != 302:
            raise SystemExit(f"/i/{tag}: HTTP {response.status_code}, expected a redirect")
        location = response.location
        with log.capture() as page:
            landed = client.get(location)
        if landed.status_code != 200:
            raise SystemExit(f"{location}: HTTP {landed.status_code}")
        journeys.append({"tag": tag, "location": location, "short": list(short), "page": list(page)})
    return journeys


def bare_app(url: str, journeys: list[dict]) -> Flask:
    """Answers /i/<n> and /p/<n> by replaying journey n's statements and rendering the rows."""
    bare = Flask("bare")
    engine = create_engine(url)

    def replay(statements) -> list[list[tuple]]:
        connection = engine.raw_connection()
        try:
            results = []
            for statement, parameters in statements:
                cursor = connection.cursor()
                cursor.execute(statement, parameters)
                if cursor.description is not None:
                    results.append([tuple(row) for row in cursor.fetchall()])
                cursor.close()
            connection.rollback()
            return results
        finally:
            connection.close()

    @bare.get("/i/<int:n>")
    def short_page(n: int):
        replay(journeys[n]["short"])
        return redirect(f"/p/{n}")

    @bare.get("/p/<int:n>")
    def instrument_page(n: int):
        return render_template_string(BARE_PAGE, tag=journeys[n]["tag"], results=replay(journeys[n]["page"]))

    bare.engine = engine
    return bare


def journey_time(client, first: str, clock=time.perf_counter) -> float:
    """Seconds for the scan's two requests: the short link, then the page it redirects to."""
    started = clock()
    response = client.get(first)
    landed = client.get(response.location)
    landed.get_data()
    elapsed = clock() - started
    if landed.status_code != 200:
        raise SystemExit(f"{first} -> {response.location}: HTTP {landed.status_code}")
    return elapsed


def run_backend(label: str, url: str, args) -> dict:
    print(f"\n== {label}: {args.instruments:,} instruments", flush=True)
    seconds = migrate_and_seed(url, args.instruments)
    print(f"   seeded in {seconds:.1f} s", flush=True)
    if url.startswith("postgresql"):
        analyze(url)
    app, client = loanservice_client(url)
    with app.app_context():
        every_tag = db.session.scalars(select(Instrument.asset_tag)).all()
    rng = random.Random(20261203)
    tags = rng.sample(every_tag, args.tags)
    journeys = capture_journeys(app, client, tags)
    bare = bare_app(url, journeys)
    bare_client = bare.test_client()
    # --cpu: this process's CPU time rather than the wall clock; steadier on a machine shared with other
    # work, and on SQLite (in this process) it still counts the SQL. Not for PostgreSQL, whose work is
    # in the server's processes.
    clock = time.process_time if args.cpu else time.perf_counter
    ours, theirs = [], []
    for _ in range(args.warmup):
        for n, journey in enumerate(journeys):
            journey_time(client, f"/i/{journey['tag'].lower()}")
            journey_time(bare_client, f"/i/{n}")
    for _ in range(args.rounds):
        for n, journey in enumerate(journeys):  # alternate, so both see the same machine
            ours.append(journey_time(client, f"/i/{journey['tag'].lower()}", clock))
            theirs.append(journey_time(bare_client, f"/i/{n}", clock))
    statements = statistics.median(len(j["short"]) + len(j["page"]) for j in journeys)
    with app.app_context():
        db.engine.dispose()
    bare.engine.dispose()
    result = {"backend": label, "ours": statistics.median(ours) * 1000, "bare": statistics.median(theirs) * 1000,
              "n": len(ours), "statements": statements}
    result["ratio"] = result["ours"] / result["bare"]
    print(f"   scan -> instrument page as staff: loanservice {result['ours']:.2f} ms, bare {result['bare']:.2f} ms, "
          f"{result['ratio']:.2f}x (median of {result['n']}; {statements:.0f} SQL statements a journey)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=40, help="different instruments scanned")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes over the tags")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the tags")
    parser.add_argument("--postgres", metavar="URL",
                        help="also on PostgreSQL (a database ls_bench is made and dropped)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="time CPU of this process, not the wall clock (SQLite)")
    args = parser.parse_args()
    results = []
    if not args.no_sqlite:
        folder = tempfile.mkdtemp(prefix="bench-journey-")
        results.append(run_backend("SQLite", f"sqlite:///{folder}/bench.sqlite3", args))
    if args.postgres:
        with postgres_database(args.postgres) as url:
            results.append(run_backend("PostgreSQL", url, args))
    print("\n| backend | loanservice | bare (same SQL) | ratio | SQL a journey |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['ours']:.2f} ms | {r['bare']:.2f} ms | {r['ratio']:.2f}x "
              f"| {r['statements']:.0f} |")


if __name__ == "__main__":
    main()
