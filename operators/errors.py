"""The one fail-fast rule, for every Slipway operator: bad input fails at once, the rest retries.

Slipway signals "no retry can fix this" with ``BadInputError`` (invalid config, unreadable or
invalid data, bad overrides, a forced deployment without a reason, a candidate the gate did not
bless, a champion that moved since the evaluation) in process, and with exit code 65
(``EXIT_BAD_INPUT``) across a process or pod boundary. This module turns both into Airflow's
vocabulary: ``AirflowFailException`` (the task fails, retries are skipped) or ``AirflowException``
(the task fails and Airflow retries it). The step operator and the release operators use it
alike, so the rule cannot drift between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from slipway.errors import EXIT_BAD_INPUT, BadInputError


def is_bad_input(exc: BaseException) -> bool:
    """True when retrying cannot help (Slipway's ``BadInputError`` and its subclasses)."""
    return isinstance(exc, BadInputError)


def to_airflow(exc: BaseException, what: str) -> AirflowException:
    """The Airflow exception for ``exc`` raised while doing ``what`` (e.g. ``"promote"``)."""
    if isinstance(exc, AirflowException):
        return exc
    if is_bad_input(exc):
        return AirflowFailException(f"{what} rejected its input (no retry): {exc}")
    return AirflowException(f"{what} failed ({type(exc).__name__}, will be retried): {exc}")


def for_exit_code(exit_code: int, what: str, reason: str) -> AirflowException:
    """The Airflow exception for a step process that ended with ``exit_code`` (never 0)."""
    if exit_code == EXIT_BAD_INPUT:
        return AirflowFailException(f"{what} rejected its input (no retry):\n{reason}")
    return AirflowException(f"{what} failed with exit code {exit_code} (will be retried):\n{reason}")


@contextmanager
def airflow_errors(what: str) -> Iterator[None]:
    """Re-raise anything the block raises as ``to_airflow`` says (keeping the original as cause)."""
    try:
        yield
    except AirflowException:
        raise
    except Exception as exc:
        mapped = to_airflow(exc, what)
        if isinstance(mapped, AirflowFailException):
            raise mapped from None  # the message says it all; no traceback soup for bad input
        raise mapped from exc
