"""Invariants the database keeps under concurrent requests (real threads, real connections)."""
import threading

import pytest
from sqlalchemy import func, select

from loanservice.inventory.models import Instrument

from .conftest import ON_POSTGRES, in_app, login

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="concurrency is proved on PostgreSQL, the production database"
)
WORKERS = 20


def run_together(work, n=WORKERS):
    """Start ``n`` threads at the same moment and collect what each returned."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def target(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def signed_in_clients(app, factory, n=WORKERS):
    clients = []
    for i in range(n):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{i + 1}"  # one store PC each
        login(client, factory.user("staff"))
        clients.append(client)
    return clients


def test_twenty_people_adding_the_same_tag_at_once_get_one_instrument(app, factory):
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    clients = signed_in_clients(app, factory)
    data = {"type_id": str(violin.id), "size": "1/2", "location": "Store", "condition_grade": "2",
            "asset_tag": "RACE-1"}
    statuses = run_together(lambda i: clients[i].post("/instruments/new", data=data).status_code)
    assert sorted(statuses) == [303] + [409] * (WORKERS - 1)
    with in_app(app) as session:
        assert session.scalar(select(func.count()).select_from(Instrument)) == 1


def test_twenty_instruments_added_at_once_get_twenty_different_tags(app, factory):
    violin = factory.instrument_type("Violin", sizes=("1/2",))
    clients = signed_in_clients(app, factory)
    data = {"type_id": str(violin.id), "size": "1/2", "location": "Store", "condition_grade": "2"}
    statuses = run_together(lambda i: clients[i].post("/instruments/new", data=data).status_code)
    assert statuses == [303] * WORKERS
    with in_app(app) as session:
        tags = session.scalars(select(Instrument.asset_tag)).all()
    assert sorted(tags) == [f"MIX-{n:06d}" for n in range(1, WORKERS + 1)]


def test_concurrent_repairs_of_one_instrument_open_one_repair(app, factory):
    instrument = factory.instrument()
    clients = signed_in_clients(app, factory)
    data = {"repairer": "Hubbard Strings", "sent_on": "2025-01-06"}
    statuses = run_together(lambda i: clients[i].post(f"/instruments/{instrument.asset_tag}/repair",
                                                      data=data).status_code)
    assert sorted(statuses) == [303] + [409] * (WORKERS - 1)
