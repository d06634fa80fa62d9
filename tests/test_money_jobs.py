"""The invoice run started from the web goes to a real RQ worker (``flask worker``) when REDIS_URL is set,
with a progress page (accounts done of total); a second run for the same term is refused while it goes.

Needs Redis (skipped when it cannot be reached), as tests/test_notices_rq.py.
"""
from sqlalchemy import func, select

from loanservice.money.models import LedgerEntry

from .conftest import in_app, login
from .pages import submit, submit_on
from .test_money_pages import hub  # noqa: F401  (the fixture)
from .test_notices_rq import queued  # noqa: F401  (the fixture)


def _entries(app) -> int:
    with in_app(app) as session:
        return session.scalar(select(func.count()).select_from(LedgerEntry))


def _start(client, term_id):
    preview = submit(client, "/money/invoice-run", {"term": term_id}, form="choose-term")
    return preview, submit_on(client, preview, preview.request.full_path, form="issue-invoices")


def test_the_invoice_run_goes_to_a_worker_and_its_page_shows_accounts_done(app, client, factory, hub,  # noqa: F811
                                                                          queued):  # noqa: F811
    login(client, factory.user("staff"))
    _, started = _start(client, hub["term"].id)
    assert started.status_code == 303
    progress_url = started.headers["Location"]
    assert progress_url.startswith("/money/invoice-runs/")
    assert _entries(app) == 0  # nothing is issued in the request
    waiting = client.get(progress_url).get_data(as_text=True)
    assert "Waiting for a worker" in waiting
    assert "notices-progress.js" in waiting

    queued.work()

    state = client.get(progress_url + "/progress.json").get_json()
    assert (state["finished"], state["done"], state["total"], state["count"]) == (True, 3, 3, 3)
    page = client.get(progress_url).get_data(as_text=True)
    assert "3 invoices issued (INV-000001 to INV-000003), £140.00 in all." in page
    assert f"/money/terms/{hub['term'].id}/invoices" in page
    assert _entries(app) == 3


def test_a_second_run_for_the_term_is_refused_while_one_goes(app, client, factory, hub, queued):  # noqa: F811
    login(client, factory.user("staff"))
    preview, started = _start(client, hub["term"].id)
    again = submit_on(client, preview, preview.request.full_path, form="issue-invoices")
    assert again.status_code == 409
    assert "An invoice run for Spring 2027 is already going" in again.get_data(as_text=True)
    assert started.headers["Location"].removeprefix("/money/invoice-runs/") in again.get_data(as_text=True)
    queued.work()
    assert _entries(app) == 3


def test_the_preview_shows_the_run_going_rather_than_waiting_for_it(app, client, factory, hub, queued):  # noqa: F811
    login(client, factory.user("staff"))
    _start(client, hub["term"].id)
    page = client.get(f"/money/invoice-run?term={hub['term'].id}").get_data(as_text=True)
    assert "a run is going" in page
    queued.work()


def test_an_unknown_run_is_a_404(app, client, factory, queued):  # noqa: F811
    login(client, factory.user("staff"))
    assert client.get("/money/invoice-runs/no-such-job").status_code == 404


def test_without_redis_the_run_pages_are_a_404_and_the_run_stays_in_the_request(app, client, factory, hub):  # noqa: F811
    login(client, factory.user("staff"))
    assert client.get("/money/invoice-runs/anything").status_code == 404
    _, issued = _start(client, hub["term"].id)
    assert issued.headers["Location"] == f"/money/terms/{hub['term'].id}/invoices"
    assert _entries(app) == 3
