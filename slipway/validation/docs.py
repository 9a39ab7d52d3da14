"""Publish a Data Docs site (a folder of static HTML) to the artifact store.

The site is built locally by GX into a temporary folder and uploaded under the run's
``validate/data_docs/`` prefix, so the Airflow UI link and a person with store access see the
same pages on a laptop (``file://``) or a cluster (``s3://``).
"""

from __future__ import annotations

from pathlib import Path

from slipway.store.base import ArtifactStore

INDEX = "index.html"


def publish_docs(store: ArtifactStore, site_dir: Path, prefix: str) -> str:
    """Upload every file of ``site_dir`` under ``prefix``; returns the key of ``index.html``."""
    if not (site_dir / INDEX).is_file():
        raise FileNotFoundError(f"no Data Docs were built in {site_dir}")
    store.upload_dir(site_dir, prefix)
    return f"{prefix.rstrip('/')}/{INDEX}"
