"""The invoice run started from the web, on RQ when REDIS_URL is set: ``flask worker`` runs it and keeps
its progress (accounts done of total) in ``job.meta`` for the progress page.

One run per term goes at a time: the term's key in Redis names the run going, so a second start
is refused with a clear message (the invoice numbers' lock would make it wait and then find
nothing new, but staff should not wait to learn that).
"""
from decimal import Decimal

from flask import current_app
from rq import get_current_job
from rq.job import Job

from .. import jobs
from ..accounts.models import User
from ..errors import LoanServiceError
from ..extensions import db
from ..loans.models import AcademicTerm
from . import services

RUN_KEY = "loanservice:invoices:{queue}:term-{term_id}"
STOPPED = ("The invoice run stopped before it finished, and nothing of it was kept (it is one transaction). "
           "Start it again; if it stops again, tell whoever looks after the server (the worker's log says why).")


class RunGoing(services.MoneyError):
    """An invoice run for the term is already queued or running."""

    status_code = 409

    def __init__(self, term: AcademicTerm, job: Job):
        super().__init__(f"An invoice run for {term.name} is already going; wait for it to finish before starting "
                         "another. Its progress is shown on its own page.")
        self.job = job


def _key(term_id: int, queue: str | None = None) -> str:
    return RUN_KEY.format(queue=queue or jobs.queue_name(), term_id=term_id)


def run_going(connection, term: AcademicTerm) -> Job | None:
    """The invoice run for ``term`` queued or running now, if any."""
    return jobs.going(connection, _key(term.id), run_invoice_job)


def start_run(term: AcademicTerm, actor_id: int | None, expected: tuple[int, Decimal] | None) -> Job:
    """Queue the invoice run for ``term``; refused (RunGoing) while one for the same term is going."""
    count, total = expected if expected is not None else (None, None)
    job, started = jobs.start(jobs.redis_connection(), _key(term.id), run_invoice_job, term.id, actor_id,
                              count, None if total is None else str(total),
                              meta={"kind": "invoices", "term_id": term.id, "term": term.name})
    if not started:
        raise RunGoing(term, job)
    return job


def fetch(connection, job_id: str) -> Job | None:
    """An invoice run's job by id; None for unknown ids and jobs of another kind."""
    return jobs.fetch(connection, job_id, run_invoice_job)


def job_state(job: Job) -> dict:
    """What the progress page shows, as plain JSON."""
    return {"term": None, "term_id": None, "count": None, "amount": None, "first": None, "last": None,
            **jobs.state_of(job, STOPPED)}


def run_invoice_job(term_id: int, actor_id: int | None, count: int | None, total: str | None) -> dict:
    """The RQ task, run by ``flask worker`` in the app's context: issue the term's invoices as previewed."""
    job = get_current_job()
    progress = jobs.Progress(job)
    progress.write(state="charging", force=True)
    db.engine.dispose(close=False)  # a forked work horse: never share the parent's pooled connections
    try:
        term = db.session.get(AcademicTerm, term_id)
        if term is None:
            raise services.MoneyError("That term is no longer on the calendar.")
        actor = db.session.get(User, actor_id) if actor_id is not None else None
        expected = (count, Decimal(total)) if count is not None and total is not None else None
        run = services.issue_invoices(db.session, actor, term, current_app.config, expected=expected,
                                      progress=progress.add, total=lambda n: progress.set_total(n, "invoicing"))
        summary = {"count": run.count, "amount": f"{run.total:.2f}", "first": run.numbers[0],
                   "last": run.numbers[-1]}
        db.session.commit()
    except LoanServiceError as error:
        db.session.rollback()
        progress.write(state="refused", error=error.message, force=True)
        return {"error": error.message}
    finally:
        db.session.remove()
        db.engine.dispose()
        if job is not None:
            jobs.release(job, _key(term_id, job.origin))
    progress.write(state="finished", force=True, **summary)
    return summary
