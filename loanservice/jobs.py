"""Background jobs on RQ: the queue, a job's progress in ``job.meta``, and the one run of a kind going now.

A page enqueues a job on the queue named by NOTICES_QUEUE; ``flask worker`` (loanservice/cli.py)
runs it inside the same app. The job keeps its progress (done of total) in ``job.meta``, which
the staff progress page polls (static/notices-progress.js). A run of a kind (the day's notices, a
term's invoices) is marked as going under a Redis key, so that a second click finds it.
"""
import time
import uuid

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus

RUN_TIMEOUT = 60 * 60  # seconds a run may take (5,000 letters take a few minutes)
KEEP_RESULT = 7 * 24 * 60 * 60  # how long the progress page of a finished run keeps working
META_EVERY = 0.5  # seconds between progress writes to Redis
REDIS_TIMEOUT = 5  # seconds the web waits for Redis before telling staff the run cannot start
QUEUE_UNREACHABLE = ("The run cannot start: nothing was done, because the job queue (Redis) that passes it to the "
                     "background worker cannot be reached. Try again in a few minutes; if it keeps happening, tell "
                     "whoever looks after the server.")
GOING = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)
FINISHED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def redis_connection(url: str | None = None) -> Redis:
    """A connection to the job queue's Redis that gives up on a dead host rather than hang the page."""
    return Redis.from_url(url or current_app.config["REDIS_URL"], socket_connect_timeout=REDIS_TIMEOUT,
                          socket_timeout=REDIS_TIMEOUT)


def queue_name() -> str:
    return current_app.config.get("NOTICES_QUEUE") or "loanservice"


def queue(connection: Redis | None = None) -> Queue:
    return Queue(queue_name(), connection=connection or redis_connection())


def fetch(connection: Redis, job_id: str, func) -> Job | None:
    """The job ``job_id`` if it runs ``func``; None for unknown ids and for jobs of another kind."""
    try:
        job = Job.fetch(job_id, connection=connection)
    except RedisError:  # the queue cannot be reached: not the same as no such job
        raise
    except Exception:  # noqa: BLE001  (NoSuchJobError, or an id that is not one)
        return None
    if job.func_name != f"{func.__module__}.{func.__qualname__}":
        return None
    return job


def going(connection: Redis, key: str, func) -> Job | None:
    """The job of ``func`` marked as going under ``key``, if it is queued or running now."""
    job_id = connection.get(key)
    if job_id is None:
        return None
    job = fetch(connection, job_id.decode(), func)
    if job is None or job.get_status(refresh=True) not in GOING:
        return None
    return job


def start(connection: Redis, key: str, func, *args, meta: dict) -> tuple[Job, bool]:
    """Enqueue ``func(*args)`` as the one run going under ``key``: (the job, True), or (the run already
    going, False). The key is taken with SET NX, so two clicks at once start one run."""
    job_id = uuid.uuid4().hex
    while not connection.set(key, job_id, nx=True, ex=RUN_TIMEOUT):
        running = going(connection, key, func)
        if running is not None:
            return running, False
        connection.delete(key)  # the run it named has ended (or was lost): take the key afresh
    job = queue(connection).enqueue(func, *args, job_id=job_id, job_timeout=RUN_TIMEOUT, result_ttl=KEEP_RESULT,
                                    failure_ttl=KEEP_RESULT, meta={"state": "queued", "done": 0, "total": None,
                                                                   **meta})
    return job, True


def release(job: Job | None, key: str) -> None:
    """Clear the mark that ``job`` is the run going under ``key`` (when it still is)."""
    if job is not None and job.connection.get(key) == job.id.encode():
        job.connection.delete(key)


def state_of(job: Job, stopped: str) -> dict:
    """A job's status and its meta as plain JSON for the progress page; ``stopped``: what to say if it failed."""
    status = job.get_status(refresh=True)
    state = {"done": 0, "total": None, "error": None, "state": "queued", **job.get_meta(refresh=True),
             "id": job.id, "status": str(getattr(status, "value", status))}
    if status == JobStatus.FAILED and not state["error"]:
        state["error"] = stopped
    state["finished"] = status in FINISHED
    return state


class Progress:
    """Keeps job.meta up to date without writing to Redis on every step."""

    def __init__(self, job: Job | None):
        self.job, self.done, self.total, self._written = job, 0, None, 0.0

    def set_total(self, total: int, state: str = "sending") -> None:
        self.total = total
        self.write(state=state, force=True)

    def add(self, n: int) -> None:
        self.done += n
        self.write()

    def write(self, force: bool = False, **extra) -> None:
        if self.job is None or (not force and time.monotonic() - self._written < META_EVERY):
            return
        self.job.meta.update(done=self.done, total=self.total, **extra)
        self.job.save_meta()
        self._written = time.monotonic()
