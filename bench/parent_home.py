"""Benchmark: a parent's home page with 100,000 instruments and 1,000 held reservations, against the same page
on the demo's 400 instruments.

One run does everything, on SQLite and (with ``--postgres URL``) on PostgreSQL:

1. builds two fresh databases through the migrations (as ``tests/conftest.py`` does) and seeds
   them with ``loanservice.demo.seed.seed``: a big hub (``--instruments``, default 100,000) and a
   small one (``--small``, default 400, the demo's own size); the big hub also gets ``--held``
   (default 1,000) other children with an instrument held for them and ``--waiting`` (default 500)
   more children on the waiting lists the demo parent's children are on, behind them (so both pages
   show the same places); on PostgreSQL it then runs ``VACUUM ANALYZE``, as autovacuum would soon after;
2. signs a Flask test client in to each as the demo parent (``parent@demo.hub``, whose children
   have reservations held, ready to collect, waiting, collected, lapsed and cancelled, and loans)
   and checks both pages show the same reservations (places, states);
3. times ``GET /`` on each: warm-up requests, then requests alternating between the two apps,
   up to ``--rounds`` pairs or ``--budget`` seconds; prints the medians and their ratio (the page's
   cost should not grow with the stock: about 1.0x), the statements one big-hub request runs
   and their times in place, and the load average.

Usage:  .venv/bin/python bench/parent_home.py [--postgres URL] [--no-sqlite] [--instruments N] [--held N]
"""
from __future__ import annotations

import argparse
import html
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# The shared helpers of the instrument-list bench: migrations and seed, config, PostgreSQL database.
from inventory_pages import analyze, bench_config, migrate_and_seed, postgres_database  # noqa: E402
from sqlalchemy import event, insert, select, update

from loanservice import create_app  # noqa: E402  (inventory_pages put the project on sys.path)
from loanservice.borrowers.models import Family, Pupil  # noqa: E402
from loanservice.extensions import db  # noqa: E402
from loanservice.inventory.models import Instrument, InstrumentStatus  # noqa: E402
from loanservice.reservations.models import Reservation, ReservationStatus  # noqa: E402
from loanservice.reservations.services import reservable  # noqa: E402
from loanservice.timeutil import today, utcnow  # noqa: E402

PARENT_EMAIL, PARENT_PASSWORD = "parent@demo.hub", "demo-parent-pass"
# A reservation's row (a loan's row has no Status cell).
RESERVATION = re.compile(r'<th scope="row">(.*?)</th>\s*<td data-label="Status"><span class="badge">(.*?)</span></td>'
                         r'\s*<td data-label="Details">(.*?)(?:<br>|</td>)', re.S)


def add_other_families(url: str, held: int, waiting: int) -> None:
    """``held`` children of other families with an instrument held for each (reserved, as the service
    leaves it), and ``waiting`` more on each waiting list the demo's children are on, joined after them."""
    app = create_app(bench_config(url))
    with app.app_context():
        session, now = db.session, utcnow()
        lists = session.execute(select(Reservation.type_id, Reservation.size)
                                .where(Reservation.status == ReservationStatus.WAITING).distinct()).all()
        free = session.execute(select(Instrument.id, Instrument.type_id, Instrument.size).where(*reservable())
                               .order_by(Instrument.id).limit(held)).all()
        wanted = [(i.type_id, i.size, i.id) for i in free] + [(t, s, None) for t, s in lists for _ in range(waiting)]
        families = session.scalars(insert(Family).returning(Family.id, sort_by_parameter_order=True), [
            {"name": f"Bench family {n}", "email": f"b{n}@bench.example"} for n in range(len(wanted))]).all()
        pupils = session.scalars(insert(Pupil).returning(Pupil.id, sort_by_parameter_order=True), [
            {"name": f"Bench child {n}", "family_id": family_id} for n, family_id in enumerate(families)]).all()
        session.execute(insert(Reservation), [
            {"pupil_id": pupil_id, "type_id": type_id, "size": size, "preferred_start_on": today(),
             "status": (ReservationStatus.HELD if instrument_id else ReservationStatus.WAITING).value,
             "instrument_id": instrument_id, "held_at": now if instrument_id else None, "created_at": now}
            for pupil_id, (type_id, size, instrument_id) in zip(pupils, wanted, strict=True)])
        session.execute(update(Instrument).where(Instrument.id.in_([i.id for i in free]))
                        .values(status=InstrumentStatus.RESERVED.value))
        session.commit()
        db.engine.dispose()


def signed_in_client(url: str):
    app = create_app(bench_config(url))
    client = app.test_client()
    response = client.post("/login", data={"email": PARENT_EMAIL, "password": PARENT_PASSWORD})
    assert response.status_code == 302, f"demo parent could not sign in: {response.status_code}"
    return app, client


def reservations_shown(page: str) -> list[tuple[str, ...]]:
    """(instrument, status, details) of every reservation row on the page, in order."""
    rows = (RESERVATION.search(row) for row in re.findall(r"<tr>(.*?)</tr>", page, re.S))
    return [tuple(html.unescape(" ".join(cell.split())) for cell in row.groups()) for row in rows if row]


def get_home(client) -> float:
    started = time.perf_counter()
    response = client.get("/")
    response.get_data()
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    return elapsed


def time_pair(big, small, warmup: int, rounds: int, budget: float) -> tuple[list[float], list[float]]:
    """Alternate requests to the two apps (which goes first flips each pair); seconds per request."""
    for _ in range(warmup):
        get_home(big), get_home(small)
    big_times, small_times = [], []
    deadline = time.perf_counter() + budget
    for n in range(rounds):
        if n % 2:
            small_times.append(get_home(small))
            big_times.append(get_home(big))
        else:
            big_times.append(get_home(big))
            small_times.append(get_home(small))
        if time.perf_counter() > deadline:
            break
    return big_times, small_times


@contextmanager
def statements_timed(app):
    """The statements run inside the block, each with its time around ``cursor.execute``, in ms."""
    with app.app_context():
        engine = db.engine
    statements, starts = [], {}

    def before(conn, cursor, statement, parameters, context, executemany):
        starts[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        statements.append(((time.perf_counter() - starts.pop(id(cursor))) * 1000, statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def run_backend(name: str, big_url: str, small_url: str, args) -> dict:
    for url, count in ((big_url, args.instruments), (small_url, args.small)):
        seconds = migrate_and_seed(url, count)
        print(f"{name}: seeded {count:,} instruments in {seconds:.1f} s")
        if url == big_url:
            add_other_families(url, args.held, args.waiting)
            print(f"{name}: {args.held:,} other children with an instrument held, {args.waiting:,} more waiting "
                  "on each of the demo children's lists")
        if url.startswith("postgresql"):
            analyze(url)
    (big_app, big), (small_app, small) = signed_in_client(big_url), signed_in_client(small_url)
    shown_big, shown_small = (reservations_shown(c.get("/").get_data(as_text=True)) for c in (big, small))
    print(f"{name}: the demo parent's reservations, as the page shows them:")
    for row in shown_big:
        print("   ", " | ".join(row))
    if shown_big != shown_small:
        print(f"{name}: NOTE the small hub's page shows other reservations: {shown_small}")
    big_times, small_times = time_pair(big, small, args.warmup, args.rounds, args.budget)
    with statements_timed(big_app) as statements:
        get_home(big)
    for app in (big_app, small_app):
        with app.app_context():
            db.engine.dispose()
    return {"backend": name, "big": statistics.median(big_times) * 1000,
            "small": statistics.median(small_times) * 1000, "n": len(big_times), "statements": statements}


def print_results(results: list[dict], args) -> None:
    print(f"\nGET / as {PARENT_EMAIL}; medians, ms per request (test client, whole WSGI request, body read)")
    big = f"{args.instruments:,} instruments, {args.held:,} held"
    print(f"{'backend':<11} {big:>31} {f'{args.small:,} instruments':>18} "
          f"{'ratio':>6} {'n':>4} {'statements':>11}")
    for r in results:
        print(f"{r['backend']:<11} {r['big']:>28.1f} ms {r['small']:>15.1f} ms {r['big'] / r['small']:>5.2f}x "
              f"{r['n']:>4} {len(r['statements']):>11}")
    for r in results:
        print(f"\n{r['backend']}: the statements of one request at {args.instruments:,} instruments "
              f"({sum(ms for ms, _ in r['statements']):.1f} ms in all)")
        for ms, statement in r["statements"]:
            print(f"  {ms:7.2f} ms  {' '.join(statement.split())[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instruments", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=400, help="instruments in the baseline hub")
    parser.add_argument("--held", type=int, default=1_000, help="other children with an instrument held (big hub)")
    parser.add_argument("--waiting", type=int, default=500,
                        help="other children waiting on each list the demo parent's children wait on (big hub)")
    parser.add_argument("--postgres", metavar="URL",
                        help="also run on PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/postgres "
                             "(databases ls_bench_parent and ls_bench_parent_small are created on that server "
                             "and dropped afterwards)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite (with --postgres)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests per app")
    parser.add_argument("--rounds", type=int, default=40, help="at most this many timed requests per app")
    parser.add_argument("--budget", type=float, default=8.0, help="seconds of timed requests before stopping early")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    started = time.perf_counter()
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="ls-bench-") as folder:
            results.append(run_backend("SQLite", f"sqlite:///{Path(folder) / 'big.sqlite3'}",
                                       f"sqlite:///{Path(folder) / 'small.sqlite3'}", args))
    if args.postgres:
        with postgres_database(args.postgres, "ls_bench_parent") as big_url, \
                postgres_database(args.postgres, "ls_bench_parent_small") as small_url:
            results.append(run_backend("PostgreSQL", big_url, small_url, args))
    print_results(results, args)
    print(f"\nLoad average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
