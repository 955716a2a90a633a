//! k-means (Euclidean; Lloyd 1982) and spherical k-means (cosine; Dhillon and Modha 2001)
//! with greedy k-means++ (Arthur and Vassilvitskii 2007), k-means|| (Bahmani et al. 2012)
//! or random initialization.
//!
//! # Initialization (the default is robust to the seed)
//! By default each restart screens [`DEFAULT_INIT_TRIALS`] (16) k-means++ seedings on one
//! uniform sample of `max(10_000, 400 k)` rows: each is refined there by Lloyd to
//! convergence, and the one with the lowest objective on the sample starts Lloyd on all
//! rows (the pattern of scikit-learn's `MiniBatchKMeans(n_init, init_size)` and FAISS's
//! `nredo`, here only for the start). Measured (BENCHMARKS.md, "Initialization"): on
//! 312,000 x 128 with 50 topics, one k-means++ start gives ARI 0.75 to 0.86 across seeds; the
//! screened start stays within a few hundredths of `n_init = 10` at every seed, at about the
//! cost of one start, since Lloyd from a good start converges in fewer iterations and the
//! full-data k-means++ pass is skipped. `init_trials = 1` restores one seeding on all rows.
//!
//! # Assignment
//! Rows are split into at most [`MAX_CHUNKS`] chunks whose boundaries depend only on
//! `n_samples`; chunks run in parallel (rayon) and each walks its rows in tiles of
//! [`TILE_ROWS`]: one GEMM `X_tile C^T` (faer, sequential inside the task) into a
//! `TILE_ROWS x k` buffer, then a fused argmin over that buffer, never an `n x k` matrix.
//! Squared distances are `|x|^2 - 2 x.c + |c|^2` (clamped at 0); for the cosine metric rows
//! and centroids are unit vectors and the best centroid maximizes `x.c`.
//!
//! # Update
//! Each chunk accumulates its members' sums in f64 and its counts, in row order; chunk
//! results are reduced in chunk order. Since neither the chunks nor the tiles depend on the
//! number of threads, the same seed gives the same labels and centroids, bit for bit, with
//! any thread count. Empty clusters are re-seeded from the points farthest from their
//! centroid (as scikit-learn). Euclidean centroids are member means; spherical centroids are
//! the normalized member sums.
//!
//! # Stopping
//! After `max_iter` Lloyd iterations, when no label changes, or when the squared centroid
//! shift `sum_j |c_j' - c_j|^2` is at most `tol * mean(var(X, axis=0))` (scikit-learn's
//! definition of a relative tolerance); in the last case a final assignment makes the labels
//! consistent with the returned centroids. `n_init` restarts keep the lowest objective.
//!
//! # Objective
//! Euclidean: inertia `sum_i |x_i - c_{l_i}|^2`. Cosine: `sum_i (1 - cos(x_i, c_{l_i}))`,
//! i.e. half the inertia on the unit sphere. Both decrease at every Lloyd iteration.
//!
//! # Peak memory
//! Data (`n * d * s`, caller's) + labels (`4 n`) + distances (`s n`) + row norms (`s n`) +
//! centroids (`2 * k * d * s`) + chunk accumulators (`MAX_CHUNKS * k * (d + 1) * 8`) +
//! per-thread tiles (`TILE_ROWS * k * s`); k-means++ adds `(2 + ln k) * n * s + 8 n`.

//!
//! # Example
//! ```
//! use embedcluster::cluster::{fit, Init, KMeansParams, Metric};
//! let x = [0.0f64, 0.1, 0.2, 5.0, 5.1, 5.2]; // 6 rows of 1
//! let params = KMeansParams {
//!     n_clusters: 2,
//!     metric: Metric::Euclidean,
//!     init: Init::Centroids(vec![0.0, 1.0]),
//!     ..Default::default()
//! };
//! let km = fit(&params, &x, 1).unwrap();
//! assert_eq!(km.labels(), &[0, 0, 0, 1, 1, 1]);
//! assert!((km.cluster_centers()[1] - 5.1).abs() < 1e-12);
//! let (labels, _) = km.predict(&[4.0]).unwrap();
//! assert_eq!(labels, vec![1]);
//! ```

mod assign;
mod init;
mod lloyd;
mod minibatch;
mod model;
mod parallel;
mod params;
mod prune;

pub use crate::linalg::Distance as Metric;
pub use assign::{MAX_CHUNKS, TILE_ROWS};
pub use lloyd::{
    farthest_rows, fit, fit_cancellable, fit_weighted, initial_centroids, label_hash, lloyd_drive,
    merge_farthest, restart_seed, tol_from_moments, Candidate, LloydData, LloydOutcome, LloydState,
};
pub use minibatch::{
    fit_minibatch, fit_minibatch_weighted, MiniBatchParams, MiniBatchState, DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_NO_IMPROVEMENT, DEFAULT_REASSIGNMENT_RATIO,
};
pub use model::{confidence_from_distances, Assignment, KMeans};
pub use parallel::{
    kmeans_parallel_drive, parallel_cost, parallel_draw, parallel_first, parallel_weights, row_key,
    Cost, ParallelData, COST_SCALE,
};
pub use params::{
    Init, KMeansParams, ParallelInit, DEFAULT_INIT_TRIALS, INIT_SIZE_PER_CLUSTER, MIN_INIT_SIZE,
};
pub use prune::{
    PruneCounts, Pruning, PruningSummary, AUTO_MIN_CLUSTERS, BASIS_SAMPLE_ROWS,
    TILE_VALUES as PRUNE_TILE_VALUES,
};
