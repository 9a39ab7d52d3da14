"""The heavy steps, one module each: ``python -m slipway <step>`` runs them (see ``cli.py``)."""
