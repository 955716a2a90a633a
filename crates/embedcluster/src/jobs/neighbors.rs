//! `embedcluster neighbors`: exact top-k of a query file among a streamed base file.

use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::linalg::Distance;
use crate::neighbors::*;

/// Everything `embedcluster neighbors` takes.
#[derive(Debug, Clone)]
pub struct NeighborsConfig {
    pub base: std::path::PathBuf,
    pub queries: std::path::PathBuf,
    /// Embedding column of both files (Parquet).
    pub column: String,
    pub k: usize,
    pub metric: Distance,
    /// Skip base id `i` for query `i` (base and queries are the same rows).
    pub exclude_self: bool,
    /// Base rows per block read; `None`: as many as fit in 16 MiB.
    pub batch_rows: Option<usize>,
    /// Output Parquet (`query_id`, `neighbor_ids`, `distances`).
    pub output: Option<std::path::PathBuf>,
}

/// What a search did, as written to its report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NeighborsReport {
    pub base: String,
    pub queries: String,
    pub n_base: usize,
    pub n_queries: usize,
    pub n_features: usize,
    pub k: usize,
    pub metric: Distance,
    pub exclude_self: bool,
    pub batch_rows: usize,
    pub threads: usize,
    pub stages: Vec<crate::memory::StageReport>,
    pub peak_rss_bytes: u64,
    /// How the stage peaks were measured, and what they mean ([`crate::memory::StagePeaksInfo`]).
    pub stage_peaks: crate::memory::StagePeaksInfo,
}

/// Exact top-k of every row of `cfg.queries` against every row of `cfg.base`, the base
/// streamed block by block (never resident), the queries held in memory.
///
/// Peak memory: queries `q d s` + heaps `q k (s + 8)` + one base block
/// (`batch_rows d s`, 16 MiB by default) + an Arrow batch + 1 MiB per thread.
///
/// # Errors
/// Reader errors (file, row, column), [`Error::Parameter`] when the dimensions differ or
/// `k` exceeds the base. No output file is left behind on error.
pub fn search_files(
    cfg: &NeighborsConfig,
    rt: &crate::runtime::Runtime,
) -> Result<NeighborsReport> {
    rt.install(|| search_on_pool(cfg, rt.progress))
}

fn search_on_pool(
    cfg: &NeighborsConfig,
    progress: &dyn crate::runtime::Progress,
) -> Result<NeighborsReport> {
    use crate::io::EmbeddingSource;
    use crate::memory::StageRecorder;
    let mut rec = StageRecorder::new();
    let (base, queries) = rec.stage("open", || {
        let b = EmbeddingSource::open(&cfg.base, &cfg.column)?;
        let q = EmbeddingSource::open(&cfg.queries, &cfg.column)?;
        Ok::<_, Error>(((b, q), 0))
    })?;
    let d = base.n_features();
    if queries.n_features() != d {
        return Err(Error::param_msg(
            "queries",
            format!(
                "queries have {} features ({}) but the base has {d} ({})",
                queries.n_features(),
                cfg.queries.display(),
                cfg.base.display()
            ),
        ));
    }
    let eligible = base.n_samples() - usize::from(cfg.exclude_self);
    if cfg.k == 0 || cfg.k > eligible {
        return Err(Error::param(
            "n_neighbors",
            cfg.k,
            format!(
                "must be between 1 and the base's {} rows{}",
                eligible,
                if cfg.exclude_self {
                    " (excluding the query itself)"
                } else {
                    ""
                }
            ),
        ));
    }
    if cfg.exclude_self && queries.n_samples() > base.n_samples() {
        return Err(Error::param(
            "exclude_self",
            true,
            "needs the queries to be the first rows of the base",
        ));
    }
    let batch_rows = cfg
        .batch_rows
        .unwrap_or_else(|| ((16 << 20) / (d * base.dtype().size())).clamp(256, 65536));
    if batch_rows == 0 {
        return Err(Error::param("batch_rows", 0, "must be at least 1"));
    }
    if let Some(out) = &cfg.output {
        drop(crate::io::AtomicFile::create(out)?);
    }
    match base.dtype() {
        crate::dtype::DType::Float32 => {
            search_typed::<f32>(cfg, &base, &queries, batch_rows, rec, progress)
        }
        crate::dtype::DType::Float64 => {
            search_typed::<f64>(cfg, &base, &queries, batch_rows, rec, progress)
        }
    }
}

fn search_typed<T: Real>(
    cfg: &NeighborsConfig,
    base: &crate::io::EmbeddingSource,
    queries: &crate::io::EmbeddingSource,
    batch_rows: usize,
    mut rec: crate::memory::StageRecorder,
    progress: &dyn crate::runtime::Progress,
) -> Result<NeighborsReport> {
    let d = base.n_features();
    let q = rec.stage("read_queries", || {
        let mut all: Vec<T> = Vec::with_capacity(queries.n_samples() * d);
        let mut r = queries.blocks::<T>(batch_rows)?;
        while let Some(b) = r.next_block()? {
            all.extend_from_slice(b.data);
        }
        let rows = r.rows_read();
        Ok::<_, Error>((all, rows))
    })?;
    let nq = q.len() / d;
    let mut state = KnnState::new(&q, d, cfg.k, cfg.metric, cfg.exclude_self.then_some(0))
        .map_err(|e| match e {
            Error::Parameter(p) => Error::Column {
                path: cfg.queries.clone(),
                column: cfg.column.clone(),
                message: p.constraint,
            },
            e => e,
        })?;
    drop(q);
    let top = rec.stage("search", || {
        progress.begin("search", Some(base.n_samples() as u64));
        let mut r = base.blocks::<T>(batch_rows)?;
        while let Some(b) = r.next_block()? {
            state
                .push_base(b.data, b.start_row as i64)
                .map_err(|e| match e {
                    Error::Parameter(p) => Error::InvalidRow {
                        path: base.path().to_path_buf(),
                        row: b.start_row,
                        column: base.column().to_string(),
                        message: p.constraint,
                    },
                    e => e,
                })?;
            progress.advance(b.rows as u64);
        }
        progress.end();
        let rows = r.rows_read();
        Ok::<_, Error>((state.finish()?, rows))
    })?;
    if let Some(out) = &cfg.output {
        rec.stage("write", || {
            write_neighbors(out, &top)?;
            Ok::<_, Error>(((), nq as u64))
        })?;
    }
    Ok(NeighborsReport {
        base: cfg.base.display().to_string(),
        queries: cfg.queries.display().to_string(),
        n_base: base.n_samples(),
        n_queries: nq,
        n_features: d,
        k: cfg.k,
        metric: cfg.metric,
        exclude_self: cfg.exclude_self,
        batch_rows,
        threads: rayon::current_num_threads(),
        peak_rss_bytes: rec.peak_rss_bytes(),
        stage_peaks: rec.stage_peaks(),
        stages: rec.stages().to_vec(),
    })
}

/// Writes a top-k result as Parquet, atomically: `query_id` (int64), `neighbor_ids`
/// (list<int64>) and `distances` (list<float32>), one row per query, best first.
pub fn write_neighbors<T: Real>(path: &std::path::Path, top: &TopK<T>) -> Result<()> {
    use arrow_array::{ArrayRef, Float32Array, Int64Array, ListArray, RecordBatch};
    use arrow_buffer::OffsetBuffer;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let atomic = crate::io::AtomicFile::create(path)?;
    let id_item = Arc::new(Field::new("item", DataType::Int64, false));
    let d_item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("query_id", DataType::Int64, false),
        Field::new("neighbor_ids", DataType::List(id_item.clone()), false),
        Field::new("distances", DataType::List(d_item.clone()), false),
    ]));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(atomic.try_clone()?, schema.clone(), Some(props))
            .map_err(|e| Error::write(path, e))?;
    let k = top.k;
    let per = (65536 / k.max(1)).max(1);
    let mut q0 = 0;
    while q0 < top.n_queries {
        let m = per.min(top.n_queries - q0);
        let qid: ArrayRef = Arc::new(Int64Array::from_iter_values(q0 as i64..(q0 + m) as i64));
        let offs = || OffsetBuffer::<i32>::from_lengths(std::iter::repeat_n(k, m));
        let ids = Int64Array::from(top.ids[q0 * k..(q0 + m) * k].to_vec());
        let dis = Float32Array::from_iter_values(
            top.distances[q0 * k..(q0 + m) * k]
                .iter()
                .map(|v| v.to_f64() as f32),
        );
        let l1: ArrayRef = Arc::new(ListArray::new(id_item.clone(), offs(), Arc::new(ids), None));
        let l2: ArrayRef = Arc::new(ListArray::new(d_item.clone(), offs(), Arc::new(dis), None));
        let batch = RecordBatch::try_new(schema.clone(), vec![qid, l1, l2])
            .map_err(|e| Error::write(path, e))?;
        w.write(&batch).map_err(|e| Error::write(path, e))?;
        q0 += m;
    }
    w.close().map_err(|e| Error::write(path, e))?;
    atomic.commit()
}
