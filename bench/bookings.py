"""Benchmark: "free sets of a type for a term" and a set's year, with 2,000 sets and 20,000 bookings,
against a bare Flask page running the same SQL.

One run:

1. builds a fresh SQLite database (and, with ``--postgres URL``, a fresh PostgreSQL database that is
   dropped afterwards) through the migrations, seeds the small demo hub (users, terms, schools), adds
   a fourth school year of terms, then 2,000 sets of 15 instruments (four types) and 20,000
   bookings (ten terms of twelve for each set: collected, delivered or allocated), in bulk;
2. times, through a signed-in test client, ``/bookings/free-sets?type_id=..&period=term-..`` (a
   term to come) and ``/sets/<id>/year`` (a set with a booking in every term of its year);
3. times a bare Flask app (no loanservice code: SQLAlchemy Core ``text()`` on the same database)
   whose two views run the same SQL, compiled from loanservice's own queries (the free-set query)
   or written out the same (the year's three queries), and render a minimal table; and, for the
   floor under both, a signed-in page with one query against a bare page running ``SELECT 1``;
4. prints loanservice ms/request, bare ms/request and the ratio of medians, requests taken
   alternately from the two apps after a warm-up.

Usage:  .venv/bin/python bench/bookings.py [--postgres URL] [--no-sqlite] [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date

from flask import Flask, render_template_string
from inventory_pages import (  # noqa: E402
    analyze,
    fetch,
    loanservice_client,
    migrate_and_seed,
    postgres_database,
)
from sqlalchemy import create_engine, insert, select, text

from loanservice import create_app  # noqa: E402  (inventory_pages put the project on sys.path)
from loanservice.bookings import services  # noqa: E402
from loanservice.bookings.models import Booking, BookingStatus  # noqa: E402
from loanservice.extensions import db  # noqa: E402
from loanservice.inventory.models import Instrument, InstrumentType, TagKind  # noqa: E402
from loanservice.inventory.services import register_tags  # noqa: E402
from loanservice.loans.models import AcademicTerm  # noqa: E402
from loanservice.schools.models import School  # noqa: E402
from loanservice.sets.models import ClassroomSet, ClassroomSetItem  # noqa: E402
from loanservice.timeutil import today  # noqa: E402

SETS, PER_SET, BOOKINGS_PER_SET = 2_000, 15, 10
TYPES = ["Bench ukulele", "Bench djembe", "Bench violin", "Bench glockenspiel"]


def add_sets_and_bookings(url: str) -> tuple[int, str, int, int]:
    """The bulk data; returns (type id to search, period key to search, a set id, its school year)."""
    from inventory_pages import bench_config

    app = create_app(bench_config(url))
    with app.app_context():
        session = db.session
        year = services.school_year_of(today())
        for y in (year + 2,):  # the demo has last year, this year and next: add one more
            for name, start, end in ((f"Autumn {y}", date(y, 9, 3), date(y, 12, 19)),
                                     (f"Spring {y + 1}", date(y + 1, 1, 6), date(y + 1, 3, 27)),
                                     (f"Summer {y + 1}", date(y + 1, 4, 14), date(y + 1, 7, 22))):
                if session.scalar(select(AcademicTerm.id).where(AcademicTerm.name == name)) is None:
                    session.add(AcademicTerm(name=name, starts_on=start, ends_on=end))
        session.flush()
        terms = session.scalars(select(AcademicTerm).order_by(AcademicTerm.starts_on)).all()[-12:]
        types = []
        for name in TYPES:
            kind = InstrumentType(name=name, family="strings", sizes=[])
            session.add(kind)
            types.append(kind)
        session.flush()
        schools = session.scalars(select(School.id)).all()
        instrument_tags = [f"BEN-{n:06d}" for n in range(SETS * PER_SET)]
        register_tags(session, instrument_tags, TagKind.INSTRUMENT)
        set_tags = [f"SET-BEN-{n:05d}" for n in range(SETS)]
        register_tags(session, set_tags, TagKind.SET)
        session.execute(insert(Instrument), [
            dict(asset_tag=tag, type_id=types[(n // PER_SET) % len(types)].id, size="", make="Bench",
                 condition_grade=2) for n, tag in enumerate(instrument_tags)])
        ids = dict(session.execute(select(Instrument.asset_tag, Instrument.id)
                                   .where(Instrument.asset_tag.like("BEN-%"))).all())
        session.execute(insert(ClassroomSet), [dict(name=f"Bench set {n:05d}", tag=tag, notes="")
                                               for n, tag in enumerate(set_tags)])
        set_ids = dict(session.execute(select(ClassroomSet.tag, ClassroomSet.id)
                                       .where(ClassroomSet.tag.like("SET-BEN-%"))).all())
        session.execute(insert(ClassroomSetItem), [
            dict(set_id=set_ids[set_tags[n // PER_SET]], instrument_id=ids[tag])
            for n, tag in enumerate(instrument_tags)])
        now = today()
        rows = []
        for n, tag in enumerate(set_tags):
            skipped = {n % 12, (n * 7 + 3) % 12} if n % 12 != (n * 7 + 3) % 12 else {n % 12, (n + 1) % 12}
            for t, term in enumerate(terms):
                if t in skipped:
                    continue
                past, current = term.ends_on < now, term.starts_on <= now <= term.ends_on
                status = (BookingStatus.COLLECTED if past else BookingStatus.DELIVERED if current
                          else BookingStatus.ALLOCATED)
                rows.append(dict(
                    school_id=schools[n % len(schools)], type_id=types[n % len(types)].id, pupils=PER_SET,
                    sizes="", teacher="", period=term.name, starts_on=term.starts_on, ends_on=term.ends_on,
                    notes="", status=status, decline_reason="", set_id=set_ids[tag],
                    delivery_on=term.starts_on, collection_on=term.ends_on,
                    delivered_on=term.starts_on if past or current else None,
                    collected_on=term.ends_on if past else None))
        for start in range(0, len(rows), 5_000):
            session.execute(insert(Booking), rows[start:start + 5_000])
        session.commit()
        future = next(t for t in terms if t.starts_on > now)
        busy = set_ids[set_tags[len(set_tags) // 2]]
        result = types[0].id, f"term-{future.id}", busy, services.school_year_of(now) + 1
        db.session.remove()
        db.engine.dispose()
        return result


# ---------------------------------------------------------------- the bare app

FREE_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><title>Free sets</title></head><body>
<h1>{{ rows|length }} free sets</h1><table><tr><th>Set</th><th>Instruments</th></tr>
{% for r in rows %}<tr><th><a href="/sets/{{ r.id }}">{{ r.name }}</a></th><td>{{ r.size }}</td></tr>{% endfor %}
</table></body></html>"""

YEAR_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><title>Year</title></head><body>
<h1>{{ name }}</h1><table><tr><th>Term</th><th>State</th><th>School</th></tr>
{% for term, state, school in cells %}<tr><th>{{ term.name }}</th><td>{{ state }}</td><td>{{ school }}</td></tr>\
{% endfor %}</table></body></html>"""


def bare_app(url: str, free_sql: str) -> Flask:
    engine = create_engine(url)
    app = Flask("bare")

    @app.get("/floor")
    def floor():
        with engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar()
        return render_template_string("<!doctype html><title>Floor</title><p>Nothing here.</p>")

    @app.get("/free")
    def free():
        with engine.connect() as connection:
            rows = connection.execute(text(free_sql)).mappings().all()
        return render_template_string(FREE_TEMPLATE, rows=rows)

    @app.get("/year/<int:set_id>/<int:year>")
    def year(set_id: int, year: int):
        with engine.connect() as connection:
            name = connection.execute(text("SELECT name FROM classroom_set WHERE id = :id"), {"id": set_id}).scalar()
            terms = connection.execute(text(
                "SELECT id, name, starts_on, ends_on FROM academic_term WHERE starts_on >= :first AND "
                "starts_on <= :last ORDER BY starts_on"),
                {"first": date(year, 9, 1), "last": date(year + 1, 8, 31)}).mappings().all()
            first, last = terms[0]["starts_on"], terms[-1]["ends_on"]
            bookings = connection.execute(text(
                "SELECT booking.id, booking.starts_on, booking.ends_on, booking.status, booking.set_loan_id, "
                "school.name AS school_name FROM booking JOIN school ON school.id = booking.school_id "
                "WHERE booking.set_id = :id AND booking.status IN ('allocated', 'delivered', 'collected') "
                "AND booking.starts_on <= :last AND booking.ends_on >= :first"),
                {"id": set_id, "first": first, "last": last}).mappings().all()
            loans = connection.execute(text(
                "SELECT set_loan.id, set_loan.started_on, set_loan.due_on, set_loan.closed_on, "
                "school.name AS school_name FROM set_loan JOIN school ON school.id = "
                "set_loan.school_id WHERE set_loan.set_id = :id AND set_loan.started_on <= :last AND "
                "(set_loan.closed_on IS NULL OR set_loan.closed_on >= :first)"),
                {"id": set_id, "first": first, "last": last}).mappings().all()
        cells = []
        for term in terms:
            start, end = _day(term["starts_on"]), _day(term["ends_on"])
            loan = next((x for x in loans if _day(x["started_on"]) <= end), None)
            booking = next((b for b in bookings if _day(b["starts_on"]) <= end and _day(b["ends_on"]) >= start
                            and b["status"] != "collected"), None)
            cells.append((term, "Out" if loan else "Booked" if booking else "Free",
                          (loan or booking or {}).get("school_name", "")))
        return render_template_string(YEAR_TEMPLATE, name=name, cells=cells)

    return app


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def free_sets_sql(url: str, type_id: int, period_key: str) -> str:
    """loanservice's own free-set query for the period, compiled with its values for the bare app."""
    from inventory_pages import bench_config

    app = create_app(bench_config(url))
    with app.app_context():
        period = services.resolve_period(db.session, period_key)
        query = services.free_sets_query(type_id, period.starts_on, period.ends_on)
        sql = str(query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
        db.engine.dispose()
    return sql


def measure(ls_client, ls_path, bare_client, bare_path, rounds: int) -> tuple[float, float]:
    for _ in range(3):
        fetch(ls_client, ls_path)
        fetch(bare_client, bare_path)
    ls, bare = [], []
    for _ in range(rounds):
        ls.append(fetch(ls_client, ls_path)[0])
        bare.append(fetch(bare_client, bare_path)[0])
    return statistics.median(ls), statistics.median(bare)


def run_backend(label: str, url: str, rounds: int) -> list[tuple]:
    print(f"\n== {label}", flush=True)
    started = time.perf_counter()
    migrate_and_seed(url, 60)
    type_id, period_key, set_id, year = add_sets_and_bookings(url)
    print(f"   {SETS:,} sets, {SETS * BOOKINGS_PER_SET:,} bookings in {time.perf_counter() - started:.1f} s",
          flush=True)
    if url.startswith("postgresql"):
        analyze(url)
    _, ls_client = loanservice_client(url)
    bare_client = bare_app(url, free_sets_sql(url, type_id, period_key)).test_client()
    # The pages answer the same: as many free sets on each.
    ls_body = fetch(ls_client, f"/bookings/free-sets?type_id={type_id}&period={period_key}")[1]
    bare_body = fetch(bare_client, "/free")[1]
    found = bare_body.split("<h1>")[1].split(" ")[0]
    assert f"{found} free" in ls_body, "loanservice and the bare page disagree on the free sets"
    results = []
    for case, ls_path, bare_path in (
            (f"free sets of a type for a term ({found} found)",
             f"/bookings/free-sets?type_id={type_id}&period={period_key}", "/free"),
            ("a set's year (timeline page)", f"/sets/{set_id}/year?year={year}", f"/year/{set_id}/{year}"),
            # What any signed-in page costs (the user, the session, the layout, the request log),
            # against a page that runs SELECT 1: the floor under both cases above.
            ("floor: the store calendar page, one query", "/bookings/store-calendar", "/floor")):
        ls, bare = measure(ls_client, ls_path, bare_client, bare_path, rounds)
        results.append((label, case, ls * 1000, bare * 1000, ls / bare))
        print(f"   {case}: loanservice {ls * 1000:.1f} ms, bare {bare * 1000:.1f} ms, ratio {ls / bare:.2f}x",
              flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            results += run_backend("SQLite", f"sqlite:///{folder}/bench.sqlite3", args.rounds)
    if args.postgres:
        with postgres_database(args.postgres, "ls_bench_bookings") as url:
            results += run_backend("PostgreSQL", url, args.rounds)
    print("\n| database | case | loanservice ms | bare ms | ratio |\n|---|---|---|---|---|")
    for label, case, ls, bare, ratio in results:
        print(f"| {label} | {case} | {ls:.1f} | {bare:.1f} | {ratio:.2f}x |")
    if any(r[4] > 2 for r in results if not r[1].startswith("floor")):
        sys.exit("A ratio is above the 2x target.")


if __name__ == "__main__":
    main()
