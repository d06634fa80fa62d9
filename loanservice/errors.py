"""Domain errors: a rule was broken, with a message meant for people (no Flask here; the pages
that show them are in ``error_pages``)."""


class LoanServiceError(Exception):
    """A rule of the domain was broken; the message is meant for people."""

    status_code = 409

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(LoanServiceError):
    status_code = 404


class InvalidInput(LoanServiceError):
    status_code = 422


class NotAllowed(LoanServiceError):
    status_code = 403
