"""Type aliases of the public API (annotations only: nothing here is used at run time)."""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

#: Input rows: a NumPy array (n_samples, n_features), a table of numeric columns (pandas,
#: polars, pyarrow), an Arrow object with a vector column, or (where said) sparse.
Data = Any
#: float32 or float64, the input's.
Floats = NDArray[np.floating[Any]]
#: Cluster labels, int32 (n_samples,).
Labels = NDArray[np.int32]
#: A file or directory path.
PathArg = Union[str, "os.PathLike[str]"]
