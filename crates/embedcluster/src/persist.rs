//! Saved models: safetensors tensors plus a JSON manifest, written atomically. This module
//! is the only reader and writer of model files.
//!
//! A model directory holds `model.safetensors` (tensors `pca.mean` f64 `[d]`,
//! `pca.components` f64 `[D, d]`, `kmeans.cluster_centers` f32/f64 `[k, D]`) and
//! `manifest.json`: one [`Manifest`], a typed and versioned record (format version,
//! preprocessing steps in order, metric, shapes, dtype, training row count, the fit's
//! parameters, calibration, and the tensors file's size and checksum). The CLI and Python
//! write the same type, so their manifests have the same keys. No pickle: safe to load
//! untrusted files.
//!
//! # Example
//! ```
//! use embedcluster::cluster::{KMeans, Metric};
//! use embedcluster::persist::{load_pipeline, save_pipeline, FitParams};
//! use embedcluster::pipeline::FittedPipeline;
//!
//! let dir = std::env::temp_dir().join(format!("ec-doc-{}", std::process::id()));
//! let km = KMeans::from_centers(vec![0.0f32, 0.0, 1.0, 1.0], 2, Metric::Euclidean).unwrap();
//! let p = FittedPipeline::new(vec![], 2, None, km, vec![]).unwrap();
//! save_pipeline(&dir, &p, 10, &FitParams::default()).unwrap();
//! let q = load_pipeline::<f32>(&dir).unwrap();
//! assert_eq!(q.kmeans().cluster_centers(), p.kmeans().cluster_centers());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::cluster::{KMeans, Metric};
use crate::decomposition::Pca;
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use crate::io::{AtomicFile, DirLock};
use crate::pipeline::{ClusterCalibration, FittedPipeline, Step};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Version of the on-disk model format; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

fn to_bytes<T: Real>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(v));
    for &x in v {
        match T::DTYPE {
            DType::Float32 => out.extend((x.to_f64() as f32).to_le_bytes()),
            DType::Float64 => out.extend(x.to_f64().to_le_bytes()),
        }
    }
    out
}

fn dtype_of<T: Real>() -> Dtype {
    match T::DTYPE {
        DType::Float32 => Dtype::F32,
        DType::Float64 => Dtype::F64,
    }
}

/// Shape and dtype of one tensor of `model.safetensors`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorInfo {
    pub shape: Vec<usize>,
    /// safetensors' name: `F32` or `F64`.
    pub dtype: String,
}

/// Size and checksum of a file of the model directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    pub bytes: u64,
    /// FNV-1a 64 of the bytes, 16 hex digits.
    pub fnv1a64: String,
}

/// The parameters a model was fitted with (informational; a loader never needs them).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FitParams {
    /// Embedding column of the training file, if it came from a file.
    pub column: Option<String>,
    /// `none`, `pca:D` or `matryoshka:D`.
    pub reduce: Option<String>,
    /// `exact` or `sample:N`, for PCA.
    pub pca_fit: Option<String>,
    /// `k-means++`, `k-means||` or `random`.
    pub init: Option<String>,
    pub n_init: Option<usize>,
    /// Seedings screened on a sample, and the sample's rows (0: automatic).
    pub init_trials: Option<usize>,
    pub init_size: Option<usize>,
    pub max_iter: Option<usize>,
    pub tol: Option<f64>,
    pub seed: Option<u64>,
    /// Rows per block read (results do not depend on it).
    pub batch_rows: Option<usize>,
}

/// `manifest.json`: everything about a saved model but its tensors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Preprocessing steps, in order (`normalize`, `pca:D`, `matryoshka:D`).
    pub steps: Vec<Step>,
    pub metric: Metric,
    /// Columns of the rows the model assigns.
    pub n_features: usize,
    /// Columns after the reduction (the centroids' dimension).
    pub n_components: usize,
    pub n_clusters: usize,
    /// Dtype of the centroids (the training data's).
    pub dtype: DType,
    /// Training rows (0 when unknown).
    #[serde(default)]
    pub n_samples_seen: u64,
    #[serde(default)]
    pub params: FitParams,
    /// Per-component share of the variance, for a PCA step.
    #[serde(default)]
    pub explained_variance_ratio: Option<Vec<f64>>,
    /// The fit's objective (null when unknown).
    #[serde(default)]
    pub inertia: Option<f64>,
    /// Lloyd iterations of the fit.
    #[serde(default)]
    pub n_iter: usize,
    /// Per-cluster training scores and confidences (empty when not computed).
    #[serde(default)]
    pub calibration: Vec<ClusterCalibration>,
    /// The tensors of `model.safetensors`.
    #[serde(default)]
    pub tensors: BTreeMap<String, TensorInfo>,
    /// Size and checksum of `model.safetensors`, so a torn save is refused.
    #[serde(default)]
    pub files: BTreeMap<String, FileInfo>,
}

/// Saves a fitted pipeline into `dir` (created if missing): `model.safetensors`, then
/// `manifest.json` (written last: it names the tensors file's size and checksum, so a
/// directory left by an interrupted save is refused on load). Each file is written to a
/// temporary name and renamed, under an exclusive lock on `dir` ([`DirLock`]; loads take it
/// shared), so concurrent saves into one directory leave one complete model.
///
/// `n_samples_seen` is the training row count; `params` what the fit was given.
///
/// # Errors
/// [`Error::Io`] when a file cannot be written; [`Error::Model`] when serialization fails.
pub fn save_pipeline<T: Real>(
    dir: &Path,
    pipeline: &FittedPipeline<T>,
    n_samples_seen: u64,
    params: &FitParams,
) -> Result<()> {
    let km = pipeline.kmeans();
    let pca = pipeline.pca();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // another save into `dir` (thread or process) waits: the pair stays one save's
    let _lock = DirLock::exclusive(dir);
    let mut tensors: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = Vec::new();
    if let Some(p) = pca {
        tensors.push((
            "pca.mean".into(),
            to_bytes(p.mean()),
            Dtype::F64,
            vec![p.n_features()],
        ));
        tensors.push((
            "pca.components".into(),
            to_bytes(p.components()),
            Dtype::F64,
            vec![p.n_components(), p.n_features()],
        ));
    }
    tensors.push((
        "kmeans.cluster_centers".into(),
        to_bytes(km.cluster_centers()),
        dtype_of::<T>(),
        vec![km.n_clusters(), km.n_features()],
    ));
    let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
    for (name, bytes, dt, shape) in &tensors {
        let view = TensorView::new(*dt, shape.clone(), bytes).map_err(|e| Error::Model {
            path: dir.to_path_buf(),
            message: format!("tensor {name}: {e}"),
        })?;
        views.push((name.clone(), view));
    }
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Model {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let path = dir.join("model.safetensors");
    let mut f = AtomicFile::create(&path)?;
    f.file()
        .write_all(&bytes)
        .map_err(|e| Error::io(&path, e))?;
    f.commit()?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        steps: pipeline.steps().to_vec(),
        metric: km.metric(),
        n_features: pipeline.n_features(),
        n_components: km.n_features(),
        n_clusters: km.n_clusters(),
        dtype: T::DTYPE,
        n_samples_seen,
        params: params.clone(),
        explained_variance_ratio: pca.map(|p| p.explained_variance_ratio().to_vec()),
        inertia: Some(km.inertia()).filter(|v| v.is_finite()),
        n_iter: km.n_iter(),
        calibration: pipeline.calibration().to_vec(),
        tensors: tensors
            .iter()
            .map(|(name, _, dt, shape)| {
                (
                    name.clone(),
                    TensorInfo {
                        shape: shape.clone(),
                        dtype: format!("{dt:?}"),
                    },
                )
            })
            .collect(),
        files: [(
            "model.safetensors".to_string(),
            FileInfo {
                bytes: bytes.len() as u64,
                fnv1a64: format!("{:016x}", fnv1a64(&bytes)),
            },
        )]
        .into_iter()
        .collect(),
    };
    let path = dir.join("manifest.json");
    let mut f = AtomicFile::create(&path)?;
    serde_json::to_writer_pretty(f.file(), &manifest)
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    f.commit()
}

/// A loaded model: the manifest and the tensors as f64.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub manifest: Manifest,
    pub pca_mean: Option<Vec<f64>>,
    /// `[n_components, n_features]` row-major.
    pub pca_components: Option<(Vec<f64>, usize, usize)>,
    /// `[n_clusters, dim]` row-major.
    pub cluster_centers: (Vec<f64>, usize, usize),
}

/// FNV-1a, 64 bits: the manifest's checksum of the tensors file (detects a torn save, not
/// tampering).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Loads a directory written by [`save_model`], checking the version and every shape.
///
/// # Errors
/// [`Error::Model`] when a file is missing, truncated, of another format version, or its
/// shapes disagree.
pub fn load_model(dir: &Path) -> Result<LoadedModel> {
    let bad = |m: String| Error::Model {
        path: dir.to_path_buf(),
        message: m,
    };
    // a save in progress finishes first: never its new tensors with the old manifest
    let lock = DirLock::shared(dir);
    let mtext =
        std::fs::read(dir.join("manifest.json")).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let bytes = std::fs::read(dir.join("model.safetensors"))
        .map_err(|e| bad(format!("model.safetensors: {e}")))?;
    drop(lock);
    parse_model(dir, &mtext, &bytes)
}

/// [`load_model`] on the two files' contents; `dir` names the model in errors. Never
/// panics, whatever the bytes (a fuzz target checks this).
///
/// # Errors
/// [`Error::Model`] as [`load_model`].
pub fn parse_model(dir: &Path, manifest: &[u8], bytes: &[u8]) -> Result<LoadedModel> {
    let bad = |m: String| Error::Model {
        path: dir.to_path_buf(),
        message: m,
    };
    let value: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(bad(format!(
            "format_version {version:?} is not supported (this build reads {FORMAT_VERSION})"
        )));
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| bad(format!("manifest.json: {e}")))?;
    if let Some(f) = manifest.files.get("model.safetensors") {
        let want_len = Some(f.bytes);
        let want_sum = Some(f.fnv1a64.as_str());
        let sum = format!("{:016x}", fnv1a64(bytes));
        if want_len != Some(bytes.len() as u64) || want_sum != Some(sum.as_str()) {
            return Err(bad(format!(
                "model.safetensors does not match manifest.json ({} bytes, checksum {sum}; the manifest says {} bytes, {}): the files come from different saves, or one was cut short",
                bytes.len(),
                want_len.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                want_sum.unwrap_or("?")
            )));
        }
    }
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("model.safetensors: {e}")))?;
    let read = |name: &str| -> Result<Option<(Vec<f64>, Vec<usize>)>> {
        let t = match st.tensor(name) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        let data = t.data();
        let v: Vec<f64> = match t.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            other => return Err(bad(format!("tensor {name} has dtype {other:?}"))),
        };
        Ok(Some((v, t.shape().to_vec())))
    };
    let (centers, cshape) = read("kmeans.cluster_centers")?
        .ok_or_else(|| bad("missing tensor kmeans.cluster_centers".into()))?;
    if cshape.len() != 2 || cshape[0] == 0 || cshape[1] == 0 {
        return Err(bad(format!("kmeans.cluster_centers has shape {cshape:?}")));
    }
    let mean = read("pca.mean")?;
    let comps = read("pca.components")?;
    let (pca_mean, pca_components) = match (mean, comps) {
        (None, None) => (None, None),
        (Some((m, ms)), Some((c, cs))) => {
            if ms.len() != 1 || ms[0] == 0 || cs.len() != 2 || cs[1] != ms[0] || cs[0] != cshape[1]
            {
                return Err(bad(format!(
                    "inconsistent shapes: pca.mean {ms:?}, pca.components {cs:?}, centers {cshape:?}"
                )));
            }
            (Some(m), Some((c, cs[0], cs[1])))
        }
        _ => {
            return Err(bad(
                "pca.mean and pca.components must both be present".into()
            ))
        }
    };
    Ok(LoadedModel {
        manifest,
        pca_mean,
        pca_components,
        cluster_centers: (centers, cshape[0], cshape[1]),
    })
}

/// Loads and checks a model directory written by [`save_pipeline`] (`embedcluster run
/// --model DIR`, Python's `ClusterModel.save`) as a pipeline in dtype `T`.
///
/// # Errors
/// [`Error::Model`] when a file is missing, truncated, of another format version, or
/// inconsistent (shapes, steps, calibration).
pub fn load_pipeline<T: Real>(dir: &Path) -> Result<FittedPipeline<T>> {
    pipeline_from_loaded(dir, load_model(dir)?)
}

/// The pipeline of a loaded model, checked; `dir` names it in errors.
///
/// # Errors
/// [`Error::Model`], as [`load_pipeline`].
pub fn pipeline_from_loaded<T: Real>(dir: &Path, m: LoadedModel) -> Result<FittedPipeline<T>> {
    let bad = |e: Error| Error::Model {
        path: dir.to_path_buf(),
        message: match e {
            Error::Parameter(p) => p.to_string(),
            other => other.to_string(),
        },
    };
    let (centers, k, dim) = m.cluster_centers;
    let pca = match (m.pca_mean, m.pca_components) {
        (Some(mean), Some((components, nc, _))) => {
            Some(Pca::from_parts(mean, components, nc, vec![], vec![], 0).map_err(bad)?)
        }
        _ => None,
    };
    let manifest = m.manifest;
    let n_features = match (
        &pca,
        manifest
            .steps
            .iter()
            .any(|s| matches!(s, Step::Matryoshka(_))),
    ) {
        (Some(p), _) => p.n_features(),
        (None, true) => manifest.n_features,
        (None, false) => dim,
    };
    let kmeans = KMeans::from_centers(
        centers.iter().map(|&v| T::from_f64(v)).collect(),
        k,
        manifest.metric,
    )
    .map_err(bad)?;
    FittedPipeline::new(
        manifest.steps,
        n_features,
        pca,
        kmeans,
        manifest.calibration,
    )
    .map_err(bad)
}
