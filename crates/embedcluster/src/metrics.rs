//! Clustering agreement scores with scikit-learn's definitions.
//!
//! Both take two labelings of the same rows (any integer ids) and build a sparse
//! contingency table: memory `O(distinct pairs)`, never `n x n`.

use std::collections::HashMap;

struct Contingency {
    n: f64,
    cells: Vec<f64>,
    rows: Vec<f64>,
    cols: Vec<f64>,
}

fn contingency(a: &[i64], b: &[i64]) -> Contingency {
    assert_eq!(a.len(), b.len(), "labelings must have the same length");
    let mut cells: HashMap<(i64, i64), u64> = HashMap::new();
    let mut rows: HashMap<i64, u64> = HashMap::new();
    let mut cols: HashMap<i64, u64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *cells.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    Contingency {
        n: a.len() as f64,
        cells: sorted_counts(cells),
        rows: sorted_counts(rows),
        cols: sorted_counts(cols),
    }
}

/// Counts ordered by key, so that sums are taken in a deterministic order.
fn sorted_counts<K: Ord>(m: HashMap<K, u64>) -> Vec<f64> {
    let mut v: Vec<(K, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().map(|(_, c)| c as f64).collect()
}

fn comb2(x: f64) -> f64 {
    x * (x - 1.0) / 2.0
}

/// Adjusted Rand index (Hubert and Arabie 1985), as `sklearn.metrics.adjusted_rand_score`.
/// 1 for identical partitions, about 0 for independent ones.
pub fn adjusted_rand_score(labels_true: &[i64], labels_pred: &[i64]) -> f64 {
    let c = contingency(labels_true, labels_pred);
    let sum_comb: f64 = c.cells.iter().map(|&x| comb2(x)).sum();
    let sum_a: f64 = c.rows.iter().map(|&x| comb2(x)).sum();
    let sum_b: f64 = c.cols.iter().map(|&x| comb2(x)).sum();
    let expected = sum_a * sum_b / comb2(c.n);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return 1.0; // both partitions trivial (one cluster, or all singletons)
    }
    (sum_comb - expected) / (max - expected)
}

fn entropy(counts: &[f64], n: f64) -> f64 {
    counts
        .iter()
        .filter(|&&c| c > 0.0)
        .map(|&c| {
            let p = c / n;
            -p * p.ln()
        })
        .sum()
}

/// Normalized mutual information with the arithmetic mean of the entropies, as
/// `sklearn.metrics.normalized_mutual_info_score` (its default `average_method`).
pub fn normalized_mutual_info_score(labels_true: &[i64], labels_pred: &[i64]) -> f64 {
    assert_eq!(labels_true.len(), labels_pred.len());
    let mut cells: HashMap<(i64, i64), u64> = HashMap::new();
    let mut rows: HashMap<i64, u64> = HashMap::new();
    let mut cols: HashMap<i64, u64> = HashMap::new();
    for (&x, &y) in labels_true.iter().zip(labels_pred) {
        *cells.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let n = labels_true.len() as f64;
    if rows.len() == 1 && cols.len() == 1
        || rows.len() == labels_true.len() && cols.len() == labels_true.len()
    {
        return 1.0;
    }
    let mut keys: Vec<_> = cells.keys().copied().collect();
    keys.sort();
    let mi: f64 = keys
        .iter()
        .map(|k| {
            let nij = cells[k] as f64;
            let a = rows[&k.0] as f64;
            let b = cols[&k.1] as f64;
            nij / n * (n * nij / (a * b)).ln()
        })
        .sum();
    let c = contingency(labels_true, labels_pred);
    let (hu, hv) = (entropy(&c.rows, n), entropy(&c.cols, n));
    let denom = (hu + hv) / 2.0;
    if denom <= 0.0 {
        return 1.0;
    }
    (mi / denom).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Oracle values printed by scikit-learn 1.9.1 for these exact inputs.
        let a = [0, 0, 1, 1, 2, 2];
        let b = [0, 0, 1, 2, 2, 2];
        assert!((adjusted_rand_score(&a, &b) - 0.4444444444444444).abs() < 1e-12);
        assert!((normalized_mutual_info_score(&a, &b) - 0.7396673768007592).abs() < 1e-12);
        let x = [0, 1, 2, 0, 3, 4, 5, 1, 2, 2, 0];
        let y = [1, 1, 0, 0, 2, 2, 2, 3, 3, 3, 0];
        assert!((adjusted_rand_score(&x, &y) - 0.10062893081761007).abs() < 1e-12);
        assert!((normalized_mutual_info_score(&x, &y) - 0.5908713768901095).abs() < 1e-12);
        assert!((adjusted_rand_score(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
        assert!(normalized_mutual_info_score(&[0, 0, 1, 1], &[0, 1, 0, 1]).abs() < 1e-12);
        // label permutation does not matter; identical partitions score 1
        let c = [5, 5, 9, 9, 1, 1];
        assert!((adjusted_rand_score(&a, &c) - 1.0).abs() < 1e-12);
        assert!((normalized_mutual_info_score(&a, &c) - 1.0).abs() < 1e-12);
    }
}
