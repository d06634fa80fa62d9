"""Benchmark: the termly invoice run for 10,000 accounts and 15,000 loan charges (no PDFs).

loanservice's ``money.services.run_invoices`` (and its commit) against a bare script that makes the
same rows in one transaction with SQLAlchemy Core and no loanservice code: the same owed charges
read, one payer account per family (numbered A00001...), one invoice per account (INV-000001...)
with a line per charge, the two number sequences and one audit event. Same database, same run:
each round starts from a fresh copy of one seeded database, and the two alternate which goes first.

The charges are raised (``loans.pricing.raise_term_charges``) when the database is seeded, so both
sides time the invoicing itself.

Usage:  .venv/bin/python bench/invoice_run.py [--accounts N] [--charges N] [--rounds N]
                                              [--postgres URL] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

FEE = Decimal("36.00")


def make_app(url: str):
    from loanservice import create_app
    from loanservice.config import TestConfig

    return create_app(type("BenchConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url, "TESTING": False}))


def seed(url: str, accounts: int, charges: int) -> None:
    """Migrate, then add ``charges`` open loans to ``accounts`` families (the first ones with two) and raise
    the term's charges."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from loanservice.borrowers.models import Family
    from loanservice.extensions import db
    from loanservice.inventory.models import Instrument, InstrumentType, TagKind
    from loanservice.inventory.services import register_tags
    from loanservice.loans.models import AcademicTerm, Loan
    from loanservice.loans.pricing import raise_term_charges
    from loanservice.timeutil import today, utcnow

    app = make_app(url)
    with app.app_context():
        upgrade()
        session = db.session
        kind = InstrumentType(name="Violin", family="strings", sizes=["1/2"], hire_band="A")
        term = AcademicTerm(name="Bench term", starts_on=today() - timedelta(days=10),
                            ends_on=today() + timedelta(days=60))
        session.add_all([kind, term])
        session.flush()
        now = utcnow()
        tags = [f"BEN-{n:06d}" for n in range(1, charges + 1)]
        register_tags(session, tags, TagKind.INSTRUMENT)
        session.execute(insert(Instrument), [dict(asset_tag=tag, type_id=kind.id, size="1/2", status="on_loan",
                                                  created_at=now, updated_at=now) for tag in tags])
        session.execute(insert(Family), [dict(name=f"Family {n}", email=f"family{n}@example.org", created_at=now)
                                         for n in range(1, accounts + 1)])
        families = list(session.scalars(select(Family.id).order_by(Family.id)))
        instruments = list(session.scalars(select(Instrument.id).order_by(Instrument.id)))
        borrowers = families + families[:charges - accounts]
        session.execute(insert(Loan), [
            dict(instrument_id=instrument, family_id=family, status="open", started_on=term.starts_on,
                 due_on=term.ends_on, condition_at_issue=2, fee_per_term=FEE, remission_category="none",
                 charge_per_term=FEE, deposit=Decimal("0.00"), created_at=now)
            for instrument, family in zip(instruments, borrowers, strict=True)])
        raise_term_charges(session, None, term)
        session.commit()
        db.engine.dispose()


def run_ours(url: str) -> tuple[float, int]:
    from sqlalchemy import select

    from loanservice.extensions import db
    from loanservice.loans.models import AcademicTerm
    from loanservice.money.services import run_invoices

    app = make_app(url)
    with app.app_context():
        db.session.execute(select(1))  # connect before the clock starts, as the bare script does
        started = time.perf_counter()
        term = db.session.scalar(select(AcademicTerm).where(AcademicTerm.name == "Bench term"))
        run = run_invoices(db.session, None, term, app.config)
        db.session.commit()
        elapsed = time.perf_counter() - started
        count = run.count
        db.session.remove()
        db.engine.dispose()
    return elapsed, count


def run_bare(url: str) -> tuple[float, int]:
    """The same rows with SQLAlchemy Core in one transaction: nothing of loanservice's."""
    from sqlalchemy import create_engine, text

    from loanservice.timeutil import today, utcnow

    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        connection.rollback()
        started = time.perf_counter()
        with connection.begin():
            on = today()
            term_id = connection.execute(text("SELECT id FROM academic_term WHERE name = 'Bench term'")).scalar_one()
            rows = connection.execute(text(
                "SELECT c.id, c.loan_id, c.amount, l.family_id, l.fee_per_term, l.remission_category, "
                "i.asset_tag, t.name FROM loan_charge c JOIN loan l ON l.id = c.loan_id "
                "JOIN instrument i ON i.id = l.instrument_id JOIN instrument_type t ON t.id = i.type_id "
                "WHERE c.term_id = :term AND c.status = 'owed' AND c.amount > 0 "
                "AND NOT EXISTS (SELECT 1 FROM invoice_line x WHERE x.charge_id = c.id) ORDER BY c.id"),
                {"term": term_id}).all()
            by_family = defaultdict(list)
            for row in rows:
                by_family[row.family_id].append(row)
            families = sorted(by_family)
            now = utcnow()

            def take(name: str, count: int) -> int:
                connection.execute(text("INSERT INTO number_sequence (name, next_value) VALUES (:n, 1) "
                                        "ON CONFLICT DO NOTHING"), {"n": name})
                last = connection.execute(text("UPDATE number_sequence SET next_value = next_value + :c "
                                               "WHERE name = :n RETURNING next_value"),
                                          {"n": name, "c": count}).scalar_one()
                return last - count

            first = take("account", len(families))
            connection.execute(text(
                "INSERT INTO payer_account (reference, family_id, payer_name, payer_email, payer_address, created_at) "
                "VALUES (:reference, :family, '', '', '', :now)"),
                [{"reference": f"A{first + n:05d}", "family": family, "now": now} for n, family in enumerate(families)])
            accounts = dict(connection.execute(text("SELECT family_id, id FROM payer_account "
                                                    "WHERE family_id IS NOT NULL")).all())
            first = take("invoice", len(families))
            due = on + timedelta(days=30)
            connection.execute(text(
                "INSERT INTO ledger_entry (account_id, kind, number, posted_on, due_on, amount, term_id, reference, "
                "note, created_at) VALUES (:account, 'invoice', :number, :on, :due, :amount, :term, '', '', :now)"),
                [{"account": accounts[family], "number": f"INV-{first + n:06d}", "on": on, "due": due,
                  "amount": sum(row.amount for row in by_family[family]), "term": term_id, "now": now}
                 for n, family in enumerate(families)])
            invoices = dict(connection.execute(text("SELECT account_id, id FROM ledger_entry "
                                                    "WHERE kind = 'invoice' AND term_id = :term"),
                                               {"term": term_id}).all())
            connection.execute(text(
                "INSERT INTO invoice_line (invoice_id, kind, charge_id, loan_id, description, full_fee, "
                "remission_category, amount) VALUES (:invoice, 'hire', :charge, :loan, :description, :fee, "
                ":category, :amount)"),
                [{"invoice": invoices[accounts[row.family_id]], "charge": row.id, "loan": row.loan_id,
                  "description": f"{row.name} {row.asset_tag}, Bench term", "fee": row.fee_per_term,
                  "category": row.remission_category, "amount": row.amount}
                 for family in families for row in by_family[family]])
            connection.execute(text(
                "INSERT INTO audit_event (at, action, entity_type, entity_id, summary, changes) "
                "VALUES (:now, 'invoices.run', 'academic_term', :term, 'bench', '{}')"), {"now": now, "term": term_id})
        elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, len(families)


def counts(url: str) -> tuple[int, int, Decimal]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        result = (connection.execute(text("SELECT count(*) FROM ledger_entry WHERE kind = 'invoice'")).scalar_one(),
                  connection.execute(text("SELECT count(*) FROM invoice_line")).scalar_one(),
                  Decimal(str(connection.execute(text("SELECT sum(amount) FROM ledger_entry")).scalar_one())))
    engine.dispose()
    return result


class Sqlite:
    name = "SQLite"

    def __init__(self, accounts, charges):
        self.folder = Path(tempfile.mkdtemp(prefix="bench-invoices-"))
        self.seeded = self.folder / "seeded.sqlite3"
        seed(f"sqlite:///{self.seeded}", accounts, charges)

    def fresh(self, label: str) -> str:
        path = self.folder / f"{label}.sqlite3"
        shutil.copy(self.seeded, path)
        return f"sqlite:///{path}"

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class Postgres:
    name = "PostgreSQL"

    def __init__(self, url, accounts, charges):
        from sqlalchemy import create_engine

        self.server = url.rsplit("/", 1)[0]
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT")
        self._create("ls_bench_invoices")
        seed(f"{self.server}/ls_bench_invoices", accounts, charges)
        engine = create_engine(f"{self.server}/ls_bench_invoices", isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would soon after
        engine.dispose()

    def _create(self, name, template=None):
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            connection.exec_driver_sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))

    def fresh(self, label: str) -> str:
        self._create(f"ls_bench_invoices_{label}", "ls_bench_invoices")
        return f"{self.server}/ls_bench_invoices_{label}"

    def close(self):
        with self.admin.connect() as connection:
            for name in ("ls_bench_invoices_ours", "ls_bench_invoices_bare", "ls_bench_invoices"):
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        self.admin.dispose()


def bench(database, rounds: int) -> None:
    ours, bare = [], []
    for n in range(rounds):
        order = [("ours", run_ours, ours), ("bare", run_bare, bare)]
        for label, run, times in order if n % 2 == 0 else reversed(order):
            url = database.fresh(label)
            elapsed, invoices = run(url)
            times.append(elapsed)
            if n == 0:
                made = counts(url)
                print(f"  {label}: {made[0]:,} invoices, {made[1]:,} lines, £{made[2]:,.2f}", flush=True)
    ratio = statistics.median(ours) / statistics.median(bare)
    print(f"{database.name}: loanservice {_seconds(ours)}, bare {_seconds(bare)}; "
          f"ratio of medians {ratio:.2f}x; per-round ratios "
          f"{', '.join(f'{a / b:.2f}' for a, b in zip(ours, bare, strict=True))}", flush=True)


def _seconds(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s (range {min(times):.2f}-{max(times):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--charges", type=int, default=15_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (databases ls_bench_invoices*)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    if args.charges < args.accounts:
        parser.error("--charges must be at least --accounts (each account has a charge)")
    databases = [] if args.no_sqlite else [lambda: Sqlite(args.accounts, args.charges)]
    if args.postgres:
        databases.append(lambda: Postgres(args.postgres, args.accounts, args.charges))
    for make in databases:
        started = time.perf_counter()
        database = make()
        print(f"{database.name}: seeded {args.accounts:,} families and {args.charges:,} charges in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        try:
            bench(database, args.rounds)
        finally:
            database.close()


if __name__ == "__main__":
    main()
