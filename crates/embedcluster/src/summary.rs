//! Cluster summaries: what is in each cluster, in words a person can read.
//!
//! Per cluster: its size, the mean and quantiles of the rows' scores, the `m` rows closest to
//! the centroid (*representatives*) with their text, and the top keywords by class-based
//! TF-IDF (c-TF-IDF, Grootendorst 2022, "BERTopic: Neural topic modeling with a class-based
//! TF-IDF procedure"): all texts of a cluster are one document, and term `t` of cluster `c`
//! weighs
//!
//! ```text
//! W(t, c) = tf(t, c) / words(c) * ln(1 + A / f(t))
//! ```
//!
//! with `tf(t, c)` the count of `t` in cluster `c`, `words(c)` the cluster's token count (the
//! term frequency normalized per class, as BERTopic's L1 norm), `f(t)` the count of `t` over
//! all clusters and `A` the mean token count per cluster.
//!
//! **Tokenizer** ([`tokenize`]): Unicode words (UAX #29 word boundaries, the
//! `unicode-segmentation` crate), lowercased; a token is kept when it has at least 2
//! characters, at least one alphabetic character, and is not in [`STOP_WORDS`] (a list of
//! 166 English function words). Only unigrams.
//!
//! **Memory.** Texts are streamed ([`SummaryBuilder::push_texts`]): only counts are kept, in
//! one table of `(term, cluster) -> count` entries and a vocabulary of the terms in it. The
//! table is capped at `max_entries`: when it grows past the cap, the terms with the lowest
//! total count (ties: by term) are dropped with all their entries until at most half the cap
//! is left (lossy counting, in the manner of Manku and Motwani 2002); the largest total count
//! dropped is reported ([`SummaryInfo::prune_floor`]), so a term's count is low by at most
//! that much per pruning. The peak is at most [`memory_bound_bytes`]`(max_entries, m k)`:
//! about `140 max_entries` bytes for the table and vocabulary (terms of up to 16 bytes;
//! longer words add their length) plus the `m k` representatives' texts and the grouped
//! scores `4 n` while the quantiles are computed.
//!
//! Everything here is deterministic: the texts are pushed in file order, ties are broken by
//! row or by term.

use crate::error::{Error, Result};
use arrow_array::builder::{
    Float32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
};
use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema};
use std::collections::HashMap;
use std::sync::Arc;
use unicode_segmentation::UnicodeSegmentation;

/// Levels of [`ClusterSummary::score_quantiles`]: p5, p25, p50, p75, p95 (linear
/// interpolation between order statistics, as numpy's default).
pub const QUANTILE_LEVELS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// English function words left out of the keywords (sorted, lowercase).
pub const STOP_WORDS: &[&str] = &[
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "cannot",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "etc",
    "even",
    "ever",
    "every",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "however",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "least",
    "less",
    "like",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "myself",
    "neither",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "often",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "others",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "per",
    "rather",
    "same",
    "several",
    "shall",
    "she",
    "should",
    "since",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "though",
    "through",
    "thus",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "use",
    "used",
    "uses",
    "using",
    "very",
    "via",
    "was",
    "we",
    "well",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Whether `w` (lowercase) is one of [`STOP_WORDS`].
pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// Calls `f` with each kept token of `text` (see the module docs), lowercased, in order.
pub fn tokenize(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    for w in text.unicode_words() {
        buf.clear();
        for c in w.chars() {
            buf.extend(c.to_lowercase());
        }
        let mut chars = buf.chars();
        let two = chars.next().is_some() && chars.next().is_some();
        if two && buf.chars().any(char::is_alphabetic) && !is_stop_word(&buf) {
            f(&buf);
        }
    }
}

/// An upper bound of the bytes a [`SummaryBuilder`] holds (besides the grouped scores, `4 n`,
/// while [`score_stats`] runs): the count table and vocabulary at `max_entries` and the
/// texts of `representatives` rows of up to 1 KiB each.
pub fn memory_bound_bytes(max_entries: usize, representatives: usize) -> u64 {
    140 * max_entries as u64 + 1100 * representatives as u64 + 4096
}

/// Class-based TF-IDF counts: `partial` by [`ClassTfidf::add`], [`ClassTfidf::merge`],
/// `finish` by [`ClassTfidf::keywords`]. See the module docs for the cap.
#[derive(Debug, Clone)]
pub struct ClassTfidf {
    n_clusters: usize,
    max_entries: usize,
    vocab: HashMap<Box<str>, u32>,
    terms: Vec<Box<str>>,
    /// `f(t)`: count over all clusters, while the term is in the table.
    term_total: Vec<u64>,
    /// `(term << 32 | cluster) -> tf(t, c)`.
    counts: HashMap<u64, u32>,
    /// `words(c)`: kept tokens per cluster (pruned terms included).
    class_words: Vec<u64>,
    pruned_terms: u64,
    prune_floor: u64,
    tokens: u64,
}

/// A keyword of a cluster and its c-TF-IDF weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyword {
    pub term: String,
    pub weight: f64,
}

impl ClassTfidf {
    /// Empty counts for `n_clusters` clusters, the table capped at `max_entries` (at least 2).
    pub fn new(n_clusters: usize, max_entries: usize) -> Self {
        ClassTfidf {
            n_clusters,
            max_entries: max_entries.max(2),
            vocab: HashMap::new(),
            terms: Vec::new(),
            term_total: Vec::new(),
            counts: HashMap::new(),
            class_words: vec![0; n_clusters],
            pruned_terms: 0,
            prune_floor: 0,
            tokens: 0,
        }
    }

    /// Counts the tokens of `text` for `cluster`.
    ///
    /// # Panics
    /// If `cluster >= n_clusters`.
    pub fn add(&mut self, cluster: usize, text: &str) {
        assert!(cluster < self.n_clusters, "cluster {cluster} out of range");
        tokenize(text, |w| self.count(cluster, w, 1));
        if self.counts.len() > self.max_entries {
            self.prune();
        }
    }

    fn count(&mut self, cluster: usize, w: &str, by: u64) {
        let t = match self.vocab.get(w) {
            Some(&t) => t,
            None => {
                let t = self.terms.len() as u32;
                self.vocab.insert(w.into(), t);
                self.terms.push(w.into());
                self.term_total.push(0);
                t
            }
        };
        self.term_total[t as usize] += by;
        self.class_words[cluster] += by;
        self.tokens += by;
        let e = self
            .counts
            .entry(((t as u64) << 32) | cluster as u64)
            .or_insert(0);
        *e = e.saturating_add(by.min(u32::MAX as u64) as u32);
    }

    /// Drops the least frequent terms until at most half the cap is left.
    fn prune(&mut self) {
        let mut per_term = vec![0u32; self.terms.len()];
        for &key in self.counts.keys() {
            per_term[(key >> 32) as usize] += 1;
        }
        let mut order: Vec<u32> = (0..self.terms.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            self.term_total[a]
                .cmp(&self.term_total[b])
                .then_with(|| self.terms[a].cmp(&self.terms[b]))
        });
        let target = self.max_entries / 2;
        let mut left = self.counts.len();
        let mut drop = vec![false; self.terms.len()];
        for &t in &order {
            if left <= target {
                break;
            }
            let t = t as usize;
            drop[t] = true;
            left -= per_term[t] as usize;
            self.pruned_terms += 1;
            self.prune_floor = self.prune_floor.max(self.term_total[t]);
        }
        // renumber the kept terms, in their old order
        let mut new_id = vec![u32::MAX; self.terms.len()];
        let (mut terms, mut totals) = (Vec::new(), Vec::new());
        for (t, term) in std::mem::take(&mut self.terms).into_iter().enumerate() {
            if !drop[t] {
                new_id[t] = terms.len() as u32;
                terms.push(term);
                totals.push(self.term_total[t]);
            }
        }
        self.vocab = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        self.counts = self
            .counts
            .drain()
            .filter_map(|(key, c)| {
                let id = new_id[(key >> 32) as usize];
                (id != u32::MAX).then_some((((id as u64) << 32) | (key & 0xffff_ffff), c))
            })
            .collect();
        self.terms = terms;
        self.term_total = totals;
    }

    /// Adds the counts of `other` (same `n_clusters`), then prunes to the cap if needed.
    ///
    /// # Errors
    /// [`Error::Param`] when the cluster counts differ.
    pub fn merge(&mut self, other: &ClassTfidf) -> Result<()> {
        if other.n_clusters != self.n_clusters {
            return Err(Error::param(
                "n_clusters",
                other.n_clusters,
                format!("cannot merge counts of {} clusters", self.n_clusters),
            ));
        }
        let mut entries: Vec<(u64, u32)> = other.counts.iter().map(|(&k, &c)| (k, c)).collect();
        entries.sort_unstable();
        for (key, c) in entries {
            let t = other.terms[(key >> 32) as usize].clone();
            let cluster = (key & 0xffff_ffff) as usize;
            self.count(cluster, &t, c as u64);
            // count() added to the class words and tokens, which other's own totals replace
            self.class_words[cluster] -= c as u64;
            self.tokens -= c as u64;
        }
        for (a, b) in self.class_words.iter_mut().zip(&other.class_words) {
            *a += b;
        }
        self.tokens += other.tokens;
        self.pruned_terms += other.pruned_terms;
        self.prune_floor = self.prune_floor.max(other.prune_floor);
        if self.counts.len() > self.max_entries {
            self.prune();
        }
        Ok(())
    }

    /// The `n` highest-weighted terms of every cluster (ties: by term), weights as in the
    /// module docs. Clusters with no tokens get none.
    pub fn keywords(&self, n: usize) -> Vec<Vec<Keyword>> {
        let k = self.n_clusters.max(1);
        let mean_words = self.class_words.iter().sum::<u64>() as f64 / k as f64;
        let mut per: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.n_clusters];
        for (&key, &c) in &self.counts {
            per[(key & 0xffff_ffff) as usize].push(((key >> 32) as u32, c));
        }
        per.into_iter()
            .enumerate()
            .map(|(c, entries)| {
                let words = self.class_words[c] as f64;
                let mut w: Vec<Keyword> = entries
                    .into_iter()
                    .map(|(t, tf)| Keyword {
                        term: self.terms[t as usize].to_string(),
                        weight: tf as f64 / words
                            * (1.0 + mean_words / self.term_total[t as usize] as f64).ln(),
                    })
                    .collect();
                w.sort_by(|a, b| {
                    b.weight
                        .total_cmp(&a.weight)
                        .then_with(|| a.term.cmp(&b.term))
                });
                w.truncate(n);
                w
            })
            .collect()
    }

    /// What the counts hold: terms, entries, tokens, pruning.
    pub fn info(&self) -> SummaryInfo {
        SummaryInfo {
            tokens: self.tokens,
            vocabulary: self.terms.len() as u64,
            entries: self.counts.len() as u64,
            max_entries: self.max_entries as u64,
            pruned_terms: self.pruned_terms,
            prune_floor: self.prune_floor,
        }
    }
}

/// The state of the keyword counts at the end (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SummaryInfo {
    /// Kept tokens counted.
    pub tokens: u64,
    /// Distinct terms in the table.
    pub vocabulary: u64,
    /// `(term, cluster)` entries in the table.
    pub entries: u64,
    pub max_entries: u64,
    /// Terms dropped by the cap (0: the counts are exact).
    pub pruned_terms: u64,
    /// The largest total count of a dropped term.
    pub prune_floor: u64,
}

/// Size, score mean and [`QUANTILE_LEVELS`] quantiles per cluster; rows with label -1 are
/// left out. Holds the scores grouped by cluster (`4 n` bytes) while it runs.
pub fn score_stats(labels: &[i32], scores: &[f32], n_clusters: usize) -> Vec<(u64, f64, Vec<f64>)> {
    let mut size = vec![0usize; n_clusters + 1];
    for &l in labels {
        if l >= 0 {
            size[l as usize + 1] += 1;
        }
    }
    for c in 0..n_clusters {
        size[c + 1] += size[c];
    }
    let start = size.clone();
    let mut grouped = vec![0f32; size[n_clusters]];
    let mut at = start.clone();
    for (&l, &s) in labels.iter().zip(scores) {
        if l >= 0 {
            grouped[at[l as usize]] = s;
            at[l as usize] += 1;
        }
    }
    (0..n_clusters)
        .map(|c| {
            let g = &mut grouped[start[c]..start[c + 1]];
            if g.is_empty() {
                return (0, f64::NAN, vec![f64::NAN; QUANTILE_LEVELS.len()]);
            }
            g.sort_unstable_by(|a, b| a.total_cmp(b));
            let mean = g.iter().map(|&x| x as f64).sum::<f64>() / g.len() as f64;
            let q = QUANTILE_LEVELS
                .iter()
                .map(|&q| {
                    let pos = q * (g.len() - 1) as f64;
                    let lo = pos.floor() as usize;
                    let hi = (lo + 1).min(g.len() - 1);
                    let f = pos - lo as f64;
                    g[lo] as f64 * (1.0 - f) + g[hi] as f64 * f
                })
                .collect();
            (g.len() as u64, mean, q)
        })
        .collect()
}

/// The `m` rows of each cluster closest to its centroid: the highest scores when
/// `higher_is_closer` (cosine similarity), else the lowest (squared distance); ties by the
/// lower row. Returns `(row, score)` lists, closest first. `O(n log m)` time, `m k` memory.
pub fn top_rows(
    labels: &[i32],
    scores: &[f32],
    n_clusters: usize,
    m: usize,
    higher_is_closer: bool,
) -> Vec<Vec<(u64, f32)>> {
    use std::cmp::Ordering;
    // "better" first: a key that sorts ascending
    let better = |a: &(u64, f32), b: &(u64, f32)| -> Ordering {
        let by = if higher_is_closer {
            b.1.total_cmp(&a.1)
        } else {
            a.1.total_cmp(&b.1)
        };
        by.then(a.0.cmp(&b.0))
    };
    let mut top: Vec<Vec<(u64, f32)>> = vec![Vec::new(); n_clusters];
    if m == 0 {
        return top;
    }
    for (row, (&l, &s)) in labels.iter().zip(scores).enumerate() {
        if l < 0 || s.is_nan() {
            continue;
        }
        let t = &mut top[l as usize];
        let cand = (row as u64, s);
        if t.len() == m && better(&cand, &t[m - 1]) != Ordering::Less {
            continue;
        }
        let at = t.partition_point(|x| better(x, &cand) == Ordering::Less);
        t.insert(at, cand);
        t.truncate(m);
    }
    top
}

/// One representative row: its row number in the input (0-based, over all parts, in the
/// order of the output), its text (None without a text column or for a null) and score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Representative {
    pub id: u64,
    pub text: Option<String>,
    pub score: f32,
}

/// The summary of one cluster.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterSummary {
    pub cluster: u32,
    pub size: u64,
    /// Mean score of the cluster's rows (NaN for an empty cluster; `null` in JSON).
    #[serde(deserialize_with = "nan_or_f64")]
    pub score_mean: f64,
    /// Score quantiles at [`QUANTILE_LEVELS`].
    #[serde(deserialize_with = "nan_or_f64s")]
    pub score_quantiles: Vec<f64>,
    /// The rows closest to the centroid, closest first.
    pub representatives: Vec<Representative>,
    /// Top terms by c-TF-IDF, highest first (empty without texts).
    pub keywords: Vec<String>,
    /// Their weights.
    pub keyword_weights: Vec<f64>,
}

/// JSON writes NaN as `null`: read it back as NaN.
fn nan_or_f64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nan_or_f64s<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    use serde::Deserialize;
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

/// What to summarize.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryParams {
    /// Representatives per cluster (`m`).
    pub n_representatives: usize,
    /// Keywords per cluster.
    pub n_keywords: usize,
    /// Cap of the c-TF-IDF count table (entries).
    pub max_entries: usize,
    /// Scores are similarities (higher is closer: cosine) or squared distances.
    pub higher_is_closer: bool,
}

impl Default for SummaryParams {
    fn default() -> Self {
        SummaryParams {
            n_representatives: 5,
            n_keywords: 10,
            max_entries: 1 << 19,
            higher_is_closer: true,
        }
    }
}

/// Builds the summaries: sizes, score statistics and representatives from the labels and
/// scores at once, then keywords and representative texts from texts streamed in row order.
#[derive(Debug)]
pub struct SummaryBuilder {
    params: SummaryParams,
    stats: Vec<(u64, f64, Vec<f64>)>,
    top: Vec<Vec<(u64, f32)>>,
    /// row -> (cluster, slot) of the representatives
    wanted: HashMap<u64, (u32, u32)>,
    texts: Vec<Vec<Option<String>>>,
    tfidf: ClassTfidf,
    n_rows: u64,
    next_row: u64,
}

impl SummaryBuilder {
    /// `labels` (-1: left out) and `scores` of every row, in row order.
    ///
    /// # Errors
    /// [`Error::Param`] when their lengths differ or a label is out of range.
    pub fn new(
        labels: &[i32],
        scores: &[f32],
        n_clusters: usize,
        params: SummaryParams,
    ) -> Result<Self> {
        if labels.len() != scores.len() {
            return Err(Error::param(
                "scores",
                scores.len(),
                format!("rows, but labels has {}", labels.len()),
            ));
        }
        if let Some(&l) = labels.iter().find(|&&l| l < -1 || l >= n_clusters as i32) {
            return Err(Error::param(
                "labels",
                l,
                format!("is out of range for {n_clusters} clusters"),
            ));
        }
        let stats = score_stats(labels, scores, n_clusters);
        let top = top_rows(
            labels,
            scores,
            n_clusters,
            params.n_representatives,
            params.higher_is_closer,
        );
        let mut wanted = HashMap::new();
        for (c, t) in top.iter().enumerate() {
            for (slot, &(row, _)) in t.iter().enumerate() {
                wanted.insert(row, (c as u32, slot as u32));
            }
        }
        let texts = top.iter().map(|t| vec![None; t.len()]).collect();
        Ok(SummaryBuilder {
            params,
            stats,
            top,
            wanted,
            texts,
            tfidf: ClassTfidf::new(n_clusters, params.max_entries),
            n_rows: labels.len() as u64,
            next_row: 0,
        })
    }

    /// The texts of the next rows, in row order (None: a null), with those rows' labels (a
    /// slice of the labels given to [`SummaryBuilder::new`]: the builder keeps no copy of
    /// them).
    ///
    /// # Errors
    /// [`Error::Param`] when more texts than rows are pushed.
    pub fn push_texts<'a>(
        &mut self,
        labels: &[i32],
        texts: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Result<()> {
        let mut texts = texts.into_iter();
        for &l in labels {
            let row = self.next_row;
            if row >= self.n_rows {
                return Err(Error::param(
                    "texts",
                    row + 1,
                    format!("or more, but there are {} rows", self.n_rows),
                ));
            }
            self.next_row += 1;
            let Some(Some(t)) = texts.next() else {
                continue;
            };
            if l >= 0 && (l as usize) < self.tfidf.n_clusters {
                self.tfidf.add(l as usize, t);
            }
            if let Some(&(c, slot)) = self.wanted.get(&row) {
                self.texts[c as usize][slot as usize] = Some(t.to_string());
            }
        }
        Ok(())
    }

    /// Rows whose texts were pushed so far.
    pub fn rows_pushed(&self) -> u64 {
        self.next_row
    }

    /// The summaries, one per cluster, and the state of the keyword counts.
    pub fn finish(self) -> (Vec<ClusterSummary>, SummaryInfo) {
        let keywords = self.tfidf.keywords(self.params.n_keywords);
        let info = self.tfidf.info();
        let out = self
            .stats
            .into_iter()
            .zip(self.top)
            .zip(self.texts)
            .zip(keywords)
            .enumerate()
            .map(
                |(c, ((((size, mean, q), top), texts), kw))| ClusterSummary {
                    cluster: c as u32,
                    size,
                    score_mean: mean,
                    score_quantiles: q,
                    representatives: top
                        .into_iter()
                        .zip(texts)
                        .map(|((id, score), text)| Representative { id, text, score })
                        .collect(),
                    keyword_weights: kw.iter().map(|k| k.weight).collect(),
                    keywords: kw.into_iter().map(|k| k.term).collect(),
                },
            )
            .collect();
        (out, info)
    }
}

/// The summaries as one Arrow batch (one row per cluster): `cluster` int32, `size` int64,
/// `score_mean` float64, `score_quantiles` list<float64>, `representatives`
/// list<struct<id: int64, text: string, score: float32>>, `keywords` list<string>,
/// `keyword_weights` list<float64>.
///
/// # Errors
/// [`Error::Param`] if Arrow rejects the batch (not expected).
pub fn to_record_batch(summaries: &[ClusterSummary]) -> Result<RecordBatch> {
    let rep_fields = Fields::from(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("text", DataType::Utf8, true),
        Field::new("score", DataType::Float32, false),
    ]);
    let mut quantiles = ListBuilder::new(Float64Builder::new());
    let mut reps = ListBuilder::new(StructBuilder::new(
        rep_fields.clone(),
        vec![
            Box::new(Int64Builder::new()),
            Box::new(StringBuilder::new()),
            Box::new(Float32Builder::new()),
        ],
    ))
    .with_field(Arc::new(Field::new(
        "item",
        DataType::Struct(rep_fields.clone()),
        true,
    )));
    let mut keywords = ListBuilder::new(StringBuilder::new());
    let mut weights = ListBuilder::new(Float64Builder::new());
    for s in summaries {
        quantiles.values().append_slice(&s.score_quantiles);
        quantiles.append(true);
        let st = reps.values();
        for r in &s.representatives {
            st.field_builder::<Int64Builder>(0)
                .expect("id")
                .append_value(r.id as i64);
            st.field_builder::<StringBuilder>(1)
                .expect("text")
                .append_option(r.text.as_deref());
            st.field_builder::<Float32Builder>(2)
                .expect("score")
                .append_value(r.score);
            st.append(true);
        }
        reps.append(true);
        for k in &s.keywords {
            keywords.values().append_value(k);
        }
        keywords.append(true);
        weights.values().append_slice(&s.keyword_weights);
        weights.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(
            summaries.iter().map(|s| s.cluster as i32),
        )),
        Arc::new(Int64Array::from_iter_values(
            summaries.iter().map(|s| s.size as i64),
        )),
        Arc::new(arrow_array::Float64Array::from_iter_values(
            summaries.iter().map(|s| s.score_mean),
        )),
        Arc::new(quantiles.finish()),
        Arc::new(reps.finish()),
        Arc::new(keywords.finish()),
        Arc::new(weights.finish()),
    ];
    let schema = Schema::new(
        [
            "cluster",
            "size",
            "score_mean",
            "score_quantiles",
            "representatives",
            "keywords",
            "keyword_weights",
        ]
        .iter()
        .zip(&columns)
        .map(|(n, c)| Field::new(*n, c.data_type().clone(), false))
        .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), columns)
        .map_err(|e| Error::param("summary", "batch", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_and_unique() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(STOP_WORDS.len(), 166);
    }

    #[test]
    fn tokenizer_lowercases_unicode_words_and_drops_stop_words() {
        let mut got = Vec::new();
        tokenize(
            "The Über-fast PNG library, for C++ (v2) and 3 x Élan's 100",
            |w| got.push(w.to_string()),
        );
        assert_eq!(got, ["über", "fast", "png", "library", "v2", "élan's"]);
    }

    #[test]
    fn keywords_follow_the_ctfidf_formula() {
        let mut t = ClassTfidf::new(2, 1000);
        t.add(0, "apple apple banana");
        t.add(1, "banana cherry");
        // words: c0 = 3, c1 = 2, A = 2.5; f: apple 2, banana 2, cherry 1
        let kw = t.keywords(3);
        let w = |tf: f64, words: f64, f: f64| tf / words * (1.0 + 2.5 / f).ln();
        assert_eq!(kw[0][0].term, "apple");
        assert!((kw[0][0].weight - w(2.0, 3.0, 2.0)).abs() < 1e-12);
        assert_eq!(kw[0][1].term, "banana");
        assert!((kw[0][1].weight - w(1.0, 3.0, 2.0)).abs() < 1e-12);
        assert_eq!(kw[1][0].term, "cherry");
        assert!((kw[1][0].weight - w(1.0, 2.0, 1.0)).abs() < 1e-12);
        assert_eq!(kw[1].len(), 2);
    }

    #[test]
    fn merged_counts_equal_one_stream() {
        let texts = [
            "alpha beta gamma",
            "beta beta delta",
            "gamma epsilon",
            "alpha zeta",
        ];
        let mut one = ClassTfidf::new(3, 1000);
        let (mut a, mut b) = (ClassTfidf::new(3, 1000), ClassTfidf::new(3, 1000));
        for (i, t) in texts.iter().enumerate() {
            one.add(i % 3, t);
            if i < 2 {
                a.add(i % 3, t)
            } else {
                b.add(i % 3, t)
            }
        }
        a.merge(&b).unwrap();
        assert_eq!(a.keywords(10), one.keywords(10));
        assert_eq!(a.info(), one.info());
    }

    #[test]
    fn the_cap_keeps_the_table_small_and_the_frequent_terms() {
        let mut t = ClassTfidf::new(2, 64);
        for i in 0..500 {
            t.add(i % 2, &format!("common w{i}x"));
        }
        let info = t.info();
        assert!(info.entries <= 64, "{info:?}");
        assert!(info.pruned_terms > 0 && info.prune_floor >= 1);
        assert_eq!(t.keywords(1)[0][0].term, "common");
        assert_eq!(info.tokens, 1000);
    }

    #[test]
    fn top_rows_are_the_best_scores_with_ties_by_row() {
        let labels = [0, 1, 0, 0, -1, 0, 1];
        let scores = [0.5, 0.9, 0.7, 0.5, 1.0, 0.1, 0.9];
        let top = top_rows(&labels, &scores, 2, 2, true);
        assert_eq!(top[0], vec![(2, 0.7), (0, 0.5)]);
        assert_eq!(top[1], vec![(1, 0.9), (6, 0.9)]);
        let low = top_rows(&labels, &scores, 2, 2, false);
        assert_eq!(low[0], vec![(5, 0.1), (0, 0.5)]);
        // against a naive sort
        let mut rng = 12345u64;
        let n = 2000;
        let labels: Vec<i32> = (0..n).map(|i| (i % 7) as i32).collect();
        let scores: Vec<f32> = (0..n)
            .map(|_| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((rng >> 40) % 50) as f32
            })
            .collect();
        let top = top_rows(&labels, &scores, 7, 5, true);
        for c in 0..7 {
            let mut rows: Vec<(u64, f32)> = (0..n)
                .filter(|&i| labels[i] == c as i32)
                .map(|i| (i as u64, scores[i]))
                .collect();
            rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            rows.truncate(5);
            assert_eq!(top[c], rows);
        }
    }

    #[test]
    fn score_stats_match_numpy_linear_quantiles() {
        let labels = [0, 0, 0, 0, 1, -1];
        let scores = [4.0, 1.0, 3.0, 2.0, 7.0, 100.0];
        let s = score_stats(&labels, &scores, 3);
        assert_eq!(s[0].0, 4);
        assert!((s[0].1 - 2.5).abs() < 1e-12);
        // numpy.quantile([1,2,3,4], [.05,.25,.5,.75,.95])
        let want = [1.15, 1.75, 2.5, 3.25, 3.85];
        for (a, b) in s[0].2.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{a} {b}");
        }
        assert_eq!(s[1].2, vec![7.0; 5]);
        assert_eq!(s[2].0, 0);
        assert!(s[2].1.is_nan());
    }

    #[test]
    fn builder_streams_texts_and_keeps_representative_texts() {
        let labels = [0, 1, 0, -1, 1];
        let scores = [0.9, 0.8, 0.95, f32::NAN, 0.1];
        let params = SummaryParams {
            n_representatives: 1,
            ..Default::default()
        };
        let mut b = SummaryBuilder::new(&labels, &scores, 2, params).unwrap();
        b.push_texts(&labels[..2], [Some("red apple"), Some("blue sky")])
            .unwrap();
        b.push_texts(
            &labels[2..],
            [Some("green apple"), Some("skipped words"), None],
        )
        .unwrap();
        assert!(b.push_texts(&[0], [Some("one too many")]).is_err());
        let (s, info) = b.finish();
        assert_eq!(
            s[0].representatives,
            vec![Representative {
                id: 2,
                text: Some("green apple".into()),
                score: 0.95
            }]
        );
        assert_eq!(s[1].representatives[0].id, 1);
        assert_eq!(s[0].keywords[0], "apple");
        assert_eq!(info.tokens, 6);
        let batch = to_record_batch(&s).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), 7);
    }

    #[test]
    fn an_empty_cluster_survives_json() {
        let (s, _) = SummaryBuilder::new(&[0, 0], &[0.5, 0.7], 2, SummaryParams::default())
            .unwrap()
            .finish();
        let json = serde_json::to_string(&s).unwrap();
        let back: Vec<ClusterSummary> = serde_json::from_str(&json).unwrap();
        assert!(back[1].score_mean.is_nan() && back[1].score_quantiles.iter().all(|q| q.is_nan()));
        assert_eq!(back[0], s[0]);
    }
}
