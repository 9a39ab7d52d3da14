"""Airflow adapter layer for Slipway: operators, launchers, links. Thin by design.

Everything that computes lives in ``slipway/``; these classes only launch steps, wait for them,
read their small JSON results and call Slipway's pure decision functions.
"""
