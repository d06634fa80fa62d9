"""Notice runs on RQ: a run started from the web goes to a real ``rq worker`` when REDIS_URL is set.

The web process enqueues ``run_notices`` on the queue named by NOTICES_QUEUE; ``flask worker``
(loanservice/cli.py) runs it inside the same app (so it reads the same environment:
DATABASE_URL, MAIL_*, HUB_*), runs ``send_notices`` and keeps the job's progress in ``job.meta``,
which the staff progress page polls. Start a worker with::

    flask --app wsgi worker
"""
import time
from datetime import date

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.job import Job, JobStatus

from ..accounts.models import User
from ..errors import LoanServiceError
from ..extensions import db
from . import notices as notice_service
from .services import Hub

RUN_TIMEOUT = 60 * 60  # seconds a run may take (5,000 letters take a few minutes)
KEEP_RESULT = 7 * 24 * 60 * 60  # how long the progress page of a finished run keeps working
META_EVERY = 0.5  # seconds between progress writes to Redis
CURRENT_KEY = "loanservice:notices:{queue}:current-job"  # the run going now, so a second click joins it
REDIS_TIMEOUT = 5  # seconds the web waits for Redis before telling staff the run cannot start
QUEUE_UNREACHABLE = ("The run cannot start: nothing was sent, because the job queue (Redis) that passes it to the "
                     "background worker cannot be reached. Try again in a few minutes; if it keeps happening, tell "
                     "whoever looks after the server.")


def redis_connection(url: str | None = None) -> Redis:
    """A connection to the job queue's Redis that gives up on a dead host rather than hang the page."""
    return Redis.from_url(url or current_app.config["REDIS_URL"], socket_connect_timeout=REDIS_TIMEOUT,
                          socket_timeout=REDIS_TIMEOUT)


def queue_name() -> str:
    return current_app.config.get("NOTICES_QUEUE") or "loanservice"


def queue(connection: Redis | None = None) -> Queue:
    return Queue(queue_name(), connection=connection or redis_connection())


def current_run(connection: Redis) -> Job | None:
    """The notices job queued or running now, if any."""
    job_id = connection.get(CURRENT_KEY.format(queue=queue_name()))
    if job_id is None:
        return None
    job = fetch(connection, job_id.decode())
    if job is None or job.get_status(refresh=True) not in (JobStatus.QUEUED, JobStatus.STARTED,
                                                            JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return None
    return job


def enqueue_run(as_of: date, actor_id: int | None) -> Job:
    """Queue a run (or hand back the one already queued or running)."""
    connection = redis_connection()
    running = current_run(connection)
    if running is not None:
        return running
    job = queue(connection).enqueue(
        run_notices, as_of.isoformat(), actor_id, job_timeout=RUN_TIMEOUT, result_ttl=KEEP_RESULT,
        failure_ttl=KEEP_RESULT, meta={"kind": "notices", "as_of": as_of.isoformat(), "state": "queued",
                                        "done": 0, "total": None})
    connection.set(CURRENT_KEY.format(queue=queue_name()), job.id, ex=RUN_TIMEOUT)
    return job


def fetch(connection: Redis, job_id: str) -> Job | None:
    """A notices job by id; None for unknown ids and for jobs that are not notice runs."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except RedisError:  # the queue cannot be reached: not the same as no such job
        raise
    except Exception:  # noqa: BLE001  (NoSuchJobError, or an id that is not one)
        return None
    if job.func_name != f"{__name__}.run_notices":
        return None
    return job


def job_state(job: Job) -> dict:
    """What the progress page shows: plain JSON."""
    status = job.get_status(refresh=True)
    meta = job.get_meta(refresh=True)
    state = {"id": job.id, "status": str(getattr(status, "value", status)), "as_of": meta.get("as_of"),
             "state": meta.get("state", "queued"), "done": meta.get("done", 0), "total": meta.get("total"),
             "emailed": meta.get("emailed"), "printed": meta.get("printed"), "claimed": meta.get("claimed"),
             "failed": meta.get("failed", []), "held_back": meta.get("held_back", []),
             "uncertain": meta.get("uncertain", 0), "error": meta.get("error")}
    if status == JobStatus.FAILED and not state["error"]:
        state["error"] = ("The run stopped before it finished. The letters not sent yet are kept: send them from the "
                          "Notices page. If it stops again, tell whoever looks after the server (the worker's log "
                          "says why).")
    state["finished"] = status in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
    return state


class _Progress:
    """Keeps job.meta up to date without writing to Redis on every letter."""

    def __init__(self, job: Job | None):
        self.job, self.done, self.total, self._written = job, 0, None, 0.0

    def set_total(self, total: int) -> None:
        self.total = total
        self.write(state="sending", force=True)

    def add(self, n: int) -> None:
        self.done += n
        self.write()

    def write(self, force: bool = False, **extra) -> None:
        if self.job is None or (not force and time.monotonic() - self._written < META_EVERY):
            return
        self.job.meta.update(done=self.done, total=self.total, **extra)
        self.job.save_meta()
        self._written = time.monotonic()


def run_notices(as_of: str, actor_id: int | None) -> dict:
    """The RQ task, run by ``flask worker`` in the app's context: send the notices due on ``as_of``."""
    job = get_current_job()
    progress = _Progress(job)
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
        if job is not None and job.connection.get(CURRENT_KEY.format(queue=job.origin)) == job.id.encode():
            job.connection.delete(CURRENT_KEY.format(queue=job.origin))
    summary = {"claimed": result.claimed, "emailed": result.emailed, "printed": result.printed,
               "failed": result.failed[:50], "held_back": result.held_back[:50], "uncertain": result.uncertain}
    progress.write(state="finished", force=True, **summary)
    return summary
