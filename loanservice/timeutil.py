"""One clock for the whole app, so that tests and records agree."""
from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def today() -> date:
    return utcnow().date()


# The dates input may give (year 1 or 9999 would overflow date arithmetic; no hub's records go further).
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2199, 12, 31)
