"""Benchmark: ``flask privacy anonymise`` (``privacy.services.run_anonymisation``) against bare SQL.

The hub: ``--families`` families due for anonymisation (each a parent with email, phone and address, one
child, two loans that ended in 2018 with a return note, and the audit events that name them), as many
families with recent loans that are not due, and an instrument per loan. loanservice's run (one
transaction per family, as in production) against a bare script that updates the same columns with
plain SQL and no loanservice code, also one transaction per family: the family's and child's names
and contact details, the SEND flag, the return notes, and the names in the audit events of the
family, child and loans. Each side starts from a copy of one seeded SQLite file; the two alternate
which goes first. Families per second and the ratio are printed.

Memory: the run is repeated at two sizes (``--families`` and four times as many), each in a fresh
process, which reports its peak resident set size: flat means the larger run needs no more memory.

Usage:  .venv/bin/python bench/privacy_anonymise.py [--families N] [--rounds N] [--no-memory]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))


def make_app(url: str):
    from loanservice import create_app
    from loanservice.config import TestConfig

    return create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, "TESTING": False}))


def seed(url: str, families: int) -> None:
    """Migrate, then add ``families`` due families and as many recent ones (see the module's docstring)."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from loanservice.accounts.models import User
    from loanservice.audit.models import AuditEvent
    from loanservice.borrowers.models import Family, Pupil
    from loanservice.extensions import db
    from loanservice.inventory.models import Instrument, InstrumentType, TagKind
    from loanservice.inventory.services import register_tags
    from loanservice.loans.models import Loan
    from loanservice.timeutil import utcnow

    app = make_app(url)
    with app.app_context():
        upgrade()
        session = db.session
        kind = InstrumentType(name="Violin", family="strings", sizes=["1/2"], hire_band="A")
        session.add(kind)
        session.flush()
        now = utcnow()
        total = families * 2
        tags = [f"BEN-{n:07d}" for n in range(1, total * 2 + 1)]
        register_tags(session, tags, TagKind.INSTRUMENT)
        session.execute(insert(Instrument), [dict(asset_tag=tag, type_id=kind.id, size="1/2", status="available",
                                                  created_at=now, updated_at=now) for tag in tags])
        session.execute(insert(User), [dict(email=f"parent{n}@example.org", name=f"Parent Surname{n}",
                                            password_hash="x", role="parent", active=True, created_at=now,
                                            last_login_at=datetime(2018, 9, 1), session_token=f"t{n}")
                                       for n in range(1, total + 1)])
        users = list(session.scalars(select(User.id).order_by(User.id)))
        session.execute(insert(Family), [dict(name=f"Parent Surname{n}", email=f"parent{n}@example.org",
                                              phone=f"07700 {n:06d}", address=f"{n} Long Road\nExampleton",
                                              user_id=user, created_at=datetime(2017, 9, 1))
                                         for n, user in enumerate(users, 1)])
        family_ids = list(session.scalars(select(Family.id).order_by(Family.id)))
        session.execute(insert(Pupil), [dict(name=f"Child Surname{n}", family_id=fid, year_group=n % 12,
                                             remission_category="none", send=n % 7 == 0, created_at=now)
                                        for n, fid in enumerate(family_ids, 1)])
        pupils = list(session.scalars(select(Pupil.id).order_by(Pupil.id)))
        instruments = iter(session.scalars(select(Instrument.id).order_by(Instrument.id)).all())
        loans = []
        for n, pupil in enumerate(pupils, 1):
            due = n <= families
            for _ in range(2):
                started, ended = (date(2017, 9, 10), date(2018, 7, 20)) if due else (date(2025, 9, 10),
                                                                                      date(2026, 7, 20))
                loans.append(dict(instrument_id=next(instruments), pupil_id=pupil, status="returned",
                                  started_on=started, due_on=ended, closed_on=ended, condition_at_issue=2,
                                  condition_at_return=2, return_note=f"Child Surname{n} dropped the case",
                                  created_at=now))
        session.execute(insert(Loan), loans)
        loan_rows = session.execute(select(Loan.id, Loan.pupil_id, Loan.instrument_id)).all()
        events = [dict(at=now, action="pupil.added", entity_type="pupil", entity_id=p, summary=f"Added pupil #{p}",
                       changes={"name": f"Child Surname{n}"}) for n, p in enumerate(pupils, 1)]
        events += [dict(at=now, action="loan.out", entity_type="loan", entity_id=loan_id, instrument_id=instrument,
                        summary=f"Lent to Child Surname{pupil} until 20 Jul 2018", changes={})
                   for loan_id, pupil, instrument in loan_rows]
        session.execute(insert(AuditEvent), events)
        session.commit()
        db.engine.dispose()


def run_loanservice(url: str) -> int:
    """The run as ``flask privacy anonymise`` does it; how many families it anonymised."""
    from loanservice.extensions import db
    from loanservice.privacy.services import run_anonymisation

    app = make_app(url)
    with app.app_context():
        result = run_anonymisation(db.session, None)
        assert result.failed is None, result.failed
        db.engine.dispose()
        return len(result.anonymised)


def run_bare(url: str, families: int) -> int:
    """The same columns with plain SQL, one transaction per family: no loanservice code."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    done = 0
    with engine.connect() as connection:
        due = connection.execute(text(
            "SELECT f.id, f.user_id FROM family f WHERE NOT EXISTS (SELECT 1 FROM loan l JOIN pupil p "
            "ON p.id = l.pupil_id WHERE p.family_id = f.id AND l.closed_on > '2020-01-01') ORDER BY f.id")).all()
        connection.commit()
        for family_id, user_id in due:
            with connection.begin():
                pupils = connection.execute(text("SELECT id, name FROM pupil WHERE family_id = :f"),
                                            {"f": family_id}).all()
                ids = [p.id for p in pupils]
                loans = connection.execute(text(f"SELECT id FROM loan WHERE pupil_id IN ({','.join(map(str, ids))})")
                                           ).scalars().all()
                connection.execute(text("UPDATE family SET name = :n, email = '', phone = '', address = '' "
                                        "WHERE id = :f"), {"n": f"Family {family_id}", "f": family_id})
                connection.execute(text("UPDATE user_account SET name = :n, email = :e, password_hash = '!', "
                                        "active = false WHERE id = :u"),
                                   {"n": "Parent", "e": f"anonymised-{user_id}@invalid", "u": user_id})
                for pupil in pupils:
                    connection.execute(text("UPDATE pupil SET name = :n, send = false WHERE id = :p"),
                                       {"n": f"Pupil {pupil.id}", "p": pupil.id})
                connection.execute(text(f"UPDATE loan SET return_note = '' WHERE id IN ({','.join(map(str, loans))})"))
                for pupil in pupils:
                    connection.execute(text(
                        f"UPDATE audit_event SET summary = REPLACE(summary, :n, '(removed)'), changes = '{{}}' "
                        f"WHERE (entity_type = 'pupil' AND entity_id = :p) OR (entity_type = 'loan' AND entity_id "
                        f"IN ({','.join(map(str, loans))}))"), {"n": pupil.name, "p": pupil.id})
            done += 1
    engine.dispose()
    assert done == families, (done, families)
    return done


def memory_child(path: str) -> None:
    """Run the anonymisation on ``path`` in this fresh process; print its peak RSS (MiB) as JSON."""
    count = run_loanservice(f"sqlite:///{path}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"families": count, "peak_rss_mib": round(peak, 1)}))


def measure_memory(workdir: Path, families: int) -> dict:
    source = workdir / f"mem-{families}.sqlite3"
    seed(f"sqlite:///{source}", families)
    output = subprocess.run([sys.executable, __file__, "--memory-child", str(source)], check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source = workdir / "seed.sqlite3"
        started = time.perf_counter()
        seed(f"sqlite:///{source}", args.families)
        print(f"Seeded {args.families} due families, {args.families} recent ones, {args.families * 4} loans "
              f"in {time.perf_counter() - started:.1f} s")
        times = {"loanservice": [], "bare": []}
        for round_number in range(args.rounds):
            order = ["loanservice", "bare"] if round_number % 2 == 0 else ["bare", "loanservice"]
            for side in order:
                copy = workdir / f"{side}-{round_number}.sqlite3"
                shutil.copy(source, copy)
                url = f"sqlite:///{copy}"
                started = time.perf_counter()
                count = run_loanservice(url) if side == "loanservice" else run_bare(url, args.families)
                elapsed = time.perf_counter() - started
                assert count == args.families, (side, count)
                times[side].append(elapsed)
                print(f"round {round_number + 1} {side:<11} {elapsed:6.2f} s  {count / elapsed:8.1f} families/s")
        ours, bare = statistics.median(times["loanservice"]), statistics.median(times["bare"])
        ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(times["loanservice"], times["bare"], strict=True))
        print(f"median: loanservice {ours:.2f} s ({args.families / ours:.1f}/s), bare {bare:.2f} s "
              f"({args.families / bare:.1f}/s): ratio {ours / bare:.2f}x (rounds: {ratios})")
        if not args.no_memory:
            for size in (args.families // 2, args.families * 2):
                found = measure_memory(workdir, size)
                print(f"memory: {found['families']} families anonymised, peak RSS {found['peak_rss_mib']} MiB")


if __name__ == "__main__":
    main()
