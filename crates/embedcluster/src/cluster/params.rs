//! Hyperparameters of a k-means fit, checked once before any work (as linfa's
//! `KMeansParams` and scikit-learn's `_check_params_vs_input`).

use super::Metric;
use crate::error::{Error, Result};

/// How initial centroids are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    /// Greedy k-means++ with `2 + ln k` local trials per centroid (as scikit-learn).
    KMeansPlusPlus,
    /// Given centroids, `n_clusters x n_features` row-major (f64). Forces `n_init = 1`.
    Centroids(Vec<f64>),
}

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
        }
    }
}

impl KMeansParams {
    /// Checks the parameters against the data shape.
    ///
    /// # Errors
    /// [`Error::Parameter`] when `n_clusters` is 0 or above `n_samples`, `n_init` or
    /// `max_iter` is 0, `tol` is negative or not finite, or given centroids have the wrong
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
