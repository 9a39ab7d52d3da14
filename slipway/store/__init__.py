"""Artifact store: ``file://`` directories and ``s3://`` buckets behind one interface."""

from slipway.store.base import ArtifactNotFound, ArtifactStore, PreconditionFailed, StoreError
from slipway.store.factory import open_store

__all__ = ["ArtifactNotFound", "ArtifactStore", "PreconditionFailed", "StoreError", "open_store"]
