//! `embedcluster sweep`: reduce once, then fit k-means for each k and score it, to choose
//! the number of clusters (the elbow of the objective, the peak of the silhouette, the low
//! of Davies-Bouldin).
//!
//! Stages: the reduction of [`crate::jobs::run`] (`pca_fit`, `pca_solve`, `transform`), then
//! one stage `k=K` per value. Peak memory: the reduced matrix (`n D s`) + k-means state for
//! the largest k (see [`crate::cluster`]) + the silhouette sample (`m D s`, default
//! `m = 10,000`) and its tiles. The silhouette sample is drawn once (seeded), so every k is
//! scored on the same rows.

use crate::cluster::{self, KMeansParams, Metric};
use crate::dtype::{DType, Real};
use crate::error::{Error, Result};
use crate::io::EmbeddingSource;
use crate::jobs::run::RunConfig;
use crate::linalg::Distance;
use crate::memory::{StageRecorder, StageReport};
use crate::metrics;
use crate::runtime::{Cancel, Progress, Runtime};
use rand::SeedableRng;

/// Parses `START:STOP[:STEP]` (inclusive of STOP) or a comma-separated list of k.
///
/// # Errors
/// [`Error::Parameter`] for malformed text, k = 0 or an empty range.
pub fn parse_ks(s: &str) -> Result<Vec<usize>> {
    let bad = || {
        Error::param(
            "n_clusters",
            format!("{s:?}"),
            "is not valid: expected START:STOP[:STEP] or K1,K2,...",
        )
    };
    let num = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
    let ks: Vec<usize> = if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        let (a, b, step) = match parts.as_slice() {
            [a, b] => (num(a)?, num(b)?, 1),
            [a, b, c] => (num(a)?, num(b)?, num(c)?),
            _ => return Err(bad()),
        };
        if step == 0 || a > b {
            return Err(bad());
        }
        (a..=b).step_by(step).collect()
    } else {
        s.split(',').map(num).collect::<Result<_>>()?
    };
    if ks.is_empty() || ks.contains(&0) {
        return Err(Error::param_msg("n_clusters", "every k must be at least 1"));
    }
    Ok(ks)
}

/// Parses run seeds: `START:STOP` (inclusive) or a comma-separated list.
///
/// # Errors
/// [`Error::Parameter`] for malformed text or an empty range.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>> {
    let bad = || {
        Error::param(
            "seeds",
            format!("{s:?}"),
            "is not valid: expected START:STOP or S1,S2,...",
        )
    };
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
    let v: Vec<u64> = match s.split_once(':') {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b || b - a > 10_000 {
                return Err(bad());
            }
            (a..=b).collect()
        }
        None => s.split(',').map(num).collect::<Result<_>>()?,
    };
    if v.is_empty() {
        return Err(bad());
    }
    Ok(v)
}

/// Everything `embedcluster sweep` takes: the run settings (input, reduction, metric,
/// k-means parameters; `n_clusters`, `output` and `model` are ignored) and the values of k.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub run: RunConfig,
    pub ks: Vec<usize>,
    /// Rows the silhouette is computed on (0: skip the silhouette).
    pub silhouette_sample: usize,
    /// More run seeds to fit each k with (`--seeds 0:4`): the row then reports the spread
    /// of the objective and ARI across `run.seed` and these. Empty: `run.seed` only.
    pub seeds: Vec<u64>,
}

pub use crate::metrics::Spread;

/// One k fitted at several seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeedSpread {
    pub seeds: Vec<u64>,
    pub objective: Spread,
    pub ari: Option<Spread>,
    pub fit_seconds: Spread,
}

/// One value of k.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepRow {
    pub k: usize,
    /// k-means objective (inertia; for cosine the sum of `1 - cos`).
    pub objective: f64,
    pub n_iter: usize,
    pub converged: bool,
    /// Mean silhouette on the sample (cosine distance for the cosine metric); `None` for k = 1.
    pub silhouette: Option<f64>,
    /// On all reduced rows; `None` for k = 1.
    pub davies_bouldin: Option<f64>,
    pub calinski_harabasz: Option<f64>,
    /// Against `--labels`, when given.
    pub ari: Option<f64>,
    pub fit_seconds: f64,
    /// Fit and scores.
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    /// Across seeds, with `seeds` (the other fields are those of the first seed).
    pub seed_spread: Option<SeedSpread>,
}

/// What a sweep did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepReport {
    pub input: String,
    pub dtype: DType,
    pub n_samples: usize,
    pub n_features: usize,
    pub n_components: usize,
    pub metric: Metric,
    pub reduce: String,
    pub silhouette_sample_size: usize,
    pub seed: u64,
    pub threads: usize,
    pub rows: Vec<SweepRow>,
    pub stages: Vec<StageReport>,
    pub peak_rss_bytes: u64,
    /// How the stage peaks were measured, and what they mean ([`crate::memory::StagePeaksInfo`]).
    pub stage_peaks: crate::memory::StagePeaksInfo,
}

/// Runs the sweep. See the module docs for stages and memory.
///
/// # Errors
/// Reader errors (file, row, column); [`Error::Parameter`] if a k exceeds the rows (checked
/// before any data is read).
pub fn sweep(cfg: &SweepConfig, rt: &Runtime) -> Result<SweepReport> {
    rt.install(|| sweep_on_pool(cfg, rt.progress, rt.cancel))
}

fn sweep_on_pool(
    cfg: &SweepConfig,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
) -> Result<SweepReport> {
    let mut rec = StageRecorder::new();
    let source = rec.stage("open", || {
        let s = EmbeddingSource::open_inputs(&cfg.run.inputs, &cfg.run.column)?;
        let n = s.n_samples() as u64;
        Ok::<_, Error>((s, n))
    })?;
    let max_k = *cfg
        .ks
        .iter()
        .max()
        .ok_or_else(|| Error::param_msg("n_clusters", "no k given"))?;
    let mut check = cfg.run.clone();
    check.n_clusters = max_k;
    crate::jobs::run::check_config(&check, &source)?;
    match source.dtype() {
        DType::Float32 => sweep_typed::<f32>(cfg, &source, rec, progress, cancel),
        DType::Float64 => sweep_typed::<f64>(cfg, &source, rec, progress, cancel),
    }
}

fn sweep_typed<T: Real>(
    cfg: &SweepConfig,
    source: &EmbeddingSource,
    mut rec: StageRecorder,
    progress: &dyn Progress,
    cancel: Cancel<'_>,
) -> Result<SweepReport> {
    let n = source.n_samples();
    let r = crate::jobs::run::reduce_source::<T>(&cfg.run, source, &mut rec, progress, cancel)?;
    let (reduced, dim) = (r.data, r.dim);
    if !r.skipped.is_empty() {
        return Err(Error::param(
            "on_invalid",
            "skip",
            "is not taken by the sweep",
        ));
    }
    let truth = match &cfg.run.labels_column {
        Some(_) => {
            let mut c = cfg.run.clone();
            c.output = None;
            crate::jobs::run::write_output(
                &c,
                source,
                &vec![0; n],
                &vec![0.0; n],
                None,
                progress,
                cancel,
            )?
        }
        None => None,
    };
    // The silhouette sample, drawn once.
    let m = cfg.silhouette_sample.min(n);
    let sample_idx: Vec<usize> = if m > 0 && m < n {
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.run.seed ^ 0x5111_0ee7);
        let mut v = rand::seq::index::sample(&mut rng, n, m).into_vec();
        v.sort_unstable();
        v
    } else {
        (0..m).collect()
    };
    let mut sample: Vec<T> = Vec::with_capacity(sample_idx.len() * dim);
    for &i in &sample_idx {
        sample.extend_from_slice(&reduced[i * dim..(i + 1) * dim]);
    }
    let sil_metric = match cfg.run.metric {
        Metric::Cosine => Distance::Cosine,
        _ => Distance::Euclidean,
    };
    let mut rows = Vec::new();
    for &k in &cfg.ks {
        progress.begin(&format!("k={k}"), None);
        let row = rec.stage(&format!("k={k}"), || {
            let t0 = std::time::Instant::now();
            let params = KMeansParams {
                n_clusters: k,
                ..cfg.run.kmeans_params()
            };
            let km = cluster::fit_cancellable(&params, &reduced, dim, cancel)?;
            let fit_seconds = t0.elapsed().as_secs_f64();
            let labels: Vec<i64> = km.labels.iter().map(|&l| l as i64).collect();
            let distinct = km.counts.iter().filter(|&&c| c > 0).count();
            let (mut sil, mut db, mut ch) = (None, None, None);
            if distinct >= 2 {
                let sl: Vec<i64> = sample_idx.iter().map(|&i| labels[i]).collect();
                let sd = sl.iter().collect::<std::collections::BTreeSet<_>>().len();
                if m > 0 && sd >= 2 && sd < sl.len() {
                    sil = Some(metrics::silhouette_score(
                        &sample, dim, &sl, sil_metric, None, 0,
                    )?);
                }
                if distinct < n {
                    db = Some(metrics::davies_bouldin_score(&reduced, dim, &labels)?);
                    ch = Some(metrics::calinski_harabasz_score(&reduced, dim, &labels)?);
                }
            }
            let ari = match &truth {
                Some(t) => Some(metrics::adjusted_rand_score(t, &labels)?),
                None => None,
            };
            let seed_spread = if cfg.seeds.iter().any(|&s| s != cfg.run.seed) {
                let mut seeds = vec![cfg.run.seed];
                seeds.extend(cfg.seeds.iter().copied().filter(|&s| s != cfg.run.seed));
                let (mut obj, mut aris, mut secs) = (
                    vec![km.inertia],
                    ari.into_iter().collect::<Vec<_>>(),
                    vec![fit_seconds],
                );
                for &seed in &seeds[1..] {
                    let t = std::time::Instant::now();
                    let other = cluster::fit_cancellable(
                        &KMeansParams {
                            seed,
                            ..params.clone()
                        },
                        &reduced,
                        dim,
                        cancel,
                    )?;
                    secs.push(t.elapsed().as_secs_f64());
                    obj.push(other.inertia);
                    if let Some(t) = &truth {
                        let l: Vec<i64> = other.labels.iter().map(|&l| l as i64).collect();
                        aris.push(metrics::adjusted_rand_score(t, &l)?);
                    }
                }
                Some(SeedSpread {
                    seeds,
                    objective: Spread::of(&obj).expect("one seed"),
                    ari: Spread::of(&aris),
                    fit_seconds: Spread::of(&secs).expect("one seed"),
                })
            } else {
                None
            };
            Ok::<_, Error>((
                SweepRow {
                    k,
                    objective: km.inertia,
                    n_iter: km.n_iter,
                    converged: km.converged,
                    silhouette: sil,
                    davies_bouldin: db,
                    calinski_harabasz: ch,
                    ari,
                    fit_seconds,
                    seconds: t0.elapsed().as_secs_f64(),
                    peak_rss_bytes: 0,
                    seed_spread,
                },
                n as u64,
            ))
        })?;
        progress.end();
        let mut row = row;
        let st = rec.stages().last().expect("stage recorded");
        row.peak_rss_bytes = st.peak_rss_bytes;
        rows.push(row);
    }
    Ok(SweepReport {
        input: crate::io::dataset::display(&cfg.run.inputs),
        dtype: T::DTYPE,
        n_samples: n,
        n_features: source.n_features(),
        n_components: dim,
        metric: cfg.run.metric,
        reduce: match cfg.run.reduce {
            crate::pipeline::Reduce::None => "none".into(),
            crate::pipeline::Reduce::Pca(k) => format!("pca:{k}"),
            crate::pipeline::Reduce::Matryoshka(k) => format!("matryoshka:{k}"),
        },
        silhouette_sample_size: m,
        seed: cfg.run.seed,
        threads: rayon::current_num_threads(),
        rows,
        peak_rss_bytes: rec.peak_rss_bytes(),
        stage_peaks: rec.stage_peaks(),
        stages: rec.stages().to_vec(),
    })
}

/// The sweep table as CSV (one row per k), the columns of [`SweepRow`].
pub fn to_csv(r: &SweepReport) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut s = String::from(
        "k,objective,n_iter,converged,silhouette,davies_bouldin,calinski_harabasz,ari,fit_seconds,seconds,peak_rss_bytes\n",
    );
    for row in &r.rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{:.6},{:.6},{}\n",
            row.k,
            row.objective,
            row.n_iter,
            row.converged,
            opt(row.silhouette),
            opt(row.davies_bouldin),
            opt(row.calinski_harabasz),
            opt(row.ari),
            row.fit_seconds,
            row.seconds,
            row.peak_rss_bytes
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_lists() {
        assert_eq!(parse_ks("2:10:2").unwrap(), vec![2, 4, 6, 8, 10]);
        assert_eq!(parse_ks("10:100:10").unwrap().len(), 10);
        assert_eq!(parse_ks("3:5").unwrap(), vec![3, 4, 5]);
        assert_eq!(parse_ks("5,7, 9").unwrap(), vec![5, 7, 9]);
        for bad in ["", "0:3", "5:2", "1:4:0", "a:b", "1:2:3:4"] {
            assert!(parse_ks(bad).is_err(), "{bad}");
        }
    }
}
