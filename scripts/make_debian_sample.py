"""Make data/debian_sample.parquet: 4,000 rows of the shared Debian set, for the README.

Source: ../shared/data/debian_descriptions_minilm384.parquet (Debian 12 package
descriptions embedded with all-MiniLM-L6-v2; see that folder's README for provenance and
licences). Rows are a uniform sample without replacement drawn with numpy's
default_rng(20261121), kept in their original (package-name) order; all four columns
(id, text, label, embedding fixed_size_list<float32>[384]) are kept as they are.

Run once, with pyarrow and numpy installed:
    python scripts/make_debian_sample.py ../shared/data/debian_descriptions_minilm384.parquet
"""
import sys

import numpy as np
import pyarrow.parquet as pq

N_ROWS = 4000
SEED = 20261121

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/debian_descriptions_minilm384.parquet"
dst = sys.argv[2] if len(sys.argv) > 2 else "data/debian_sample.parquet"
table = pq.read_table(src)
rows = np.sort(np.random.default_rng(SEED).choice(table.num_rows, size=N_ROWS, replace=False))
sample = table.take(rows)
pq.write_table(sample, dst, compression="zstd", row_group_size=1000)
print(f"wrote {sample.num_rows} rows, {sample.schema} to {dst}")
