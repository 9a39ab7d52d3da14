"""Data: sources, IDX reader, deterministic split, content-addressed snapshots and profiles.

Import-light on purpose (numpy only): the Airflow worker reads profiles and snapshot keys
through this package without pandas, scikit-learn or TensorFlow.
"""

from slipway.data.dataset import DataError, Snapshot, Split
from slipway.data.snapshot import load_manifest, load_profile, load_snapshot, save_snapshot, snapshot_key

__all__ = [
    "DataError",
    "Snapshot",
    "Split",
    "load_manifest",
    "load_profile",
    "load_snapshot",
    "save_snapshot",
    "snapshot_key",
]
