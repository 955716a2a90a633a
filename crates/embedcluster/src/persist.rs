//! Saved models: safetensors tensors plus a JSON manifest, written atomically.
//!
//! A model directory holds `model.safetensors` (tensors `pca.mean` f64 `[d]`,
//! `pca.components` f64 `[D, d]`, `kmeans.cluster_centers` f32/f64 `[k, D]`) and
//! `manifest.json` (format version, preprocessing steps in order, metric, shapes, dtypes,
//! training row count, every parameter of the run). No pickle: safe to load untrusted files.

use crate::decomposition::Pca;
use crate::error::{Error, Result};
use crate::io::AtomicFile;
use crate::real::Real;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Version of the on-disk model format; bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

fn to_bytes<T: Real>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(v));
    for &x in v {
        match T::DTYPE {
            crate::real::DType::Float32 => out.extend((x.to_f64() as f32).to_le_bytes()),
            crate::real::DType::Float64 => out.extend(x.to_f64().to_le_bytes()),
        }
    }
    out
}

fn dtype_of<T: Real>() -> Dtype {
    match T::DTYPE {
        crate::real::DType::Float32 => Dtype::F32,
        crate::real::DType::Float64 => Dtype::F64,
    }
}

/// Writes `dir/model.safetensors` and `dir/manifest.json` (creating `dir`). `manifest` is
/// merged into the manifest's top level next to `format_version` and `shapes`.
pub fn save_model<T: Real>(
    dir: &Path,
    pca: Option<&Pca>,
    centers: &[T],
    n_clusters: usize,
    manifest: serde_json::Value,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = Vec::new();
    if let Some(p) = pca {
        tensors.push((
            "pca.mean".into(),
            to_bytes(&p.mean),
            Dtype::F64,
            vec![p.n_features],
        ));
        tensors.push((
            "pca.components".into(),
            to_bytes(&p.components),
            Dtype::F64,
            vec![p.n_components, p.n_features],
        ));
    }
    let dim = centers.len() / n_clusters.max(1);
    tensors.push((
        "kmeans.cluster_centers".into(),
        to_bytes(centers),
        dtype_of::<T>(),
        vec![n_clusters, dim],
    ));
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, bytes, dt, shape)| {
            (
                name.clone(),
                TensorView::new(*dt, shape.clone(), bytes).expect("shape matches bytes"),
            )
        })
        .collect();
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
    // The manifest is written last and names the tensors file's size and checksum, so a
    // directory left by an interrupted save (new tensors, old manifest) is refused on load.

    let mut shapes = HashMap::new();
    for (name, _, dt, shape) in &tensors {
        shapes.insert(
            name.clone(),
            serde_json::json!({"shape": shape, "dtype": format!("{dt:?}")}),
        );
    }
    let mut m = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "tensors": shapes,
        "files": {"model.safetensors": {"bytes": bytes.len(), "fnv1a64": format!("{:016x}", fnv1a64(&bytes))}},
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (m.as_object_mut(), manifest) {
        for (k, v) in extra {
            obj.insert(k, v);
        }
    }
    let path = dir.join("manifest.json");
    let mut f = AtomicFile::create(&path)?;
    serde_json::to_writer_pretty(f.file(), &m)
        .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
    f.commit()
}

/// A loaded model: the manifest and the tensors as f64.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub manifest: serde_json::Value,
    pub pca_mean: Option<Vec<f64>>,
    /// `[n_components, n_features]` row-major.
    pub pca_components: Option<(Vec<f64>, usize, usize)>,
    /// `[n_clusters, dim]` row-major.
    pub cluster_centers: (Vec<f64>, usize, usize),
}

/// FNV-1a, 64 bits: the manifest's checksum of the tensors file (detects a torn save, not
/// tampering).
fn fnv1a64(bytes: &[u8]) -> u64 {
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
    let mtext =
        std::fs::read(dir.join("manifest.json")).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let bytes = std::fs::read(dir.join("model.safetensors"))
        .map_err(|e| bad(format!("model.safetensors: {e}")))?;
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
    let manifest: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let version = manifest.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        return Err(bad(format!(
            "format_version {version:?} is not supported (this build reads {FORMAT_VERSION})"
        )));
    }
    if let Some(f) = manifest.pointer("/files/model.safetensors") {
        let want_len = f.get("bytes").and_then(|v| v.as_u64());
        let want_sum = f.get("fnv1a64").and_then(|v| v.as_str());
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
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
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
