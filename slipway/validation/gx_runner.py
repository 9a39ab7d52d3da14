"""Run the checks with Great Expectations on pandas frames; optionally build Data Docs.

An ephemeral (in-memory) context per validation: nothing to clean up, nothing shared between
runs or processes. Each frame is its own dataframe asset and validation definition; their
results go to the context's results store and one ``build_data_docs`` renders them all (a
Checkpoint passes the same batch parameters - one dataframe - to every definition, and the
frames differ). Progress bars are off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from slipway.validation.gx import gx
from slipway.validation.suite import Check

SITE = "slipway"


def _context(docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_checks(
    frames: dict[str, pd.DataFrame],
    checks: list[Check],
    *,
    suite_prefix: str,
    run_name: str,
    docs_dir: Path | None = None,
) -> dict[str, Any]:
    """GX result (``ExpectationValidationResult``) per check id; Data Docs into ``docs_dir``."""
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("slipway")
    run_id = gx.RunIdentifier(run_name=run_name)
    results: dict[str, Any] = {}
    for batch, frame in frames.items():
        batch_checks = [c for c in checks if c.batch == batch]
        if not batch_checks:
            continue
        definition = source.add_dataframe_asset(batch).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=f"{suite_prefix}.{batch}", expectations=[c.expectation for c in batch_checks]
            )
        )
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_prefix}.{batch}", data=definition, suite=suite)
        )
        outcome = validation.run(
            batch_parameters={"dataframe": frame}, result_format="SUMMARY", run_id=run_id
        )
        for result in outcome.results:
            results[result.expectation_config.meta["slipway_check"]] = result
    if docs_dir is not None:
        context.build_data_docs(site_names=[SITE])
    return results
