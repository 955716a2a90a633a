//! Hyperparameters of a k-means fit, checked once before any work (as linfa's
//! `KMeansParams` and scikit-learn's `_check_params_vs_input`).

use super::Metric;
use crate::error::{Error, Result};

/// How initial centroids are chosen (each seeding then runs as [`KMeansParams::init_trials`]
/// says).
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Greedy k-means++ with `2 + ln k` local trials per centroid (Arthur and Vassilvitskii
    /// 2007; scikit-learn's variant).
    KMeansPlusPlus,
    /// k-means|| (Bahmani et al. 2012): `rounds` passes of oversampled D^2 sampling, then
    /// weighted k-means++ and weighted Lloyd on the drawn candidates (see
    /// [`super::kmeans_parallel`]).
    KMeansParallel(ParallelInit),
    /// `n_clusters` distinct rows drawn uniformly (scikit-learn's `"random"`).
    Random,
    /// Given centroids, `n_clusters x n_features` row-major (f64). Forces `n_init = 1` and
    /// `init_trials = 1`.
    Centroids(Vec<f64>),
}

impl Init {
    /// The name users give it: `k-means++`, `k-means||`, `random` or `array`.
    pub fn name(&self) -> &'static str {
        match self {
            Init::KMeansPlusPlus => "k-means++",
            Init::KMeansParallel(_) => "k-means||",
            Init::Random => "random",
            Init::Centroids(_) => "array",
        }
    }

    /// Parses `k-means++`, `k-means||` (with `parallel`'s parameters) or `random`.
    ///
    /// # Errors
    /// [`Error::Parameter`] for any other name.
    pub fn from_name(s: &str, parallel: ParallelInit) -> Result<Self> {
        match s {
            "k-means++" => Ok(Init::KMeansPlusPlus),
            "k-means||" => Ok(Init::KMeansParallel(parallel)),
            "random" => Ok(Init::Random),
            _ => Err(Error::param(
                "init",
                s,
                "must be 'k-means++', 'k-means||' or 'random'",
            )),
        }
    }
}

/// Parameters of k-means|| (names as Spark MLlib's `initSteps` and dask-ml's
/// `oversampling_factor`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParallelInit {
    /// Expected candidates drawn per round, as a multiple of `n_clusters` (`l = 2k` is the
    /// paper's and dask-ml's default).
    pub oversampling_factor: f64,
    /// Sampling rounds (passes over the data). The paper's analysis asks for `O(log psi)`
    /// rounds; its experiments (and ours, see BENCHMARKS.md) find 5 enough with `l = 2k`.
    pub rounds: usize,
}

impl Default for ParallelInit {
    fn default() -> Self {
        ParallelInit {
            oversampling_factor: 2.0,
            rounds: 5,
        }
    }
}

/// Default [`KMeansParams::init_trials`]: seedings screened on a sample.
pub const DEFAULT_INIT_TRIALS: usize = 16;
/// Sample rows per cluster of the automatic [`KMeansParams::init_size`].
pub const INIT_SIZE_PER_CLUSTER: usize = 400;
/// Smallest automatic [`KMeansParams::init_size`].
pub const MIN_INIT_SIZE: usize = 10_000;

/// Parameters of a k-means fit (names as scikit-learn's `KMeans`).
#[derive(Debug, Clone)]
pub struct KMeansParams {
    pub n_clusters: usize,
    pub metric: Metric,
    pub init: Init,
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub seed: u64,
    /// Seedings tried per restart on a uniform sample of `init_size` rows, each refined
    /// there by Lloyd to convergence; the one with the lowest objective on the sample starts
    /// Lloyd on all rows (the pattern of scikit-learn's `MiniBatchKMeans(n_init, init_size)`
    /// and FAISS's `nredo` on a sample). `1`: one seeding on all rows, no sample.
    pub init_trials: usize,
    /// Rows of that sample; `0`: `max(10_000, 400 * n_clusters)`, at most `n_samples`.
    pub init_size: usize,
    /// Whether Lloyd's assignment prunes centroids by a bound ([`super::Pruning`]); the
    /// labels and centroids are the same either way.
    pub pruning: super::Pruning,
}

impl KMeansParams {
    /// The sample size the screening uses for `n_samples` rows.
    pub fn init_sample_size(&self, n_samples: usize) -> usize {
        let s = if self.init_size == 0 {
            MIN_INIT_SIZE.max(INIT_SIZE_PER_CLUSTER.saturating_mul(self.n_clusters))
        } else {
            self.init_size
        };
        s.min(n_samples).max(self.n_clusters.min(n_samples))
    }
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            n_clusters: 8,
            metric: Metric::Euclidean,
            init: Init::KMeansPlusPlus,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            init_trials: DEFAULT_INIT_TRIALS,
            init_size: 0,
            pruning: super::Pruning::Auto,
        }
    }
}

impl KMeansParams {
    /// Checks the parameters against the data shape.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_clusters` is 0 or above `n_samples`, `n_init`,
    /// `init_trials`, `max_iter` or k-means||'s rounds is 0, its oversampling factor is not
    /// positive, `tol` is negative or not finite, or given centroids have the wrong
    /// shape or are not finite.
    pub fn check(&self, n_samples: usize, n_features: usize) -> Result<()> {
        self.metric.check_in(&[Metric::Euclidean, Metric::Cosine])?;
        if self.n_clusters < 1 {
            return Err(Error::param(
                "n_clusters",
                self.n_clusters,
                "must be at least 1",
            ));
        }
        if self.n_clusters > n_samples {
            return Err(Error::param(
                "n_clusters",
                self.n_clusters,
                format!("is larger than n_samples = {n_samples}"),
            ));
        }
        if self.n_init < 1 {
            return Err(Error::param("n_init", self.n_init, "must be at least 1"));
        }
        if self.max_iter < 1 {
            return Err(Error::param(
                "max_iter",
                self.max_iter,
                "must be at least 1",
            ));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(Error::param("tol", self.tol, "must be >= 0"));
        }
        if self.init_trials < 1 {
            return Err(Error::param(
                "init_trials",
                self.init_trials,
                "must be at least 1",
            ));
        }
        if let Init::KMeansParallel(p) = &self.init {
            if !(p.oversampling_factor > 0.0 && p.oversampling_factor.is_finite()) {
                return Err(Error::param(
                    "oversampling_factor",
                    p.oversampling_factor,
                    "must be > 0",
                ));
            }
            if p.rounds < 1 {
                return Err(Error::param("init_rounds", p.rounds, "must be at least 1"));
            }
        }
        if let Init::Centroids(c) = &self.init {
            if c.len() != self.n_clusters * n_features {
                return Err(Error::param_msg(
                    "init",
                    format!(
                        "init centroids have {} values, expected n_clusters x n_features = {} x {n_features}",
                        c.len(),
                        self.n_clusters
                    ),
                ));
            }
            if c.iter().any(|v| !v.is_finite()) {
                return Err(Error::param_msg("init", "init centroids must be finite"));
            }
        }
        Ok(())
    }
}
