"""Error types shared by steps, and the exit codes that carry them across a process boundary.

A step runs as a subprocess or a pod, so the orchestrator only sees an exit code. Bad input
(config, data, a failed data gate) exits with ``EXIT_BAD_INPUT``: retrying cannot fix it, so the
Airflow task fails at once. Any other failure exits 1 and is retried as infrastructure trouble.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 65  # sysexits EX_DATAERR


class SlipwayError(Exception):
    """Base of Slipway's own errors."""


class BadInputError(SlipwayError):
    """Input that no retry can fix: invalid config, unreadable or invalid data, a bad request."""


class StepInputMissing(SlipwayError):
    """An upstream step's result is not in the store (it did not run, or ran for another run)."""
