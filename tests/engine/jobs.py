"""Jobs the engine tests queue (RQ imports a job's function by its dotted path)."""

from sqlalchemy.exc import OperationalError


def fail_like_a_database_outage() -> None:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("server closed the connection unexpectedly"))


def fail_like_a_bug() -> None:
    raise ValueError("a bug in the job")


def noop() -> None:
    """A job that does nothing: tests that need a job waiting in a queue queue this."""
