//! `embedcluster.pipeline`: the main job (`embedcluster run`) on a file, an array or an
//! Arrow table, and saved models (the one manifest type of the core's `persist`).

use crate::arrays::{arr, slice, vec1, vec2, vec_f64, Arr};
use crate::arrow::batches_of;
use crate::cluster::metric;
use crate::decomposition::pca_out;
use crate::errors::{to_py, value_error};
use crate::runtime::compute;
use embedcluster::cluster::KMeans;
use embedcluster::decomposition::Pca;
use embedcluster::io::{EmbeddingSource, MatrixRef};
use embedcluster::jobs::run::{run_full, run_source, PcaFit, Reduce, RunConfig, RunOutput};
use embedcluster::persist::{load_pipeline, save_pipeline, FitParams};
use embedcluster::pipeline::{ClusterCalibration, FittedPipeline, Rejection, Step};
use embedcluster::runtime::{NoProgress, Runtime};
use embedcluster::Real;
use numpy::{Element, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};

/// What a fit records for its saved model beyond the tensors: calibration, training rows
/// and parameters (JSON between `run_pipeline` and `save_model`).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct FitInfo {
    calibration: Vec<ClusterCalibration>,
    n_samples_seen: u64,
    params: FitParams,
}

fn memory_limit(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    Ok(match v {
        None => None,
        Some(v) => {
            Some(match v.extract::<u64>() {
                Ok(b) if b > 0 => b,
                _ => match v.extract::<String>() {
                    Ok(t) => embedcluster::jobs::plan::parse_bytes(&t).map_err(to_py)?,
                    Err(_) => return Err(value_error(
                        "memory_limit must be a positive number of bytes or a size such as '1GiB'",
                    )),
                },
            })
        }
    })
}

/// The main job (`embedcluster run`) on `source`: a path (Parquet, `.npy`, CSV, a
/// directory of Parquet parts, a glob) or a list of them read as one table, a 2-D
/// C-contiguous float32/float64 array, or an Arrow object that can be streamed twice (a
/// pyarrow Table, a polars DataFrame; `n_samples` rows). The same stages, memory plan and
/// k-means as the CLI. Returns a dict with `report` (JSON text), `labels` int32, `scores`
/// float32, `cluster_centers` float64 (k, D), `pca` (dict or None), `steps` (the fitted
/// preprocessing, as the manifest spells it) and `fit` (JSON text: calibration,
/// n_samples_seen, params, for `save_model`).
#[pyfunction]
#[pyo3(signature = (source, n_clusters, column="embedding", reduce="pca:128", pca_fit="exact", metric_name="cosine", n_init=1, max_iter=300, tol=1e-4, seed=0, batch_rows=None, memory_limit=None, output=None, model=None, labels_column=None, on_invalid="error", n_threads=None, n_samples=None, init_name="k-means++", init_trials=embedcluster::cluster::DEFAULT_INIT_TRIALS, init_size=0, oversampling_factor=2.0, init_rounds=5, spill=None, summary=None, summarize=false, text_column=None, n_representatives=5, n_keywords=10, keyword_entries=524288, progress=None, pruning="auto", algorithm="lloyd"))]
pub fn run_pipeline<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    n_clusters: usize,
    column: &str,
    reduce: &str,
    pca_fit: &str,
    metric_name: &str,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
    batch_rows: Option<usize>,
    memory_limit: Option<&Bound<'py, PyAny>>,
    output: Option<PathBuf>,
    model: Option<PathBuf>,
    labels_column: Option<String>,
    on_invalid: &str,
    n_threads: Option<usize>,
    n_samples: Option<usize>,
    init_name: &str,
    init_trials: usize,
    init_size: usize,
    oversampling_factor: f64,
    init_rounds: usize,
    spill: Option<&Bound<'py, PyAny>>,
    summary: Option<PathBuf>,
    summarize: bool,
    text_column: Option<String>,
    n_representatives: usize,
    n_keywords: usize,
    keyword_entries: usize,
    progress: Option<Py<PyAny>>,
    pruning: &str,
    algorithm: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let sink = progress.map(|callback| crate::runtime::PyProgress { callback });
    let progress: &dyn embedcluster::runtime::Progress = match &sink {
        Some(p) => p,
        None => &NoProgress,
    };
    let spill = match spill {
        None => embedcluster::jobs::run::Spill::Auto,
        Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => match v.extract::<bool>()? {
            true => embedcluster::jobs::run::Spill::Always(std::env::temp_dir()),
            false => embedcluster::jobs::run::Spill::Never,
        },
        Some(v) => {
            embedcluster::jobs::run::Spill::Always(v.extract::<PathBuf>().map_err(|_| {
                value_error("spill must be None (automatic), a directory, True or False")
            })?)
        }
    };
    let mut cfg = RunConfig {
        inputs: Vec::new(),
        column: column.to_string(),
        n_clusters,
        reduce: reduce.parse::<Reduce>().map_err(to_py)?,
        pca_fit: pca_fit.parse::<PcaFit>().map_err(to_py)?,
        metric: metric(metric_name)?,
        init: crate::cluster::init_of(init_name, oversampling_factor, init_rounds)?,
        n_init,
        init_trials,
        init_size,
        pruning: embedcluster::cluster::Pruning::from_name(pruning).map_err(to_py)?,
        algorithm: algorithm.parse().map_err(to_py)?,
        max_iter,
        tol,
        seed,
        batch_rows: match batch_rows {
            Some(0) => return Err(value_error("batch_rows = 0 must be at least 1")),
            Some(b) => b,
            None => 0,
        },
        memory_limit: self::memory_limit(memory_limit)?,
        output,
        model,
        labels_column,
        on_invalid: on_invalid.parse().map_err(to_py)?,
        spill,
        // a ClusterModel returned to Python saves the same manifest as the CLI's
        calibrate: true,
        summary,
        summarize,
        text_column,
        summary_params: embedcluster::summary::SummaryParams {
            n_representatives,
            n_keywords,
            max_entries: keyword_entries,
            ..Default::default()
        },
    };
    let in_memory = |cfg: &RunConfig| {
        if cfg.output.is_some()
            || cfg.labels_column.is_some()
            || cfg.model.is_some()
            || cfg.wants_summary()
        {
            Err(value_error(
                "output, labels_column, model and summaries need a path source here (the other columns live in the file)",
            ))
        } else {
            Ok(())
        }
    };
    let paths = if let Ok(path) = source.extract::<PathBuf>() {
        Some(vec![path])
    } else if source.is_instance_of::<pyo3::types::PyList>()
        || source.is_instance_of::<pyo3::types::PyTuple>()
    {
        Some(source.extract::<Vec<PathBuf>>().map_err(|_| {
            value_error(
                "a list source must hold paths (str or os.PathLike): files, directories or globs",
            )
        })?)
    } else {
        None
    };
    let o: RunOutput = if let Some(paths) = paths {
        cfg.inputs = paths;
        compute(py, n_threads, |cancel| {
            run_full(
                &cfg,
                &Runtime {
                    threads: None,
                    cancel,
                    progress,
                },
            )
        })?
    } else if let Ok(a) = arr(source, "X") {
        in_memory(&cfg)?;
        cfg.inputs = vec![PathBuf::from(embedcluster::io::ARRAY_ORIGIN)];
        cfg.column = "X".into();
        let run = |x: MatrixRef<'_>, d: usize| {
            compute(py, n_threads, |cancel| {
                let src = EmbeddingSource::from_matrix(x, d)?;
                run_source(
                    &cfg,
                    &src,
                    &Runtime {
                        threads: None,
                        cancel,
                        progress,
                    },
                )
            })
        };
        match &a {
            Arr::F32(a) => {
                let (x, _, d) = slice(a)?;
                run(MatrixRef::F32(x), d)?
            }
            Arr::F64(a) => {
                let (x, _, d) = slice(a)?;
                run(MatrixRef::F64(x), d)?
            }
        }
    } else if source.hasattr("__arrow_c_stream__")? {
        in_memory(&cfg)?;
        let n = n_samples.ok_or_else(|| value_error("an Arrow source needs n_samples"))?;
        let col = (column != "embedding").then_some(column);
        let (batches, vc) = batches_of(source, col)?;
        cfg.inputs = vec![PathBuf::from(embedcluster::io::ARROW_ORIGIN)];
        cfg.column = vc.name().to_string();
        compute(py, n_threads, |cancel| {
            let src = EmbeddingSource::from_batches(Box::new(batches), vc, n)?;
            run_source(
                &cfg,
                &src,
                &Runtime {
                    threads: None,
                    cancel,
                    progress,
                },
            )
        })?
    } else {
        return Err(value_error(
            "source must be a path, a 2-D float32/float64 array, or an Arrow table",
        ));
    };
    let out = PyDict::new(py);
    let steps: Vec<String> = embedcluster::pipeline::steps_for(cfg.metric, cfg.reduce)
        .iter()
        .map(|s| s.to_string())
        .collect();
    out.set_item("steps", steps)?;
    let k = o.report.n_clusters;
    let dim = o.report.n_components;
    let json = |v: &dyn erased::Ser| v.json().map_err(|e| value_error(format!("report: {e}")));
    out.set_item("report", json(&o.report)?)?;
    out.set_item(
        "fit",
        json(&FitInfo {
            calibration: o.calibration,
            n_samples_seen: o.n_samples_seen,
            params: o.fit_params,
        })?,
    )?;
    match &o.summary {
        Some(s) => out.set_item("summary", json(s)?)?,
        None => out.set_item("summary", py.None())?,
    }
    out.set_item("labels", vec1(py, o.labels))?;
    out.set_item("scores", vec1(py, o.scores))?;
    out.set_item("cluster_centers", vec2(py, o.cluster_centers, k, dim)?)?;
    match o.pca {
        Some(p) => out.set_item("pca", pca_out(py, p)?)?,
        None => out.set_item("pca", py.None())?,
    }
    Ok(out)
}

/// JSON of any serializable value behind one object-safe call.
mod erased {
    pub trait Ser {
        fn json(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Result<String> {
            serde_json::to_string(self)
        }
    }
}

/// Writes a model directory (the CLI's `--model` format, one manifest type): centroids
/// (k, D), metric, steps (`normalize`, `pca:D`, `matryoshka:D`), the input dimension, the
/// PCA (`mean_`, `components_`, `explained_variance_ratio_`) when there is a `pca:D` step,
/// the fit's objective and iterations, and `fit` (JSON from `run_pipeline`: calibration,
/// training rows, parameters). Every shape is checked first (`EmbedclusterError` naming
/// the attribute).
#[pyfunction]
#[pyo3(signature = (path, cluster_centers, metric_name, steps, n_features, pca_mean=None, pca_components=None, explained_variance_ratio=None, inertia=None, n_iter=0, n_samples_seen=0, fit=None))]
pub fn save_model(
    py: Python<'_>,
    path: PathBuf,
    cluster_centers: &Bound<'_, PyAny>,
    metric_name: &str,
    steps: Vec<String>,
    n_features: usize,
    pca_mean: Option<PyReadonlyArray1<'_, f64>>,
    pca_components: Option<PyReadonlyArray2<'_, f64>>,
    explained_variance_ratio: Option<PyReadonlyArray1<'_, f64>>,
    inertia: Option<f64>,
    n_iter: usize,
    n_samples_seen: u64,
    fit: Option<&str>,
) -> PyResult<()> {
    let metric = metric(metric_name)?;
    let steps: Vec<Step> = steps
        .iter()
        .map(|s| s.parse::<Step>())
        .collect::<Result<_, _>>()
        .map_err(to_py)?;
    let info: FitInfo = match fit {
        Some(t) => serde_json::from_str(t).map_err(|e| value_error(format!("fit: {e}")))?,
        None => FitInfo {
            n_samples_seen,
            ..Default::default()
        },
    };
    let pca = match (&pca_mean, &pca_components) {
        (Some(m), Some(c)) => {
            let mean = vec_f64(m, "mean_", None)?;
            let shape = c.shape().to_vec();
            let comps: Vec<f64> = c.as_array().iter().copied().collect();
            let evr = match &explained_variance_ratio {
                Some(e) => vec_f64(e, "explained_variance_ratio_", None)?,
                None => vec![],
            };
            if shape[1] != mean.len() {
                return Err(value_error(format!(
                    "components_ has {} columns but mean_ has {} values",
                    shape[1],
                    mean.len()
                )));
            }
            Some(
                Pca::from_parts(mean, comps, shape[0], vec![], evr, info.n_samples_seen)
                    .map_err(to_py)?,
            )
        }
        (None, None) => None,
        _ => return Err(value_error("mean_ and components_ go together")),
    };
    fn go<T: Real + Element>(
        py: Python<'_>,
        path: &Path,
        a: &PyReadonlyArray2<'_, T>,
        metric: embedcluster::cluster::Metric,
        steps: Vec<Step>,
        n_features: usize,
        pca: Option<Pca>,
        inertia: Option<f64>,
        n_iter: usize,
        info: FitInfo,
    ) -> PyResult<()> {
        let (c, k, _) = slice(a)?;
        let km = KMeans::from_centers(c.to_vec(), k, metric)
            .map_err(to_py)?
            .with_fit_summary(inertia.unwrap_or(f64::NAN), n_iter);
        let p = FittedPipeline::new(steps, n_features, pca, km, info.calibration).map_err(to_py)?;
        py.detach(|| save_pipeline(path, &p, info.n_samples_seen, &info.params))
            .map_err(to_py)
    }
    match arr(cluster_centers, "cluster_centers_")? {
        Arr::F32(a) => go(
            py, &path, &a, metric, steps, n_features, pca, inertia, n_iter, info,
        ),
        Arr::F64(a) => go(
            py, &path, &a, metric, steps, n_features, pca, inertia, n_iter, info,
        ),
    }
}

/// Reads a model directory: dict with `manifest` (JSON text of the core's `Manifest`),
/// `cluster_centers` float64 (k, D), and `pca_mean` / `pca_components` (or None).
#[pyfunction]
pub fn load_model<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let m = py
        .detach(|| embedcluster::persist::load_model(&path))
        .map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item(
        "manifest",
        serde_json::to_string(&m.manifest).map_err(|e| value_error(format!("manifest: {e}")))?,
    )?;
    let (c, k, d) = m.cluster_centers;
    out.set_item("cluster_centers", vec2(py, c, k, d)?)?;
    match (m.pca_mean, m.pca_components) {
        (Some(mean), Some((comp, nc, nf))) => {
            out.set_item("pca_mean", vec1(py, mean))?;
            out.set_item("pca_components", vec2(py, comp, nc, nf)?)?;
        }
        _ => {
            out.set_item("pca_mean", py.None())?;
            out.set_item("pca_components", py.None())?;
        }
    }
    Ok(out)
}

/// Applies a saved model (directory) to rows of X, `batch_rows` at a time, exactly as
/// `embedcluster predict` does: `(labels int32 (-1 = rejected), scores float32,
/// confidence float32)`. X is not modified.
#[pyfunction]
#[pyo3(signature = (path, x, min_confidence=None, adaptive=None, batch_rows=16384, n_threads=None))]
pub fn model_predict<'py>(
    py: Python<'py>,
    path: PathBuf,
    x: &Bound<'py, PyAny>,
    min_confidence: Option<f32>,
    adaptive: Option<String>,
    batch_rows: usize,
    n_threads: Option<usize>,
) -> PyResult<(
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<f32>>,
)> {
    let rule = match (min_confidence, adaptive) {
        (Some(c), _) => Rejection::MinConfidence(c),
        (None, Some(q)) => q.parse::<Rejection>().map_err(to_py)?,
        (None, None) => Rejection::None,
    };
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        path: &Path,
        a: &PyReadonlyArray2<'py, T>,
        rule: Rejection,
        batch_rows: usize,
        n_threads: Option<usize>,
    ) -> PyResult<(Vec<i32>, Vec<f32>, Vec<f32>)> {
        let (x, _, d) = slice(a)?;
        compute(py, n_threads, |cancel| {
            let model = load_pipeline::<T>(path)?;
            if d != model.n_features() {
                return Err(embedcluster::Error::param_msg(
                    "X",
                    format!(
                        "X has {d} features, but the model expects {}",
                        model.n_features()
                    ),
                ));
            }
            let (mut l, mut s, mut c) = (Vec::new(), Vec::new(), Vec::new());
            let mut block = Vec::new();
            for (i, rows) in x.chunks(batch_rows.max(1) * d).enumerate() {
                cancel.check()?;
                block.clear();
                block.extend_from_slice(rows);
                let mut asg = model.assign_block(
                    &mut block,
                    (Path::new(embedcluster::io::ARRAY_ORIGIN), "X"),
                    (i * batch_rows) as u64,
                )?;
                model.reject(&mut asg, rule)?;
                l.extend(asg.labels);
                s.extend(asg.scores);
                c.extend(asg.confidence);
            }
            Ok((l, s, c))
        })
    }
    let (l, s, c) = match arr(x, "X")? {
        Arr::F32(a) => go(py, &path, &a, rule, batch_rows, n_threads)?,
        Arr::F64(a) => go(py, &path, &a, rule, batch_rows, n_threads)?,
    };
    Ok((vec1(py, l), vec1(py, s), vec1(py, c)))
}

/// Builds the fitted pipeline Python holds in parts (checked: a wrong length raises
/// `EmbedclusterError` naming the attribute).
fn pipeline_from_parts<T: Real>(
    centers: &[T],
    k: usize,
    metric_name: &str,
    steps: &[String],
    n_features: usize,
    pca_mean: Option<&PyReadonlyArray1<'_, f64>>,
    pca_components: Option<&PyReadonlyArray2<'_, f64>>,
) -> PyResult<FittedPipeline<T>> {
    let metric = metric(metric_name)?;
    let steps: Vec<Step> = steps
        .iter()
        .map(|s| s.parse::<Step>())
        .collect::<Result<_, _>>()
        .map_err(to_py)?;
    let pca = match (pca_mean, pca_components) {
        (Some(m), Some(c)) => Some(crate::decomposition::pca_from(m, c)?),
        (None, None) => None,
        _ => return Err(value_error("mean_ and components_ go together")),
    };
    let km = KMeans::from_centers(centers.to_vec(), k, metric).map_err(to_py)?;
    FittedPipeline::new(steps, n_features, pca, km, vec![]).map_err(to_py)
}

/// Applies a fitted pipeline held in parts (`cluster_centers_`, metric, steps, input
/// dimension, PCA `mean_` / `components_`) to rows of X, `batch_rows` at a time, through
/// the core's `FittedPipeline` (the code `embedcluster predict` runs). `what="assign"`:
/// `(labels int32, scores float32, confidence float32)`; `what="transform"`: the
/// preprocessed rows (n, D) in X's dtype. X is not modified; X and the centroids share a
/// dtype.
#[pyfunction]
#[pyo3(signature = (x, cluster_centers, metric_name, steps, n_features, pca_mean=None, pca_components=None, what="assign", batch_rows=16384, n_threads=None))]
pub fn pipeline_apply<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    cluster_centers: &Bound<'py, PyAny>,
    metric_name: &str,
    steps: Vec<String>,
    n_features: usize,
    pca_mean: Option<PyReadonlyArray1<'py, f64>>,
    pca_components: Option<PyReadonlyArray2<'py, f64>>,
    what: &str,
    batch_rows: usize,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    if what != "assign" && what != "transform" {
        return Err(value_error(format!(
            "what = {what:?} must be 'assign' or 'transform'"
        )));
    }
    fn go<'py, T: Real + Element>(
        py: Python<'py>,
        a: &PyReadonlyArray2<'py, T>,
        c: &PyReadonlyArray2<'py, T>,
        metric_name: &str,
        steps: &[String],
        n_features: usize,
        pca_mean: Option<&PyReadonlyArray1<'py, f64>>,
        pca_components: Option<&PyReadonlyArray2<'py, f64>>,
        what: &str,
        batch_rows: usize,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (x, n, d) = slice(a)?;
        let (centers, k, _) = slice(c)?;
        let p = pipeline_from_parts(
            centers,
            k,
            metric_name,
            steps,
            n_features,
            pca_mean,
            pca_components,
        )?;
        if d != p.n_features() {
            return Err(value_error(format!(
                "X has {d} features, but the model expects {}",
                p.n_features()
            )));
        }
        let dim = p.kmeans().n_features();
        let transform = what == "transform";
        let (l, s, c, z) = compute(py, n_threads, |cancel| {
            let (mut l, mut s, mut c, mut z) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut block = Vec::new();
            for (i, rows) in x.chunks(batch_rows.max(1) * d).enumerate() {
                cancel.check()?;
                block.clear();
                block.extend_from_slice(rows);
                let origin = (Path::new(embedcluster::io::ARRAY_ORIGIN), "X");
                let first = (i * batch_rows) as u64;
                if transform {
                    match p.preprocess(&mut block, origin, first)? {
                        Some(r) => z.extend(r),
                        None => z.extend_from_slice(&block),
                    }
                } else {
                    let asg = p.assign_block(&mut block, origin, first)?;
                    l.extend(asg.labels);
                    s.extend(asg.scores);
                    c.extend(asg.confidence);
                }
            }
            Ok((l, s, c, z))
        })?;
        if transform {
            return Ok(vec2(py, z, n, dim)?.into_any());
        }
        Ok((vec1(py, l), vec1(py, s), vec1(py, c))
            .into_pyobject(py)?
            .into_any())
    }
    match (arr(x, "X")?, arr(cluster_centers, "cluster_centers_")?) {
        (Arr::F32(a), Arr::F32(c)) => go(
            py,
            &a,
            &c,
            metric_name,
            &steps,
            n_features,
            pca_mean.as_ref(),
            pca_components.as_ref(),
            what,
            batch_rows,
            n_threads,
        ),
        (Arr::F64(a), Arr::F64(c)) => go(
            py,
            &a,
            &c,
            metric_name,
            &steps,
            n_features,
            pca_mean.as_ref(),
            pca_components.as_ref(),
            what,
            batch_rows,
            n_threads,
        ),
        _ => Err(value_error(
            "X and cluster_centers_ must have the same dtype",
        )),
    }
}
