"""Canary rollouts: a candidate version gets traffic step by step and is promoted or rolled back.

Decisions are pure functions (``policy``, ``judges``) over metrics a provider measured; the
backends are small interfaces with a factory each, one file per backend (``providers``,
``routers``, ``targets``); ``controller`` runs one analysis at a time and keeps the rollout's
state in the artifact store, so whoever calls it next (a loop, an Airflow trigger's callback)
resumes where it stopped.
"""
