"""Hyperparameter sweeps: search space, study records in the store, Optuna wiring, report."""
