"""Great Expectations, imported quietly: every module here gets ``gx`` / ``gxe`` from this one.

GX logs hundreds of INFO lines while it imports (docs-decorator registration); a step's log
should hold the step's own story, so GX's loggers are set to WARNING before the import.
"""

import logging

logging.getLogger("great_expectations").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402 - after the logger is quiet
import great_expectations.expectations as gxe  # noqa: E402

__all__ = ["gx", "gxe"]
