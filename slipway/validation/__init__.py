"""Data validation: Great Expectations suites over compact features, drift against a reference.

Layout: ``features`` (numpy -> small frames), ``duplicates``, ``drift`` (effect sizes),
``suite`` (checks from config and reference), ``gx_runner`` (GX + Data Docs), ``report``,
``validator`` (the entry point), ``reference`` (the champion's training-data profile), ``docs``
(Data Docs to the store).

Only the light names are exported here: the promote task imports ``promote_reference`` on an
Airflow worker that has neither pandas nor Great Expectations.
"""

from slipway.validation.errors import DataValidationFailed
from slipway.validation.reference import load_reference, promote_reference, reference_key

__all__ = ["DataValidationFailed", "load_reference", "promote_reference", "reference_key"]
