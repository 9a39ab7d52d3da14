"""``parquet`` source: one Parquet file with a ``label`` column and either numeric feature
columns (in file order) or an ``image`` column holding one list of numbers per row.

Missing feature values become NaN and are left for the validation step to report with the
data's other problems; a missing label cannot be represented in the snapshot and is an error
here, as is any non-numeric column.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from slipway.data.dataset import DataError
from slipway.data.sources.base import RawData, StoreFactory
from slipway.data.sources.location import locate

LABEL = "label"
IMAGE = "image"


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow.types as pat

    return pat.is_integer(arrow_type) or pat.is_floating(arrow_type) or pat.is_boolean(arrow_type)


def _image_column(column: Any, uri: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pat

    kind = column.type
    if not (pat.is_list(kind) or pat.is_large_list(kind) or pat.is_fixed_size_list(kind)):
        raise DataError(f"{uri}: column 'image' must hold a list of numbers per row, not {column.type}")
    if not _is_numeric(column.type.value_type):
        raise DataError(f"{uri}: column 'image' holds {column.type.value_type} values, not numbers")
    if column.null_count:
        raise DataError(f"{uri}: column 'image' has {column.null_count} missing images")
    images = column.combine_chunks()
    lengths = np.unique(pc.list_value_length(images).to_numpy(zero_copy_only=False))
    if len(lengths) > 1:
        raise DataError(f"{uri}: images in column 'image' differ in length: {lengths[:5].tolist()}")
    values = images.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False)
    return values.reshape(len(images), int(lengths[0]) if len(lengths) else 0)


def read(uri: str, store_factory: StoreFactory) -> RawData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = locate(uri).read_bytes(store_factory)
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{uri}: not a readable Parquet file ({exc})") from None
    if LABEL not in table.column_names:
        raise DataError(f"{uri}: no 'label' column (columns: {table.column_names[:10]})")
    labels = table.column(LABEL)
    if labels.null_count:
        raise DataError(f"{uri}: column 'label' has {labels.null_count} missing values")
    y = labels.to_numpy(zero_copy_only=False)
    if IMAGE in table.column_names:
        x = _image_column(table.column(IMAGE), uri)
    else:
        names = [n for n in table.column_names if n != LABEL]
        if not names:
            raise DataError(f"{uri}: no feature columns besides 'label'")
        bad = [f"{n!r} ({table.column(n).type})" for n in names if not _is_numeric(table.column(n).type)]
        if bad:
            raise DataError(f"{uri}: non-numeric feature column(s) {', '.join(bad[:5])}")
        x = np.column_stack(
            [table.column(n).cast(pa.float64()).to_numpy(zero_copy_only=False) for n in names]
        )
    return RawData(x=x, y=y, origin=uri)
