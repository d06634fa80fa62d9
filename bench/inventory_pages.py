"""Benchmark: the staff instrument list at 100,000 instruments, against a bare Flask page.

One run does everything:

1. builds a fresh SQLite database in a temporary folder (and, with ``--postgres URL``, a
   fresh PostgreSQL database that is dropped afterwards) through the migrations, exactly as
   ``tests/conftest.py`` does, and seeds it with ``loanservice.demo.seed.seed`` (timed);
2. signs a Flask test client in as the demo staff user and times ``/instruments`` for each
   case (first page, deep page, text search, tag prefix search, filters, sort);
3. times a bare Flask app (no loanservice code: SQLAlchemy Core ``text()`` on the same
   database) whose view runs the same SELECT (same join, WHERE, ORDER BY, LIMIT/OFFSET) plus
   the COUNT and renders the rows as a minimal Jinja2 table, through its own test client;
4. prints case, loanservice ms/request, bare ms/request and the ratio (medians of requests
   taken alternately from the two apps after a warm-up), then the SQL each loanservice
   request ran, with its time, for the cases whose ratio is high.

Usage:  .venv/bin/python bench/inventory_pages.py [--instruments N] [--postgres URL]
        (``make bench`` runs it with the defaults; SQLite only.)
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, render_template, request
from jinja2 import DictLoader
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from loanservice import create_app  # noqa: E402
from loanservice.config import TestConfig  # noqa: E402
from loanservice.extensions import db  # noqa: E402

STAFF_EMAIL, STAFF_PASSWORD = "staff@demo.hub", "demo-staff-pass"
PAGE_SIZE = 50  # the production default (Config.PAGE_SIZE); TestConfig's 20 is for tests

# (name, query string). Type 1 is the first type the seed adds (Violin).
CASES = [
    ("list, first page", ""),
    ("list, page 1000", "page=1000"),
    ("search q=stentor", "q=stentor"),
    ("tag prefix q=MIX-0500", "q=MIX-0500"),
    ("filters type+status+cond", "type=1&status=available&condition=3"),
    ("sort=condition", "sort=condition"),
    ("sort=condition, page 500", "sort=condition&page=500"),
]

TAG_IN_ROW = re.compile(r">([A-Z0-9][A-Z0-9-]*-\d{6})</a>")


# ---------------------------------------------------------------- databases


def migrate_and_seed(url: str, instruments: int) -> float:
    """Build the schema through the migrations, seed, and return the seeding time in seconds."""
    from flask_migrate import upgrade

    from loanservice.demo.seed import seed

    app = create_app(bench_config(url))
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        seed(db.session, instruments=instruments)
        db.session.commit()
        seconds = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return seconds


def bench_config(url: str) -> type:
    return type("BenchConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": url,
        "PAGE_SIZE": PAGE_SIZE,
        "LOGIN_RATE_LIMIT": "1000 per minute",
    })


@contextmanager
def postgres_database(server_url: str, name: str = "ls_bench"):
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


def analyze(url: str) -> None:
    """PostgreSQL: give the planner statistics, as autovacuum would shortly after the seed."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


# ---------------------------------------------------------------- the bare app

BARE_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Instruments</title></head><body>
<p>{{ total }} instruments, page {{ page }}</p>
<table>
<tr><th>Tag</th><th>Type</th><th>Size</th><th>Make / model</th>\
<th>Serial</th><th>Status</th><th>Condition</th><th>Location</th></tr>
{% for r in rows %}<tr><th><a href="/instruments/{{ r.asset_tag }}">{{ r.asset_tag }}</a></th>\
<td>{{ r.type_name }}</td><td>{{ r.size }}</td><td>{{ r.make }} {{ r.model }}</td>\
<td>{{ r.serial_number }}</td><td>{{ r.status }}</td><td>{{ r.condition_grade }}</td>\
<td>{{ r.location }}</td></tr>
{% endfor %}</table>
</body></html>
"""

# The SQL of loanservice's list page, written out by hand: the columns it loads (every
# instrument and instrument_type column, as the ORM entity and its contains_eager type do).
BARE_COLUMNS = """instrument.id, instrument.asset_tag, instrument.type_id, instrument.size, instrument.make,
    instrument.model, instrument.serial_number, instrument.accessories, instrument.location,
    instrument.status, instrument.status_reason, instrument.condition_grade, instrument.purchased_on,
    instrument.purchase_cost, instrument.funding_source, instrument.replacement_value,
    instrument.send_adapted, instrument.pat_due_on, instrument.notes, instrument.labelled_at,
    instrument.created_at, instrument.updated_at,
    instrument_type.id AS type_id_1, instrument_type.name AS type_name, instrument_type.family,
    instrument_type.sizes, instrument_type.hire_band, instrument_type.default_accessories"""

BARE_ORDER = {
    "tag": "instrument.asset_tag",
    "condition": "instrument.condition_grade DESC, instrument.asset_tag DESC",
}


def bare_app(url: str) -> Flask:
    """A Flask app with no loanservice code: one view, hand-written SQL, a tiny template."""
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"
    app = Flask("bare")
    app.jinja_loader = DictLoader({"list.html": BARE_TEMPLATE})

    def ilike(column: str, param: str) -> str:
        if postgres:
            return f"{column} ILIKE :{param} ESCAPE '\\'"
        # As loanservice writes it on SQLite: plain LIKE already ignores ASCII case there.
        return f"{column} LIKE :{param} ESCAPE '\\'"

    @app.get("/instruments")
    def instruments():
        args = request.args
        where, params = [], {}
        q = args.get("q", "").strip()
        tag = "".join(q.split()).upper()
        if q and tag.startswith("MIX-"):
            # The hub's own tag: an index range on the tag, or the exact serial.
            where.append("(instrument.asset_tag BETWEEN :tag AND :tag_end OR instrument.serial_number = :q)")
            params.update(tag=tag, tag_end=tag + "\uffff", q=q)
        elif q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["prefix"] = "".join(escaped.split()).upper() + "%"
            params["like"] = f"%{escaped}%"
            where.append("(instrument.asset_tag LIKE :prefix ESCAPE '\\' OR "
                         + " OR ".join(ilike(c, "like") for c in
                                       ("instrument.serial_number", "instrument.make", "instrument.model"))
                         + ")")
        if args.get("type"):
            where.append("instrument.type_id = :type_id")
            params["type_id"] = int(args["type"])
        if args.get("status"):
            where.append("instrument.status = :status")
            params["status"] = args["status"]
        if args.get("condition"):
            where.append("instrument.condition_grade >= :condition")
            params["condition"] = int(args["condition"])
        page = max(int(args.get("page", 1)), 1)
        sql_from = "FROM instrument JOIN instrument_type ON instrument_type.id = instrument.type_id"
        sql_where = (" WHERE " + " AND ".join(where)) if where else ""
        order = BARE_ORDER[args.get("sort", "tag")]
        with engine.connect() as connection:
            rows = connection.execute(
                text(f"SELECT {BARE_COLUMNS} {sql_from}{sql_where} ORDER BY {order} LIMIT :limit OFFSET :offset"),
                {**params, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE},
            ).mappings().all()
            total = connection.execute(text(f"SELECT count(*) FROM instrument{sql_where}"), params).scalar()
        return render_template("list.html", rows=rows, total=total, page=page)

    app.bare_engine = engine
    return app


# ---------------------------------------------------------------- measuring


def loanservice_client(url: str):
    app = create_app(bench_config(url))
    client = app.test_client()
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"Could not sign in as {STAFF_EMAIL}: HTTP {response.status_code}")
    return app, client


def fetch(client, path: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.get(path)
    body = response.get_data(as_text=True)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: HTTP {response.status_code}")
    return elapsed, body


def measure(ls_client, bare_client, path: str, *, warmup: int, rounds: int, budget: float) -> tuple[list, list]:
    """Warm up both apps, then alternate one request to each until ``rounds`` or ``budget`` seconds."""
    for _ in range(warmup):
        fetch(ls_client, path)
        fetch(bare_client, path)
    ls_times, bare_times = [], []
    started = time.perf_counter()
    while len(ls_times) < rounds:
        ls_times.append(fetch(ls_client, path)[0])
        bare_times.append(fetch(bare_client, path)[0])
        if len(ls_times) >= 5 and time.perf_counter() - started > budget:
            break
    return ls_times, bare_times


class StatementLog:
    """Records the SQL statements (and parameters) an engine runs while switched on.

    Times taken inside the driver's execute() understate SQLite, which computes rows as they
    are fetched, so ``timed()`` replays each statement on a raw connection, fetching every
    row, and keeps the best of three runs.
    """

    def __init__(self, engine):
        self.engine = engine
        self.on = False
        self.entries: list[tuple[str, object]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.entries.append((statement, parameters))

    @contextmanager
    def capture(self):
        self.entries = []
        self.on = True
        try:
            yield self.entries
        finally:
            self.on = False

    def timed(self, entries) -> list[tuple[float, int, str]]:
        out = []
        connection = self.engine.raw_connection()
        try:
            for statement, parameters in entries:
                best, rows = float("inf"), 0
                for _ in range(3):
                    cursor = connection.cursor()
                    started = time.perf_counter()
                    cursor.execute(statement, parameters)
                    # A statement without rows (the search's SET LOCAL) is replayed all the same:
                    # it changes how the next ones are planned, as in the request.
                    rows = len(cursor.fetchall()) if cursor.description is not None else 0
                    best = min(best, time.perf_counter() - started)
                    cursor.close()
                out.append((best, rows, " ".join(statement.split())))
            connection.rollback()
        finally:
            connection.close()
        return out


def run_backend(label: str, url: str, args) -> list[dict]:
    print(f"\n== {label}: {args.instruments:,} instruments", flush=True)
    seconds = migrate_and_seed(url, args.instruments)
    print(f"   seeded in {seconds:.1f} s ({args.instruments / seconds:,.0f} instruments/s)", flush=True)
    if url.startswith("postgresql"):
        analyze(url)

    ls_app, ls_client = loanservice_client(url)
    bare = bare_app(url)
    bare_client = bare.test_client()
    with ls_app.app_context():
        log = StatementLog(db.engine)

    results = []
    for name, query in CASES:
        path = "/instruments" + (f"?{query}" if query else "")
        # Same rows in the same order from both apps, or the comparison means nothing.
        _, ls_body = fetch(ls_client, path)
        _, bare_body = fetch(bare_client, path)
        ls_tags, bare_tags = TAG_IN_ROW.findall(ls_body), TAG_IN_ROW.findall(bare_body)
        if ls_tags != bare_tags or not ls_tags:
            raise SystemExit(f"{name}: the two apps disagree ({len(ls_tags)} vs {len(bare_tags)} rows)")
        ls_times, bare_times = measure(ls_client, bare_client, path, warmup=args.warmup,
                                       rounds=args.rounds, budget=args.budget)
        with log.capture() as captured:
            fetch(ls_client, path)
        statements = log.timed(captured)
        row = dict(
            backend=label, case=name, path=path, n=len(ls_times), rows=len(ls_tags),
            ls=statistics.median(ls_times) * 1000, bare=statistics.median(bare_times) * 1000,
            statements=list(statements),
        )
        row["ratio"] = row["ls"] / row["bare"]
        results.append(row)
        print(f"   {name:<28} {row['ls']:8.1f} ms {row['bare']:8.1f} ms {row['ratio']:6.1f}x  (n={row['n']})",
              flush=True)

    with ls_app.app_context():
        db.session.remove()
        db.engine.dispose()
    bare.bare_engine.dispose()
    return results


def print_table(results: list[dict]) -> None:
    width = 98
    print("\n" + "=" * width)
    print(f"{'backend':<11}{'case':<28}{'loanservice ms/req':>19}{'(req/s)':>9}{'bare ms/req':>13}{'(req/s)':>9}"
          f"{'ratio':>7}{'n':>4}")
    print("-" * width)
    for r in results:
        print(f"{r['backend']:<11}{r['case']:<28}{r['ls']:>19.1f}{1000 / r['ls']:>9.0f}{r['bare']:>13.1f}"
              f"{1000 / r['bare']:>9.0f}{r['ratio']:>6.1f}x{r['n']:>4}")
    print("=" * width)


def print_statements(results: list[dict], ratio: float, slow_ms: float) -> None:
    slow = [r for r in results if r["ratio"] > ratio or r["ls"] > slow_ms]
    if not slow:
        print(f"\nNo case above {ratio:g}x or {slow_ms:g} ms.")
        return
    print(f"\nSQL run by one loanservice request (replayed, all rows fetched, best of 3), "
          f"for the cases above {ratio:g}x or {slow_ms:g} ms:")
    for r in slow:
        total = sum(t for t, _, _ in r["statements"]) * 1000
        print(f"\n[{r['backend']}] {r['case']}  ({r['path']}): {len(r['statements'])} statements, "
              f"{total:.1f} ms of {r['ls']:.1f} ms in SQL")
        for seconds, rows, statement in r["statements"]:
            shown = statement if len(statement) <= 160 else statement[:100] + " ... " + statement[-55:]
            print(f"  {seconds * 1000:7.1f} ms {rows:>5} rows  {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instruments", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL",
                        help="also run on PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/postgres "
                             "(a database ls_bench is created on that server and dropped afterwards)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite (with --postgres)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests per app and case")
    parser.add_argument("--rounds", type=int, default=40, help="at most this many timed requests per app and case")
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per case before stopping early")
    parser.add_argument("--explain-above", type=float, default=3.0,
                        help="list the SQL of cases whose ratio is above this...")
    parser.add_argument("--slow-ms", type=float, default=50.0, help="...or whose loanservice time is above this")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; "
          f"page size {PAGE_SIZE}")
    started = time.perf_counter()
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="ls-bench-") as folder:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
            results += run_backend("SQLite", url, args)
    if args.postgres:
        with postgres_database(args.postgres) as url:
            results += run_backend("PostgreSQL", url, args)
    print_table(results)
    print_statements(results, args.explain_above, args.slow_ms)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
