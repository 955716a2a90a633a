//! Clustering scores with scikit-learn's names and definitions (`sklearn.metrics`).
//!
//! # External scores (two labelings of the same rows)
//! [`adjusted_rand_score`] (Hubert and Arabie 1985), [`mutual_info_score`],
//! [`normalized_mutual_info_score`], [`adjusted_mutual_info_score`] (Vinh, Epps and
//! Bailey 2010) and [`homogeneity_completeness_v_measure`] (Rosenberg and Hirschberg 2007)
//! take any `i64` ids and build a sparse contingency table: memory `O(distinct pairs)`,
//! never `n x n`. Entropies and mutual information use the natural logarithm;
//! normalizations use the arithmetic mean, scikit-learn's default `average_method`.
//!
//! # Internal scores (data and labels)
//! * [`silhouette_score`] (Rousseeuw 1987): exact, `O(n^2 d)` time but `O(tile)` memory.
//!   Rows are visited in label order through a gathered `SIL_BASE_TILE x d` tile, so the
//!   per-cluster distance sums of a query tile are contiguous runs; nothing of size `n x n`
//!   or `n x k` is held. Peak memory: labels and order (`12 n` bytes) + per thread
//!   `SIL_QUERY_TILE x (SIL_BASE_TILE + k)` values + the gathered tile. `sample_size`
//!   scores a seeded uniform sample of rows (without replacement) instead.
//! * [`davies_bouldin_score`] (Davies and Bouldin 1979) and [`calinski_harabasz_score`]
//!   (Calinski and Harabasz 1974) from two streaming passes with mergeable states:
//!   [`CentroidState`] (per-cluster sums and counts) then [`DispersionState`] (per-cluster
//!   sums of distances and squared distances to the centroid). Memory `k d 8` bytes.
//!
//! Every function returns [`Error::Parameter`] for labelings of different lengths, and the
//! internal scores require `2 <= n_labels <= n_samples - 1` as scikit-learn does.

use crate::dtype::Real;
use crate::error::{Error, Result};
use crate::linalg::{gemm_nt, Distance};
use faer::Par;
use rand::SeedableRng;
use rayon::prelude::*;
use std::collections::HashMap;

fn check_same_len(a: usize, b: usize, what: &str) -> Result<()> {
    if a != b {
        return Err(Error::param_msg(
            "labels",
            format!("{what} have different lengths: {a} and {b}"),
        ));
    }
    Ok(())
}

/// Dense codes `0..n_labels` in sorted order of the distinct ids (scikit-learn's
/// `LabelEncoder`), and the number of distinct ids.
pub fn encode_labels(labels: &[i64]) -> (Vec<u32>, usize) {
    let mut uniq: Vec<i64> = labels.to_vec();
    uniq.sort_unstable();
    uniq.dedup();
    let map: HashMap<i64, u32> = uniq
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i as u32))
        .collect();
    (labels.iter().map(|v| map[v]).collect(), uniq.len())
}

/// Sparse contingency table of two labelings, entries ordered by (row code, column code).
struct Contingency {
    n: u64,
    /// `(row, col, count)` of nonzero cells.
    cells: Vec<(u32, u32, u64)>,
    rows: Vec<u64>,
    cols: Vec<u64>,
}

fn contingency(a: &[i64], b: &[i64]) -> Result<Contingency> {
    check_same_len(a.len(), b.len(), "labels_true and labels_pred")?;
    let (ca, ka) = encode_labels(a);
    let (cb, kb) = encode_labels(b);
    let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
    let mut rows = vec![0u64; ka];
    let mut cols = vec![0u64; kb];
    for (&x, &y) in ca.iter().zip(&cb) {
        *cells.entry((x, y)).or_default() += 1;
        rows[x as usize] += 1;
        cols[y as usize] += 1;
    }
    let mut cells: Vec<(u32, u32, u64)> = cells.into_iter().map(|((i, j), c)| (i, j, c)).collect();
    cells.sort_unstable();
    Ok(Contingency {
        n: a.len() as u64,
        cells,
        rows,
        cols,
    })
}

/// Entropy (natural log) of a labeling given its class counts; 0 for one class.
fn entropy_counts(counts: &[u64]) -> f64 {
    let pi: Vec<f64> = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64)
        .collect();
    if pi.len() <= 1 {
        return 0.0;
    }
    let sum: f64 = pi.iter().sum();
    let ls = sum.ln();
    -pi.iter().map(|&p| (p / sum) * (p.ln() - ls)).sum::<f64>()
}

fn mutual_info(c: &Contingency) -> f64 {
    if c.rows.len() == 1 || c.cols.len() == 1 {
        return 0.0;
    }
    let total = c.n as f64;
    let (ls_rows, ls_cols) = (total.ln(), total.ln());
    let mut mi = 0.0;
    for &(i, j, nij) in &c.cells {
        let nm = nij as f64 / total;
        let outer = (c.rows[i as usize] as f64) * (c.cols[j as usize] as f64);
        let v = nm * ((nij as f64).ln() - total.ln()) + nm * (-outer.ln() + ls_rows + ls_cols);
        if v.abs() >= f64::EPSILON {
            mi += v;
        }
    }
    mi.max(0.0)
}

/// Adjusted Rand index, as `sklearn.metrics.adjusted_rand_score` (from the pair confusion
/// matrix in exact integer arithmetic). 1 for identical partitions, about 0 for independent
/// ones, and 1 when both are trivial in the same way.
///
/// # Example
/// ```
/// use embedcluster::metrics::adjusted_rand_score;
/// // the same partition under other names
/// assert_eq!(adjusted_rand_score(&[0, 0, 1, 1], &[5, 5, 3, 3]).unwrap(), 1.0);
/// assert!(adjusted_rand_score(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap() < 0.0);
/// assert!(adjusted_rand_score(&[0, 1], &[0]).is_err()); // different lengths
/// ```
///
/// # Errors
/// [`crate::Error::Parameter`] when the labelings have different lengths.
pub fn adjusted_rand_score(labels_true: &[i64], labels_pred: &[i64]) -> Result<f64> {
    let c = contingency(labels_true, labels_pred)?;
    let n = c.n as i128;
    let sum_squares: i128 = c
        .cells
        .iter()
        .map(|&(_, _, v)| (v as i128) * (v as i128))
        .sum();
    let c11 = sum_squares - n;
    let c01: i128 = c
        .cells
        .iter()
        .map(|&(_, j, v)| v as i128 * c.cols[j as usize] as i128)
        .sum::<i128>()
        - sum_squares;
    let c10: i128 = c
        .cells
        .iter()
        .map(|&(i, _, v)| v as i128 * c.rows[i as usize] as i128)
        .sum::<i128>()
        - sum_squares;
    let c00 = n * n - c01 - c10 - sum_squares;
    let (tn, fp, fnn, tp) = (c00, c01, c10, c11);
    if fnn == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2 * (tp * tn - fnn * fp);
    let den = (tp + fnn) * (fnn + tn) + (tp + fp) * (fp + tn);
    Ok(num as f64 / den as f64)
}

/// Mutual information (natural log), as `sklearn.metrics.mutual_info_score`.
pub fn mutual_info_score(labels_true: &[i64], labels_pred: &[i64]) -> Result<f64> {
    Ok(mutual_info(&contingency(labels_true, labels_pred)?))
}

/// Normalized mutual information (arithmetic mean of the entropies), as
/// `sklearn.metrics.normalized_mutual_info_score`.
pub fn normalized_mutual_info_score(labels_true: &[i64], labels_pred: &[i64]) -> Result<f64> {
    let c = contingency(labels_true, labels_pred)?;
    if c.rows.len() == c.cols.len() && c.rows.len() <= 1 {
        return Ok(1.0);
    }
    let mi = mutual_info(&c);
    if mi == 0.0 {
        return Ok(0.0);
    }
    let norm = (entropy_counts(&c.rows) + entropy_counts(&c.cols)) / 2.0;
    Ok(mi / norm)
}

/// `ln(m!)`: exact sums below 256, Stirling's series above (relative error < 1e-16).
fn ln_factorial_table(max: u64) -> impl Fn(u64) -> f64 {
    let small: Vec<f64> = std::iter::once(0.0)
        .chain((1..256u64).scan(0.0f64, |acc, i| {
            *acc += (i as f64).ln();
            Some(*acc)
        }))
        .collect();
    let _ = max;
    move |m: u64| {
        if (m as usize) < small.len() {
            small[m as usize]
        } else {
            let x = m as f64 + 1.0; // ln Gamma(x)
            let x2 = x * x;
            (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x)
                - 1.0 / (360.0 * x * x2)
                + 1.0 / (1260.0 * x2 * x2 * x)
                - 1.0 / (1680.0 * x2 * x2 * x2 * x)
        }
    }
}

/// Expected mutual information of two labelings with the given class sizes under the
/// hypergeometric model (Vinh, Epps and Bailey 2010), as scikit-learn computes it.
fn expected_mutual_info(rows: &[u64], cols: &[u64], n: u64) -> f64 {
    if rows.len() == 1 || cols.len() == 1 {
        return 0.0;
    }
    let lf = ln_factorial_table(n);
    let nf = n as f64;
    let ln_n = nf.ln();
    let mut emi = 0.0;
    for &a in rows {
        for &b in cols {
            let start = 1.max((a + b).saturating_sub(n));
            let end = a.min(b);
            let base = lf(a) + lf(b) + lf(n - a) + lf(n - b) - lf(n);
            let (la, lb) = ((a as f64).ln(), (b as f64).ln());
            for nij in start..=end {
                let term1 = nij as f64 / nf;
                let term2 = ln_n + (nij as f64).ln() - la - lb;
                let gln = base - lf(nij) - lf(a - nij) - lf(b - nij) - lf(n - a - b + nij);
                emi += term1 * term2 * gln.exp();
            }
        }
    }
    emi
}

/// Adjusted mutual information (arithmetic normalization), as
/// `sklearn.metrics.adjusted_mutual_info_score`. Time `O(sum_ij min(a_i, b_j))`.
pub fn adjusted_mutual_info_score(labels_true: &[i64], labels_pred: &[i64]) -> Result<f64> {
    let c = contingency(labels_true, labels_pred)?;
    if c.rows.len() == c.cols.len() && c.rows.len() <= 1 {
        return Ok(1.0);
    }
    let mi = mutual_info(&c);
    let emi = expected_mutual_info(&c.rows, &c.cols, c.n);
    let norm = (entropy_counts(&c.rows) + entropy_counts(&c.cols)) / 2.0;
    let mut den = norm - emi;
    if den < 0.0 {
        den = den.min(-f64::EPSILON);
    } else {
        den = den.max(f64::EPSILON);
    }
    Ok((mi - emi) / den)
}

/// `(homogeneity, completeness, v_measure)` with `beta = 1`, as
/// `sklearn.metrics.homogeneity_completeness_v_measure`.
pub fn homogeneity_completeness_v_measure(
    labels_true: &[i64],
    labels_pred: &[i64],
) -> Result<(f64, f64, f64)> {
    if labels_true.is_empty() && labels_pred.is_empty() {
        return Ok((1.0, 1.0, 1.0));
    }
    let c = contingency(labels_true, labels_pred)?;
    let (hc, hk) = (entropy_counts(&c.rows), entropy_counts(&c.cols));
    let mi = mutual_info(&c);
    let h = if hc != 0.0 { mi / hc } else { 1.0 };
    let comp = if hk != 0.0 { mi / hk } else { 1.0 };
    let v = if h + comp == 0.0 {
        0.0
    } else {
        2.0 * h * comp / (h + comp)
    };
    Ok((h, comp, v))
}

fn check_number_of_labels(n_labels: usize, n_samples: usize) -> Result<()> {
    if !(n_labels > 1 && n_labels < n_samples) {
        return Err(Error::param_msg(
            "labels",
            format!(
                "number of labels is {n_labels}; valid values are 2 to n_samples - 1 ({}) inclusive",
                n_samples.saturating_sub(1)
            ),
        ));
    }
    Ok(())
}

fn check_data<T>(x: &[T], d: usize, labels: &[i64]) -> Result<usize> {
    if d == 0 || !x.len().is_multiple_of(d) {
        return Err(Error::param_msg(
            "X",
            format!(
                "data of {} values is not a multiple of n_features = {d}",
                x.len()
            ),
        ));
    }
    let n = x.len() / d;
    check_same_len(n, labels.len(), "X rows and labels")?;
    Ok(n)
}

/// Query rows per silhouette task.
pub const SIL_QUERY_TILE: usize = 256;
/// Base rows per gathered silhouette tile.
pub const SIL_BASE_TILE: usize = 1024;

/// Sum in f64 with eight independent lanes (so that it vectorizes), then the lanes in order.
#[inline]
fn sum_f64<T: Real>(v: &[T]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l].to_f64();
        }
    }
    let mut total = acc.iter().sum::<f64>();
    for &x in rest {
        total += x.to_f64();
    }
    total
}

/// Silhouette coefficient of each row, as `sklearn.metrics.silhouette_samples`:
/// `(b - a) / max(a, b)` with `a` the mean distance to the other members of the row's
/// cluster and `b` the smallest mean distance to another cluster; 0 for rows of clusters
/// of size 1 (and where `a = b = 0`). Distances are computed blockwise from
/// `|x|^2 + |y|^2 - 2 x.y` in `T` and summed in f64; a row's distance to itself is 0.
///
/// # Errors
/// [`Error::Parameter`] for mismatched shapes, fewer than 2 or more than `n - 1` labels,
/// or (cosine) an all-zero row.
pub fn silhouette_samples<T: Real>(
    x: &[T],
    d: usize,
    labels: &[i64],
    metric: Distance,
) -> Result<Vec<f64>> {
    metric.check_in(&[Distance::Euclidean, Distance::SqEuclidean, Distance::Cosine])?;
    let n = check_data(x, d, labels)?;
    let (codes, k) = encode_labels(labels);
    check_number_of_labels(k, n)?;
    let mut norms = Vec::new();
    crate::linalg::row_sq_norms(x, d, &mut norms);
    let inv_norms: Vec<T> = if metric == Distance::Cosine {
        if let Some(i) = norms.iter().position(|&v| v <= T::ZERO) {
            return Err(Error::param_msg(
                "X",
                format!("row {i} is all zeros: its cosine distance is undefined"),
            ));
        }
        norms.iter().map(|&v| T::ONE / v.sqrt()).collect()
    } else {
        Vec::new()
    };
    // Rows in label order; run boundaries of each cluster.
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&i| (codes[i as usize], i));
    let mut counts = vec![0u64; k];
    for &c in &codes {
        counts[c as usize] += 1;
    }
    let two = T::from_f64(2.0);
    let mut out = vec![0.0f64; n];
    out.par_chunks_mut(SIL_QUERY_TILE)
        .enumerate()
        .for_each(|(ti, out)| {
            let q0 = ti * SIL_QUERY_TILE;
            let m = out.len();
            let qx = &x[q0 * d..(q0 + m) * d];
            let mut gathered = vec![T::ZERO; SIL_BASE_TILE * d];
            let mut tile = vec![T::ZERO; m * SIL_BASE_TILE];
            let mut tile_norms = [T::ZERO; SIL_BASE_TILE];
            let mut segments: Vec<(usize, usize, usize)> = Vec::new();
            let mut sums = vec![0.0f64; m * k];
            let mut b0 = 0;
            while b0 < n {
                let nb = SIL_BASE_TILE.min(n - b0);
                let idx = &order[b0..b0 + nb];
                // Gather the tile's rows, norms and runs of equal cluster (shared by all
                // query rows of this task).
                segments.clear();
                for (r, &i) in idx.iter().enumerate() {
                    let i = i as usize;
                    gathered[r * d..(r + 1) * d].copy_from_slice(&x[i * d..(i + 1) * d]);
                    tile_norms[r] = if metric == Distance::Cosine {
                        inv_norms[i]
                    } else {
                        norms[i]
                    };
                    let c = codes[i] as usize;
                    match segments.last_mut() {
                        Some(seg) if seg.0 == c => seg.2 = r + 1,
                        _ => segments.push((c, r, r + 1)),
                    }
                }
                let tn = &tile_norms[..nb];
                let t = &mut tile[..m * nb];
                gemm_nt(
                    t,
                    qx,
                    &gathered[..nb * d],
                    m,
                    nb,
                    d,
                    T::ONE,
                    false,
                    Par::Seq,
                );
                for r in 0..m {
                    let qi = q0 + r;
                    let row = &mut t[r * nb..(r + 1) * nb];
                    // distances in place (branch-free loops that vectorize)
                    match metric {
                        Distance::Euclidean | Distance::SqEuclidean => {
                            let qn = norms[qi];
                            for (v, &bn) in row.iter_mut().zip(tn) {
                                let s = qn + bn - two * *v;
                                *v = if s > T::ZERO { s } else { T::ZERO };
                            }
                            if metric == Distance::Euclidean {
                                for v in row.iter_mut() {
                                    *v = v.sqrt();
                                }
                            }
                        }
                        // (the inner product was refused above)
                        Distance::Cosine | Distance::InnerProduct => {
                            let qn = inv_norms[qi];
                            for (v, &bn) in row.iter_mut().zip(tn) {
                                let s = T::ONE - *v * qn * bn;
                                *v = if s > T::ZERO { s } else { T::ZERO };
                            }
                        }
                    }
                    // the row itself contributes exactly 0
                    if let Ok(p) = idx
                        .binary_search_by_key(&(codes[qi], qi as u32), |&i| (codes[i as usize], i))
                    {
                        row[p] = T::ZERO;
                    }
                    let s = &mut sums[r * k..(r + 1) * k];
                    for &(c, a, e) in &segments {
                        s[c] += sum_f64(&row[a..e]);
                    }
                }
                b0 += nb;
            }
            for r in 0..m {
                let qi = q0 + r;
                let own = codes[qi] as usize;
                let s = &sums[r * k..(r + 1) * k];
                if counts[own] <= 1 {
                    out[r] = 0.0;
                    continue;
                }
                let a = s[own] / (counts[own] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != own)
                    .map(|c| s[c] / counts[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let den = a.max(b);
                out[r] = if den > 0.0 { (b - a) / den } else { 0.0 };
            }
        });
    Ok(out)
}

/// Mean silhouette coefficient, as `sklearn.metrics.silhouette_score`; with
/// `sample_size`, over a uniform sample of that many rows drawn without replacement
/// with `seed` (the sample differs from scikit-learn's, whose RNG is numpy's; the Python
/// package draws scikit-learn's exact sample). See [`silhouette_samples`].
pub fn silhouette_score<T: Real>(
    x: &[T],
    d: usize,
    labels: &[i64],
    metric: Distance,
    sample_size: Option<usize>,
    seed: u64,
) -> Result<f64> {
    let n = check_data(x, d, labels)?;
    let s = match sample_size {
        Some(m) if m < n => {
            if m == 0 {
                return Err(Error::param("sample_size", 0, "must be at least 1"));
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut idx = rand::seq::index::sample(&mut rng, n, m).into_vec();
            idx.sort_unstable();
            let mut xs = Vec::with_capacity(m * d);
            let mut ls = Vec::with_capacity(m);
            for &i in &idx {
                xs.extend_from_slice(&x[i * d..(i + 1) * d]);
                ls.push(labels[i]);
            }
            silhouette_samples(&xs, d, &ls, metric)?
        }
        _ => silhouette_samples(x, d, labels, metric)?,
    };
    Ok(s.iter().sum::<f64>() / s.len() as f64)
}

/// Pass 1 of the dispersion scores: per-cluster sums (f64) and counts over dense codes.
#[derive(Debug, Clone, PartialEq)]
pub struct CentroidState {
    pub n_features: usize,
    pub sums: Vec<f64>,
    pub counts: Vec<u64>,
}

impl CentroidState {
    /// Empty state for `n_labels` clusters of `d` features.
    pub fn new(n_labels: usize, d: usize) -> Self {
        CentroidState {
            n_features: d,
            sums: vec![0.0; n_labels * d],
            counts: vec![0; n_labels],
        }
    }
    /// Adds rows `x` (`rows x d`) with dense cluster codes `codes`.
    pub fn partial<T: Real>(&mut self, x: &[T], codes: &[u32]) {
        let d = self.n_features;
        for (row, &c) in x.chunks_exact(d).zip(codes) {
            let c = c as usize;
            self.counts[c] += 1;
            for (s, &v) in self.sums[c * d..(c + 1) * d].iter_mut().zip(row) {
                *s += v.to_f64();
            }
        }
    }
    /// Folds another state (same clusters) into this one.
    pub fn merge(&mut self, other: &CentroidState) {
        self.sums
            .iter_mut()
            .zip(&other.sums)
            .for_each(|(a, b)| *a += b);
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
    }
    /// Member means (`n_labels x d`); an empty cluster's centroid is 0.
    pub fn centroids(&self) -> Vec<f64> {
        let d = self.n_features;
        let mut c = self.sums.clone();
        for (j, &cnt) in self.counts.iter().enumerate() {
            for v in &mut c[j * d..(j + 1) * d] {
                *v /= cnt.max(1) as f64;
            }
        }
        c
    }
}

/// Pass 2 of the dispersion scores: per cluster, the sum of Euclidean distances and of
/// squared distances of the members to their centroid (computed directly, in f64).
#[derive(Debug, Clone, PartialEq)]
pub struct DispersionState {
    pub dist_sums: Vec<f64>,
    pub sq_sums: Vec<f64>,
}

impl DispersionState {
    pub fn new(n_labels: usize) -> Self {
        DispersionState {
            dist_sums: vec![0.0; n_labels],
            sq_sums: vec![0.0; n_labels],
        }
    }
    /// Adds rows `x` (`rows x d`) with codes, given the centroids from pass 1.
    pub fn partial<T: Real>(&mut self, x: &[T], codes: &[u32], centroids: &[f64]) {
        let d = centroids.len() / self.dist_sums.len().max(1);
        for (row, &c) in x.chunks_exact(d).zip(codes) {
            let c = c as usize;
            let sq: f64 = row
                .iter()
                .zip(&centroids[c * d..(c + 1) * d])
                .map(|(&v, m)| {
                    let t = v.to_f64() - m;
                    t * t
                })
                .sum();
            self.dist_sums[c] += sq.sqrt();
            self.sq_sums[c] += sq;
        }
    }
    pub fn merge(&mut self, other: &DispersionState) {
        self.dist_sums
            .iter_mut()
            .zip(&other.dist_sums)
            .for_each(|(a, b)| *a += b);
        self.sq_sums
            .iter_mut()
            .zip(&other.sq_sums)
            .for_each(|(a, b)| *a += b);
    }
}

/// Davies-Bouldin index from the two passes, as `sklearn.metrics.davies_bouldin_score`:
/// mean over clusters of `max_{j != i} (s_i + s_j) / |c_i - c_j|` (lower is better).
pub fn davies_bouldin_from(cent: &CentroidState, disp: &DispersionState) -> f64 {
    let k = cent.counts.len();
    let d = cent.n_features;
    let c = cent.centroids();
    let intra: Vec<f64> = (0..k)
        .map(|j| disp.dist_sums[j] / cent.counts[j].max(1) as f64)
        .collect();
    let mut cd = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..k {
            cd[i * k + j] = (0..d)
                .map(|f| {
                    let t = c[i * d + f] - c[j * d + f];
                    t * t
                })
                .sum::<f64>()
                .sqrt();
        }
    }
    if intra.iter().all(|v| v.abs() <= 1e-8) || cd.iter().all(|v| v.abs() <= 1e-8) {
        return 0.0;
    }
    let mut total = 0.0;
    for i in 0..k {
        let mut best = f64::NEG_INFINITY;
        for j in 0..k {
            let den = if cd[i * k + j] == 0.0 {
                f64::INFINITY
            } else {
                cd[i * k + j]
            };
            best = best.max((intra[i] + intra[j]) / den);
        }
        total += best;
    }
    total / k as f64
}

/// Calinski-Harabasz index (variance ratio) from the two passes, as
/// `sklearn.metrics.calinski_harabasz_score` (higher is better; 1 when every cluster is a
/// single point repeated).
pub fn calinski_harabasz_from(cent: &CentroidState, disp: &DispersionState) -> f64 {
    let k = cent.counts.len();
    let d = cent.n_features;
    let n: u64 = cent.counts.iter().sum();
    let c = cent.centroids();
    let mean: Vec<f64> = (0..d)
        .map(|f| (0..k).map(|j| cent.sums[j * d + f]).sum::<f64>() / n as f64)
        .collect();
    let extra: f64 = (0..k)
        .map(|j| {
            cent.counts[j] as f64
                * (0..d)
                    .map(|f| (c[j * d + f] - mean[f]).powi(2))
                    .sum::<f64>()
        })
        .sum();
    let intra: f64 = disp.sq_sums.iter().sum();
    if intra == 0.0 {
        1.0
    } else {
        extra * (n - k as u64) as f64 / (intra * (k as f64 - 1.0))
    }
}

fn dispersion<T: Real>(
    x: &[T],
    d: usize,
    labels: &[i64],
) -> Result<(CentroidState, DispersionState)> {
    let n = check_data(x, d, labels)?;
    let (codes, k) = encode_labels(labels);
    check_number_of_labels(k, n)?;
    let mut cent = CentroidState::new(k, d);
    cent.partial(x, &codes);
    let centroids = cent.centroids();
    let mut disp = DispersionState::new(k);
    disp.partial(x, &codes, &centroids);
    Ok((cent, disp))
}

/// Davies-Bouldin index of in-memory data (`n x d`); see [`davies_bouldin_from`].
pub fn davies_bouldin_score<T: Real>(x: &[T], d: usize, labels: &[i64]) -> Result<f64> {
    let (c, s) = dispersion(x, d, labels)?;
    Ok(davies_bouldin_from(&c, &s))
}

/// Calinski-Harabasz index of in-memory data (`n x d`); see [`calinski_harabasz_from`].
pub fn calinski_harabasz_score<T: Real>(x: &[T], d: usize, labels: &[i64]) -> Result<f64> {
    let (c, s) = dispersion(x, d, labels)?;
    Ok(calinski_harabasz_from(&c, &s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Oracle values printed by scikit-learn 1.9.1 for these exact inputs.
        let a = [0, 0, 1, 1, 2, 2];
        let b = [0, 0, 1, 2, 2, 2];
        let ari = |x: &[i64], y: &[i64]| adjusted_rand_score(x, y).unwrap();
        let nmi = |x: &[i64], y: &[i64]| normalized_mutual_info_score(x, y).unwrap();
        assert!((ari(&a, &b) - 0.4444444444444444).abs() < 1e-12);
        assert!((nmi(&a, &b) - 0.7396673768007592).abs() < 1e-12);
        let x = [0, 1, 2, 0, 3, 4, 5, 1, 2, 2, 0];
        let y = [1, 1, 0, 0, 2, 2, 2, 3, 3, 3, 0];
        assert!((ari(&x, &y) - 0.10062893081761007).abs() < 1e-12);
        assert!((nmi(&x, &y) - 0.5908713768901095).abs() < 1e-12);
        assert!((ari(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
        assert!(nmi(&[0, 0, 1, 1], &[0, 1, 0, 1]).abs() < 1e-12);
        // label permutation does not matter; identical partitions score 1
        let c = [5, 5, 9, 9, 1, 1];
        assert!((ari(&a, &c) - 1.0).abs() < 1e-12);
        assert!((nmi(&a, &c) - 1.0).abs() < 1e-12);
        assert!(adjusted_rand_score(&a, &b[..5]).is_err());
    }

    /// Silhouette against the definition with a naive double loop.
    #[test]
    fn silhouette_matches_naive_loop() {
        let (n, d) = (300, 5);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 37 % 101) as f64 * 0.13).sin())
            .collect();
        let labels: Vec<i64> = (0..n)
            .map(|i| ((i * 7) % 4) as i64 * 10 + (i == 3) as i64)
            .collect();
        for metric in [Distance::Euclidean, Distance::SqEuclidean, Distance::Cosine] {
            let dist = |i: usize, j: usize| {
                let (a, b) = (&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]);
                let sq: f64 = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum();
                match metric {
                    Distance::Euclidean => sq.sqrt(),
                    Distance::SqEuclidean => sq,
                    Distance::InnerProduct => unreachable!("not a silhouette metric"),
                    Distance::Cosine => {
                        let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
                        let na: f64 = a.iter().map(|p| p * p).sum::<f64>().sqrt();
                        let nb: f64 = b.iter().map(|p| p * p).sum::<f64>().sqrt();
                        if i == j {
                            0.0
                        } else {
                            1.0 - dot / (na * nb)
                        }
                    }
                }
            };
            let got = silhouette_samples(&x, d, &labels, metric).unwrap();
            for i in 0..n {
                let own = labels[i];
                let members = labels.iter().filter(|&&l| l == own).count();
                let want = if members == 1 {
                    0.0
                } else {
                    let a = (0..n)
                        .filter(|&j| labels[j] == own && j != i)
                        .map(|j| dist(i, j))
                        .sum::<f64>()
                        / (members - 1) as f64;
                    let mut others: Vec<i64> = labels.clone();
                    others.sort();
                    others.dedup();
                    let b = others
                        .iter()
                        .filter(|&&l| l != own)
                        .map(|&l| {
                            let m: Vec<usize> = (0..n).filter(|&j| labels[j] == l).collect();
                            m.iter().map(|&j| dist(i, j)).sum::<f64>() / m.len() as f64
                        })
                        .fold(f64::INFINITY, f64::min);
                    (b - a) / a.max(b)
                };
                assert!(
                    (got[i] - want).abs() < 1e-9,
                    "{metric:?} row {i}: {} vs {want}",
                    got[i]
                );
            }
        }
        assert!(silhouette_samples(&x, d, &vec![1; n], Distance::Euclidean).is_err());
    }
}

/// Min, median and max of one figure across seeds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `v` (median: the mean of the middle two for an even count).
    pub fn of(v: &[f64]) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let m = s.len();
        let median = if m % 2 == 1 {
            s[m / 2]
        } else {
            (s[m / 2 - 1] + s[m / 2]) / 2.0
        };
        Some(Spread {
            min: s[0],
            median,
            max: s[m - 1],
        })
    }
}
