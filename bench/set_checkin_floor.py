"""How fast could a set scan be at all? The floor under ``bench/set_checkin.py``'s figure, on PostgreSQL.

The set-scan target is "each scan within 3 times a bare Flask page doing one indexed UPDATE". This
script measures, in one run and alternating item by item, three ways to check an item of a
30-instrument set back in, each on its own sets lent to the same school:

1. **loanservice**: the real endpoint, as ``bench/set_checkin.py`` times it (JSON answer);
2. **floor**: a view added to the same app, behind the same sign-in and role check and the same
   form, that sends the very SQL statements the real scan sends (the signed-in user, the locking
   query, the one check-in statement with its history rows and questions) straight through the
   driver, with the values worked out in a few lines: no ORM objects, no check-in rules, no
   ``Batch``. Nothing a scan does in Python could make it faster than this;
3. **bare**: ``bench/set_checkin.py``'s bare page (one indexed UPDATE in an app of its own).

The floor's statements are copied from a real scan, once, at the start; if the check-in's statement
changes shape the script stops and says so rather than time something else.

Usage:  .venv/bin/python bench/set_checkin_floor.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""
from __future__ import annotations

import argparse
import enum
import os
import platform
import statistics
import time
from datetime import date, datetime

import set_checkin as sc
from flask import jsonify
from flask_login import current_user
from psycopg.types.json import Json
from sqlalchemy import event

from loanservice import create_app
from loanservice.extensions import db
from loanservice.sets.forms import ScanInForm
from loanservice.sets.views import staff_or_school

# The parameters of the check-in statement (loanservice/batch.py's names) for a scan with a grade and
# no note: if these change, the floor below no longer sends what the real scan sends.
CHECK_IN_PARAMS = {
    "u0_status", "u0_status_reason", "u0_condition_grade", "u0_updated_at", "u0_pk",
    "u1_status", "u1_closed_on", "u1_condition_at_return", "u1_damaged", "u1_return_note", "u1_closed_by_id", "u1_pk",
    "i0_0_instrument_id", "i0_0_grade", "i0_0_reason", "i0_0_note", "i0_0_checked_by_id", "i0_0_checked_at",
    *(f"i1_{n}_{key}" for n in range(3) for key in
      ("at", "actor_id", "action", "entity_type", "entity_id", "instrument_id", "summary", "changes")),
    "r0_back_on", "r0_item", "a0_type_id", "a0_size", "a1_set_loan_id", "a2_set_loan_id",
}


class Copied:
    """The real scan's statements, filled in from one scan before the timing starts."""
    locate: str = ""
    check_in: str = ""
    constants: dict = {}


def floor_view(set_loan_id: int):
    """The real scan's SQL and nothing else: the user was loaded by the sign-in check, as for the real one."""
    form = ScanInForm()
    if not form.validate_on_submit():
        return jsonify(ok=False), 422
    tag = form.code.data.rsplit("/", 1)[-1].strip().upper()
    grade = form.grade.data
    connection = db.session.connection()
    row = connection.exec_driver_sql(Copied.locate, {"set_loan_id": set_loan_id, "tag": tag}).one()._mapping
    now, today, user_id = datetime.now(), date.today(), current_user.id
    instrument_id, loan_id = row["id_1"], row["id_2"]
    params = dict(Copied.constants)
    params.update(
        u0_condition_grade=grade, u0_updated_at=now, u0_pk=instrument_id,
        u1_closed_on=today, u1_condition_at_return=grade, u1_closed_by_id=user_id, u1_pk=loan_id,
        i0_0_instrument_id=instrument_id, i0_0_grade=grade, i0_0_checked_by_id=user_id, i0_0_checked_at=now,
        r0_back_on=today, r0_item=instrument_id, a0_type_id=row["type_id"], a0_size=row["size"],
        a1_set_loan_id=set_loan_id, a2_set_loan_id=set_loan_id,
        i1_0_entity_id=instrument_id, i1_1_entity_id=instrument_id, i1_2_entity_id=loan_id,
        i1_0_changes=Json({"condition_grade": [row["condition_grade"], grade], "reason": "return"}),
        i1_1_changes=Json({"status": [row["status"], "available"]}),
        i1_2_changes=Json({"grade": grade, "note": "", "damaged": False}),
        i1_2_summary=f"Returned by {row['name']}",
    )
    for n in range(3):
        params.update({f"i1_{n}_at": now, f"i1_{n}_actor_id": user_id, f"i1_{n}_instrument_id": instrument_id})
    back, lost = connection.exec_driver_sql(Copied.check_in, params).one()[1:]
    db.session.commit()
    return jsonify(ok=True, tag=tag, back=back + 1, lost=lost)


def copy_statements(app, client, set_loan_id: int, tag: str) -> None:
    """Scan one item through the real endpoint and keep the statements it sent."""
    seen = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", listen)
    try:
        response = client.post(f"/set-loans/{set_loan_id}/check-in",
                               data={"code": sc.label_url(tag), "grade": "2"}, headers=sc.JSON)
    finally:
        with app.app_context():
            event.remove(db.engine, "before_cursor_execute", listen)
    if response.status_code != 200 or len(seen) != 3:
        raise SystemExit(f"Expected one scan of 3 statements, got HTTP {response.status_code} and {len(seen)}.")
    (user_sql, _), (locate_sql, _), (check_in_sql, params) = seen
    if not (user_sql.lstrip().startswith("SELECT user_account.") and "FOR UPDATE" in locate_sql
            and check_in_sql.lstrip().startswith("WITH") and set(params) == CHECK_IN_PARAMS):
        raise SystemExit("The scan's statements have changed shape: update CHECK_IN_PARAMS and floor_view.")
    Copied.locate, Copied.check_in = locate_sql, check_in_sql
    Copied.constants = {key: (value.value if isinstance(value, enum.Enum) else value) for key, value in params.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--instruments", type=int, default=100_000)
    parser.add_argument("--past-loans", type=int, default=1_000_000)
    parser.add_argument("--sets", type=int, default=6, help="timed sets of 30 per way (after a warm-up set)")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")

    with sc.postgres_database(args.postgres, name="ls_bench_floor") as url:
        times = sc.build_database(url, args.instruments, args.past_loans)
        print(f"{args.instruments:,} instruments, {args.past_loans:,} past loans: seed {times['seed']:.0f} s, "
              f"past loans {times['past_loans']:.0f} s", flush=True)
        rounds = args.sets + 1
        _, sets = sc.prepare_sets(url, 3 * rounds + 1)
        app = create_app(sc.bench_config(url))
        app.add_url_rule("/bench-floor/<int:set_loan_id>", "bench_floor", staff_or_school(floor_view),
                         methods=["POST"])
        client = sc.signed_in_client(app)
        copy_statements(app, client, sets[-1][0], sets[-1][1][0])
        bare = sc.bare_app(url)
        bare_client = bare.test_client()

        def real(set_loan_id, tag):
            return timed(client, f"/set-loans/{set_loan_id}/check-in", tag)

        def floor(set_loan_id, tag):
            return timed(client, f"/bench-floor/{set_loan_id}", tag)

        def bare_page(_, tag):
            return sc.bare_scan(bare_client, tag)

        ways = [("loanservice", real), ("floor", floor), ("bare", bare_page)]
        results = {name: [] for name, _ in ways}
        for n in range(rounds):
            turn = ways[n % 3:] + ways[:n % 3]  # who goes first moves round
            for i in range(sc.SET_SIZE):
                for name, scan in turn:
                    set_loan_id, tags = sets[3 * n + [w for w, _ in ways].index(name)]
                    elapsed = scan(set_loan_id, tags[i])
                    if n > 0:
                        results[name].append(elapsed)
            if n > 0:
                print(f"  round {n}: " + ", ".join(
                    f"{name} {statistics.median(results[name][-sc.SET_SIZE:]) * 1000:.2f} ms" for name, _ in ways),
                      flush=True)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        bare.bare_engine.dispose()

    medians = {name: statistics.median(values) * 1000 for name, values in results.items()}
    print(f"\nPer scan, median of {len(results['bare'])} scans each (ms), PostgreSQL:")
    for name, _ in ways:
        print(f"  {name:<12}{medians[name]:7.2f} ms  {medians[name] / medians['bare']:4.2f}x the bare page")


def timed(client, path: str, tag: str) -> float:
    started = time.perf_counter()
    response = client.post(path, data={"code": sc.label_url(tag), "grade": "2"}, headers=sc.JSON)
    answer = response.get_json()
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or not answer.get("ok"):
        raise SystemExit(f"{path} {tag}: HTTP {response.status_code} {response.get_data(as_text=True)[:500]}")
    return elapsed


if __name__ == "__main__":
    main()
