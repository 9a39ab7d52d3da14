"""The data gate's exception: raised by the validate step after its report is written."""

from __future__ import annotations

from slipway.errors import BadInputError


class DataValidationFailed(BadInputError):
    """The snapshot failed validation; the message names each failed expectation and what was
    observed. A ``BadInputError``: exit code 65, the run stops and no retry is attempted."""

    def __init__(self, message: str, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = failed or []
