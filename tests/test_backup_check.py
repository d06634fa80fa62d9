"""bin/backup-check: a pg_dump backup that is proved to restore, table by table."""
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .conftest import DATABASE_URL, ON_POSTGRES

SCRIPT = Path(__file__).parent.parent / "bin" / "backup-check"
on_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="runs when DATABASE_URL points at PostgreSQL")


def backup_check(backup_file: Path, database_url: str = DATABASE_URL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(backup_file)], env={**os.environ,
                          "DATABASE_URL": database_url}, capture_output=True, text=True, timeout=300)


def script_module():
    loader = importlib.machinery.SourceFileLoader("backup_check", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("backup_check", loader))
    loader.exec_module(module)
    return module


def test_it_refuses_a_database_that_is_not_postgresql(tmp_path):
    assert backup_check(tmp_path / "hub.dump", "sqlite:///hub.sqlite3").returncode == 2


@pytest.mark.postgres
@on_postgres
def test_a_backup_of_a_hub_restores_with_every_row(factory, tmp_path):
    for _ in range(3):
        factory.instrument()
    done = backup_check(tmp_path / "hub.dump")
    assert (done.returncode, done.stdout.startswith("OK:")) == (0, True), done.stderr


@pytest.mark.postgres
@on_postgres
def test_the_backup_file_is_kept(factory, tmp_path):
    factory.instrument()
    backup_check(tmp_path / "hub.dump")
    assert (tmp_path / "hub.dump").stat().st_size > 0


@pytest.mark.postgres
@on_postgres
def test_the_scratch_database_is_dropped(factory, tmp_path):
    backup_check(tmp_path / "hub.dump")
    engine = create_engine(DATABASE_URL)
    with engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM pg_database WHERE datname LIKE '%restore_check%'"))
        assert left.scalar() == 0
    engine.dispose()


@pytest.mark.postgres
@on_postgres
def test_a_table_that_lost_rows_in_the_restore_fails_the_check(factory, tmp_path, monkeypatch):
    factory.instrument()
    module = script_module()
    real_restore = module.restore_and_count

    def restore_losing_a_row(url, backup_file):
        counts = real_restore(url, backup_file)
        counts["public.instrument"] -= 1
        return counts

    monkeypatch.setattr(module, "restore_and_count", restore_losing_a_row)
    monkeypatch.setattr(sys, "argv", ["backup-check", str(tmp_path / "hub.dump")])
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    assert module.main() == 1
