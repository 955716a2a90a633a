"""Arrow and NumPy inputs.

Any object with the Arrow PyCapsule stream interface (``__arrow_c_stream__``: pyarrow
``Table`` and ``RecordBatchReader``, polars ``DataFrame``, DuckDB results, Spark's
``toArrow()``) is read batch by batch from its ``list`` / ``large_list`` /
``fixed_size_list`` float column by the Rust core: no Python object per value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import numpy as np

from ._core import ArrowVectorReader
from ._typing import Floats


def is_arrow(obj: Any) -> bool:
    """True for objects that export an Arrow C stream (and are not NumPy arrays)."""
    return hasattr(obj, "__arrow_c_stream__") and not isinstance(obj, np.ndarray)


def _is_list_type(t) -> bool:
    """True for an Arrow list / large_list / fixed_size_list type (pyarrow) or a polars
    ``List`` / ``Array`` dtype."""
    return type(t).__name__ in ("ListType", "LargeListType", "FixedSizeListType", "ListViewType",
                                "LargeListViewType", "List", "Array")


def _pandas_column_is_vectors(col) -> bool:
    """A pandas column of vectors: an ArrowDtype list, or objects that are arrays/lists."""
    pa_type = getattr(col.dtype, "pyarrow_dtype", None)
    if pa_type is not None:
        return _is_list_type(pa_type)
    if col.dtype != object:
        return False
    first = col.first_valid_index()
    return first is not None and isinstance(col[first], (np.ndarray, list, tuple))


def is_vector_table(obj: Any) -> bool:
    """True for a table read as vectors (one row per vector): an Arrow-exporting object
    (``__arrow_c_stream__``) that has a list / fixed-size-list column, or a pandas
    DataFrame with a column of arrays. A table of numeric columns is a feature matrix
    (scikit-learn's reading: one column per feature, names kept in
    ``feature_names_in_``), so it is False for it.
    """
    if not is_arrow(obj):
        return False
    if type(obj).__module__.startswith("pandas"):
        return any(_pandas_column_is_vectors(obj[c]) for c in obj.columns)
    schema = getattr(obj, "schema", None)
    if schema is not None and not callable(schema):
        types = schema.values() if hasattr(schema, "values") else [f.type for f in schema]
        return any(_is_list_type(t) for t in types)
    # another Arrow exporter (DuckDB, a Spark Arrow table): ask its schema where pyarrow
    # can read it; without one, read it as vectors
    try:
        import pyarrow as pa

        sch = pa.schema(obj) if hasattr(obj, "__arrow_c_schema__") else None
    except Exception:  # noqa: BLE001 - no schema to read: keep the vector path
        sch = None
    return True if sch is None else any(_is_list_type(f.type) for f in sch)


def is_one_shot(obj: Any) -> bool:
    """True for streams that can be read only once (pyarrow ``RecordBatchReader``)."""
    return type(obj).__name__ == "RecordBatchReader"


def num_rows(obj: Any) -> Optional[int]:
    """Row count when the object knows it without reading (pyarrow Table, polars DataFrame)."""
    for attr in ("num_rows", "height"):
        n = getattr(obj, attr, None)
        if isinstance(n, (int, np.integer)):
            return int(n)
    return None


def iter_batches(source: Any, column: Optional[str] = None) -> Iterator[Floats]:
    """Yield the vectors of an Arrow stream as 2-D float32/float64 arrays, one per batch.

    Parameters
    ----------
    source : object with ``__arrow_c_stream__``
    column : str, optional
        The vector column; by default the column named ``embedding``, or the only list
        column of floats.

    Memory: one batch at a time (``batch_rows x n_features x itemsize`` bytes).
    Raises ``EmbedclusterError`` (a ``ValueError``) naming the row and column of a null,
    ragged or non-finite vector.
    """
    return iter(ArrowVectorReader(source, column))


def to_numpy(source: Any, column: Optional[str] = None, n_rows: Optional[int] = None) -> Floats:
    """Fill one C-contiguous ``(n_samples, n_features)`` array from an Arrow stream.

    The dtype is the column's (float32 stays float32). When the row count is known
    (``n_rows``, a pyarrow Table's ``num_rows``, a polars DataFrame's ``height``) the array is
    allocated once and filled batch by batch: peak memory is the array plus one batch.
    Otherwise the batches are concatenated at the end, which briefly holds two copies.
    """
    if n_rows is None:
        n_rows = num_rows(source)
    reader = ArrowVectorReader(source, column)
    if n_rows is None:
        blocks = list(reader)
        if not blocks:
            raise ValueError("Found array with 0 sample(s) (the Arrow stream is empty)")
        return np.ascontiguousarray(np.concatenate(blocks))
    out = None
    at = 0
    for block in reader:
        if out is None:
            out = np.empty((n_rows, block.shape[1]), dtype=block.dtype)
        if at + len(block) > n_rows:
            raise ValueError(f"the Arrow stream has more than {n_rows} rows")
        out[at : at + len(block)] = block
        at += len(block)
    if out is None:
        raise ValueError("Found array with 0 sample(s) (the Arrow stream is empty)")
    if at != n_rows:
        raise ValueError(f"the Arrow stream has {at} rows, expected {n_rows}")
    return out
