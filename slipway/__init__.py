"""Slipway core: the compute side of the retraining system. Never imports airflow."""

__version__ = "0.1.0"
