"""Benchmark: a stocktake scan against a classroom set check-in scan, in the same run.

The store counts its shelves with the same scanner, and the same scan queue (static/scan-queue.js),
as it checks sets back in: a stocktake scan should cost no more than a set check-in scan. One run:

1. builds a fresh database through the migrations and seeds it with ``loanservice.demo.seed.seed``
   (``--instruments``, default 20,000) plus closed past loans (``--past-loans``, default 100,000),
   with ``bench/set_checkin.py``'s helpers; ``VACUUM ANALYZE`` on PostgreSQL;
2. through the services: 30-instrument classroom sets lent to a school (``prepare_sets``), and a
   stocktake of the whole store (``start_stocktake``: every instrument the records place in the
   store is expected);
3. a test client signed in as ``staff@demo.hub`` alternates, item by item, one **set check-in scan**
   (``POST /set-loans/<id>/check-in``) and one **stocktake scan** (``POST /stocktakes/<id>/scan``),
   both with the label's URL as a handheld scanner types it and asking for JSON as the scan queue
   does; which goes first flips every round, and the first round warms up. Each stocktake scan is of
   a different instrument of the store (a first count, which writes, not a repeat).
4. prints the median ms per scan of each, the ratio (stocktake / check-in) and the SQL statements
   per scan.

Usage:  .venv/bin/python bench/stocktake_scan.py [--rounds N] [--postgres URL] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(path))

from set_checkin import (  # noqa: E402
    JSON,
    SET_SIZE,
    StatementLog,
    bench_config,
    build_database,
    label_url,
    postgres_database,
    prepare_sets,
)

from loanservice import create_app  # noqa: E402
from loanservice.extensions import db  # noqa: E402

DB_NAME = "ls_bench_stocktake"
STAFF_EMAIL, STAFF_PASSWORD = "staff@demo.hub", "demo-staff-pass"


def prepare_stocktake(url: str, count: int) -> tuple[int, list[str]]:
    """A stocktake of the whole store, started through the services, and ``count`` tags to scan in it:
    instruments in the store, in no set, spread over the table."""
    from loanservice.accounts.models import User
    from loanservice.inventory.models import Instrument, InstrumentStatus
    from loanservice.sets.models import ClassroomSetItem
    from loanservice.stocktake.models import Place
    from loanservice.stocktake.services import start_stocktake

    app = create_app(bench_config(url))
    with app.app_context():
        session = db.session
        staff = session.scalar(select(User).where(User.email == STAFF_EMAIL))
        stocktake = start_stocktake(session, staff, place=Place.STORE)
        session.commit()
        tags = session.scalars(select(Instrument.asset_tag).where(
            Instrument.status == InstrumentStatus.AVAILABLE,
            Instrument.id.not_in(select(ClassroomSetItem.instrument_id))).order_by(Instrument.id)).all()
        if len(tags) < count:
            raise SystemExit(f"Only {len(tags)} instruments in the store for {count} stocktake scans.")
        step = len(tags) // count
        stocktake_id = stocktake.id
        db.session.remove()
        db.engine.dispose()
    return stocktake_id, [tags[i * step] for i in range(count)]


def staff_client(app):
    client = app.test_client()
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": STAFF_PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"Could not sign in as {STAFF_EMAIL}: HTTP {response.status_code}")
    return client


def timed_post(client, log: StatementLog, url: str, data: dict) -> tuple[float, int]:
    with log.capture() as captured:
        started = time.perf_counter()
        response = client.post(url, data=data, headers=JSON)
        answer = response.get_json()
        elapsed = time.perf_counter() - started
    if response.status_code != 200 or not answer or not answer.get("ok"):
        raise SystemExit(f"{url} {data}: HTTP {response.status_code}\n{response.get_data(as_text=True)[:2000]}")
    return elapsed, len(captured)


def run_backend(label: str, url: str, args) -> dict:
    print(f"\n== {label}: {args.instruments:,} instruments, {args.past_loans:,} past loans", flush=True)
    times = build_database(url, args.instruments, args.past_loans)
    print(f"   seed {times['seed']:.1f} s, past loans {times['past_loans']:.1f} s", flush=True)
    rounds = args.rounds + 1  # the first warms up
    _, sets = prepare_sets(url, rounds)
    stocktake_id, tags = prepare_stocktake(url, rounds * SET_SIZE)
    print(f"   {len(sets)} sets lent, a stocktake of the store started", flush=True)

    app = create_app(bench_config(url))
    client = staff_client(app)
    with app.app_context():
        log = StatementLog(db.engine)
    checkin, counted = [], []
    statements = {"check-in": Counter(), "stocktake": Counter()}
    for n, (set_loan_id, set_tags) in enumerate(sets):
        round_in, round_count = [], []
        for i, set_tag in enumerate(set_tags):
            scans = [("check-in", f"/set-loans/{set_loan_id}/check-in", {"code": label_url(set_tag), "grade": "2"}),
                     ("stocktake", f"/stocktakes/{stocktake_id}/scan",
                      {"code": label_url(tags[n * SET_SIZE + i])})]
            if n % 2:
                scans.reverse()
            for kind, target, data in scans:
                elapsed, count = timed_post(client, log, target, data)
                (round_in if kind == "check-in" else round_count).append(elapsed)
                if n:
                    statements[kind][count] += 1
        print(f"   round {n}{' (warm-up)' if n == 0 else ''}: check-in {statistics.median(round_in) * 1000:.2f} ms, "
              f"stocktake {statistics.median(round_count) * 1000:.2f} ms a scan", flush=True)
        if n:
            checkin += round_in
            counted += round_count
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    result = dict(backend=label, n=len(counted), checkin=statistics.median(checkin) * 1000,
                  stocktake=statistics.median(counted) * 1000, statements=statements)
    result["ratio"] = result["stocktake"] / result["checkin"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instruments", type=int, default=20_000)
    parser.add_argument("--past-loans", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds of 30 scans of each (after a warm-up)")
    parser.add_argument("--postgres", metavar="URL",
                        help=f"also run on PostgreSQL (a database {DB_NAME} is created there and dropped afterwards)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="ls-bench-stocktake-") as folder:
            results.append(run_backend("SQLite", f"sqlite:///{Path(folder) / 'bench.sqlite3'}", args))
    if args.postgres:
        with postgres_database(args.postgres, DB_NAME) as url:
            results.append(run_backend("PostgreSQL", url, args))
    print("\n" + "=" * 78)
    scans = results[0]["n"] if results else 0
    print(f"Per scan (median of {scans} scans of each, ms; JSON answers, as the scan queue)")
    print(f"{'backend':<12}{'set check-in':>14}{'stocktake':>12}{'ratio':>8}   SQL statements (count: scans)")
    print("-" * 78)
    for r in results:
        print(f"{r['backend']:<12}{r['checkin']:>14.2f}{r['stocktake']:>12.2f}{r['ratio']:>7.2f}x   "
              f"check-in {dict(r['statements']['check-in'])}, stocktake {dict(r['statements']['stocktake'])}")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
