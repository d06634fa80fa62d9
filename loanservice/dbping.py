"""Check a pooled database connection before use, when it has been idle long enough to have died.

A connection the server has closed (a restart, an idle timeout, a firewall) fails the first
statement sent on it; SQLAlchemy's ``pool_pre_ping`` guards against that by sending a ping on every
checkout, one round trip to the server per request. A connection that was in use a moment ago is
as alive as the ping would find it, so, as connection pools such as HikariCP do, the ping is skipped
for a connection checked in less than ``after_seconds`` ago: a scanner's run of requests, each
following the last, pays it once. A connection that fails the ping is thrown away and the pool
gives another (SQLAlchemy's DisconnectionError protocol).
"""
import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine


def ping_when_idle(engine: Engine, after_seconds: float) -> None:
    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < after_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as error:  # any failure: this connection is no good, the pool tries a new one
            raise exc.DisconnectionError(f"pooled connection failed its ping: {error}") from error
