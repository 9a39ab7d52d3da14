"""The ingest step: read the run's source partition, split it, store it as a snapshot.

Output: the content-addressed snapshot (``datasets/<pipeline>/<hash16>/``: data, profile,
manifest; see ``slipway.data.snapshot``) and ``ingest/result.json`` (``IngestResult``).

Idempotent: the same partition yields the same snapshot key and nothing is rewritten. Unreadable
or malformed data raises ``DataError`` (a ``BadInputError``: exit 65, no retry); whether the data
is *valid* (ranges, labels, balance, drift) is the validate step's job, which reports every
problem at once instead of the first one.
"""

from __future__ import annotations

import logging

from slipway.data.convert import conform_shape
from slipway.data.dataset import DataError
from slipway.data.snapshot import MANIFEST_FILE, PROFILE_FILE, save_snapshot, snapshot_key
from slipway.data.sources import RawData, read_source
from slipway.data.split import split_data
from slipway.metrics import MetricsBatch
from slipway.results import IngestResult, IngestSource, SplitRows
from slipway.steps.context import RunContext

log = logging.getLogger(__name__)


def run(ctx: RunContext, batch: MetricsBatch) -> IngestResult:
    data_cfg = ctx.config.data
    source = data_cfg.source
    raw = read_source(source, ctx.partition)
    if len(raw.x) == 0:
        where = f"partition {ctx.partition!r} of " if ctx.partition else ""
        raise DataError(f"{where}{raw.origin} is empty: no examples to ingest")
    own_test = raw.own_test()
    raw = RawData(
        conform_shape(raw.x, data_cfg.input_shape),
        raw.y,
        origin=raw.origin,
        test_x=conform_shape(own_test[0], data_cfg.input_shape) if own_test is not None else None,
        test_y=own_test[1] if own_test is not None else None,
    )
    snapshot = split_data(raw, data_cfg.split)
    content_hash = snapshot.content_hash
    reused = ctx.store.exists(f"{snapshot_key(ctx.config.name, content_hash)}/{MANIFEST_FILE}")
    key = save_snapshot(ctx.store, snapshot, ctx.config.name)
    result = IngestResult(
        snapshot_key=key,
        snapshot_hash=content_hash,
        snapshot_uri=ctx.store.uri(key),
        rows=SplitRows(
            train=len(snapshot.train), validation=len(snapshot.validation), test=len(snapshot.test)
        ),
        input_shape=list(snapshot.train.x.shape[1:]),
        num_classes=data_cfg.num_classes,
        profile_key=f"{key}/{PROFILE_FILE}",
        source=IngestSource(
            kind=source.kind,
            uri=source.uri,
            partition=ctx.partition,
            scale=source.scale,
            max_examples=source.max_examples,
            origin=raw.origin,
            own_test_split=raw.has_test,
        ),
        reused=reused,
    )
    ctx.write_result("ingest", result)
    rows = result.rows.model_dump()
    for split, count in rows.items():
        batch.set("slipway_ingest_rows", count, split=split)
    log.info(
        "ingested %s: %d train / %d validation / %d test examples of shape %s -> %s%s",
        raw.origin,
        rows["train"],
        rows["validation"],
        rows["test"],
        tuple(result.input_shape),
        key,
        " (already stored)" if reused else "",
    )
    return result
