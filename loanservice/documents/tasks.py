"""Notice runs on RQ: a run started from the web goes to a real ``rq worker`` when REDIS_URL is set.

The web process enqueues ``run_notices`` on the queue named by NOTICES_QUEUE; ``flask worker``
(loanservice/cli.py) runs it inside the same app (so it reads the same environment:
DATABASE_URL, MAIL_*, HUB_*), runs ``send_notices`` and keeps the job's progress in ``job.meta``,
which the staff progress page polls. Start a worker with::

    flask --app wsgi worker
"""
from datetime import date

from flask import current_app
from rq import get_current_job
from rq.job import Job

from .. import jobs
from ..accounts.models import User
from ..errors import LoanServiceError
from ..extensions import db
from ..jobs import QUEUE_UNREACHABLE, redis_connection  # noqa: F401  (the notices pages use them from here)
from . import notices as notice_service
from .services import Hub

CURRENT_KEY = "loanservice:notices:{queue}:current-job"  # the run going now, so a second click joins it
STOPPED = ("The run stopped before it finished. The letters not sent yet are kept: send them from the "
           "Notices page. If it stops again, tell whoever looks after the server (the worker's log says why).")


def _key(queue: str | None = None) -> str:
    return CURRENT_KEY.format(queue=queue or jobs.queue_name())


def current_run(connection) -> Job | None:
    """The notices job queued or running now, if any."""
    return jobs.going(connection, _key(), run_notices)


def enqueue_run(as_of: date, actor_id: int | None) -> Job:
    """Queue a run (or hand back the one already queued or running)."""
    job, _ = jobs.start(redis_connection(), _key(), run_notices, as_of.isoformat(), actor_id,
                        meta={"kind": "notices", "as_of": as_of.isoformat()})
    return job


def fetch(connection, job_id: str) -> Job | None:
    """A notices job by id; None for unknown ids and for jobs that are not notice runs."""
    return jobs.fetch(connection, job_id, run_notices)


def job_state(job: Job) -> dict:
    """What the progress page shows: plain JSON."""
    state = {"as_of": None, "emailed": None, "printed": None, "claimed": None, "failed": [], "held_back": [],
             "uncertain": 0, **jobs.state_of(job, STOPPED)}
    return state


def run_notices(as_of: str, actor_id: int | None) -> dict:
    """The RQ task, run by ``flask worker`` in the app's context: send the notices due on ``as_of``."""
    job = get_current_job()
    progress = jobs.Progress(job)
    progress.write(state="claiming", force=True)
    db.engine.dispose(close=False)  # a forked work horse: never share the parent's pooled connections
    try:
        actor = db.session.get(User, actor_id) if actor_id is not None else None
        result = notice_service.send_notices(
            db.session, actor, date.fromisoformat(as_of), Hub.from_config(current_app.config), current_app.config,
            progress=progress.add, total=progress.set_total)
    except LoanServiceError as error:
        db.session.rollback()
        progress.write(state="refused", error=error.message, force=True)
        return {"error": error.message}
    finally:
        db.session.remove()
        db.engine.dispose()
        if job is not None:
            jobs.release(job, _key(job.origin))
    summary = {"claimed": result.claimed, "emailed": result.emailed, "printed": result.printed,
               "failed": result.failed[:50], "held_back": result.held_back[:50], "uncertain": result.uncertain}
    progress.write(state="finished", force=True, **summary)
    return summary
