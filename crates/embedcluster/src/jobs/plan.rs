//! Memory planning for the main job: the peak resident memory of each stage of
//! `embedcluster run`, predicted from the shapes alone, before any data is read.
//!
//! [`plan_run`] takes the file's metadata (`n_samples`, `n_features`, dtype, format) and the
//! run's parameters and returns, per stage, the predicted peak RSS of the process as a sum
//! of named terms. With a memory limit it also chooses the block size (`batch_rows`) so
//! that every stage fits, or fails with [`Error::MemoryLimit`] naming the stage that does
//! not fit, what it holds, and what to change.
//!
//! # Formulas
//! `r` = resident memory of the process when planning (the binary, its libraries, the
//! thread pool), `n` rows, `d` features, `D` components (`d` without reduction), `k`
//! clusters, `s` = 4 (float32) or 8 (float64) bytes, `b` = block rows, `a` = rows per
//! decoded Arrow batch ([`crate::io::arrow_batch_rows`]), `N` = PCA sample rows,
//! `l = D + 10`, `t = 2 + floor(ln k)` k-means++ trials, `m` the seeding's sample rows
//! (`init_trials > 1`, the default: `max(10_000, 400 k)`).
//!
//! | stage | predicted peak |
//! |---|---|
//! | `open` | `r` |
//! | `pca_fit` (exact) | `r + g + b d s + dec + d^2 (8 + s/2) + q c d s` (`c` = `cov_chunk_rows(d)`; `q` = 1 when blocks end on chunks, else 2) |
//! | `pca_fit` (sample) | `r + g + b d s + dec + N d s` |
//! | `pca_solve` (exact) | `r + g + 7 d^2 8` (covariance, its copy, the eigensolver's matrices) |
//! | `pca_solve` (sample) | `r + g + N d s + 3 N l s + 3 d l 8` (sample, range basis and its QR factor, the small SVD) |
//! | `transform` | `r + g + b d s + dec + n D s + d D s` |
//! | `kmeans` | `r + g + n D s + n (8 + 3 s) + seeding + 16 k D 8 + pruning`; pruning (float32, `k >= 256`, prefix `p = D / 8`): `n (p s + 8) + k (p + 3) 4 + 4 MiB` per thread; seeding: screened `m (D s + t s + 4 s + 16)`, one k-means++ `n (t s + s + 8)`, k-means\|\| `n (s + 12) + 2 (1 + rounds l) D s` |
//! | `write` | `r + g + 8 n + 8 n (with labels) + writer + summaries (140 max_entries + 1100 m k + 4 n)` |
//! | `save_model` | `r + g + 8 n + 2 (8 d D + k D s)` |
//!
//! `g`, the GEMM scratch, is 2 MiB (stacks) plus the largest packing any GEMM so far
//! needed, since faer keeps a thread-local pool of up to twice the L3 cache: `2 max(1024, c/4) d s`
//! in the exact fit, `6 KiB * d` after its eigensolver, and for `d >= 512`
//! `min(N * 512 s, L3)` in the sample fit's solve and `min(b * 512 s, L3)` in the projection. `dec`, the Parquet decoder's buffers, is
//! `8 a d s + 4 MiB` for list columns (values, definition and repetition levels, pages, the
//! batch handed over), and `W (7 a d s + 2 MiB)` when `W > 1` decoder threads read a file of several row groups ahead of the computation (each decodes one row group at a time and holds at most `PREFETCH_BATCHES` batches ready); from object storage each decoder thread adds its reader's two windows, `2 * 8 MiB`),, the block's mapped pages `b d s` for `.npy` (they are released after
//! each block) and 1 MiB for CSV (one line at a time). `writer` is the Parquet writer's open row group (up to 65,536 rows of the
//! other columns and the two new ones) plus its compressor: `min(n, 65536) (o + 8) + 8 MiB`
//! with `o` the other columns' uncompressed bytes per row. The exact fit touches only the
//! lower half of its chunk Gram matrix, hence `s/2`. The coefficients were fitted on the canonical workload and on the Debian set and
//! are checked against the measured peaks (`tests/test_memory.py` on the Debian set; the
//! README's table for the canonical workload): every stage within 25 %.
//!
//! The default block is about [`DEFAULT_BLOCK_BYTES`] (at most 16,384 rows); a limit makes
//! it smaller, down to [`MIN_BATCH_ROWS`] rows. Results do not depend on the block size.

use super::run::{RunConfig, Spill};
use crate::cluster::Init;
use crate::error::{Advice, Error, MemoryLimitError, Result};
use crate::io::{EmbeddingSource, Format};
pub use crate::memory::{format_bytes, parse_bytes, MemoryPlan, StagePlan};
use crate::memory::{BudgetSource, SpillPlan};
use crate::pipeline::{PcaFit, Reduce};

/// Target size of a block when `batch_rows` is not given (bytes).
pub const DEFAULT_BLOCK_BYTES: u64 = 32 << 20;
/// The most rows a default block holds.
pub const MAX_DEFAULT_BATCH_ROWS: usize = 16384;
/// The fewest rows a planned block holds.
pub const MIN_BATCH_ROWS: usize = 256;
use crate::memory::MIB;

/// The shapes a plan depends on.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub n_samples: usize,
    pub n_features: usize,
    /// Bytes per value of the working dtype (4 or 8).
    pub value_bytes: usize,
    pub format: Format,
    /// Bytes per row of the input's other columns (Parquet; 0 otherwise).
    pub other_bytes_per_row: u64,
    pub base_bytes: u64,
    /// Worker threads (each keeps GEMM packing buffers).
    pub threads: usize,
    /// Threads decoding the input ahead of the computation (Parquet with several row
    /// groups; 1 otherwise).
    pub decoder_threads: usize,
    /// True when the input is read from object storage: each decoder thread then also holds
    /// its reader's window and the window prefetched after it (`2 * io::REMOTE_WINDOW_BYTES`).
    pub remote: bool,
}

impl PlanInput {
    /// The shapes of `source`, with the process's current RSS as the base.
    pub fn of(source: &EmbeddingSource) -> Self {
        PlanInput {
            n_samples: source.n_samples(),
            n_features: source.n_features(),
            value_bytes: source.dtype().size(),
            format: source.format(),
            other_bytes_per_row: source.other_bytes_per_row(),
            base_bytes: crate::memory::current_rss_bytes(),
            threads: rayon::current_num_threads(),
            decoder_threads: source.decoder_threads(),
            remote: source.is_remote(),
        }
    }
}

/// Rows per block when none is given: about [`DEFAULT_BLOCK_BYTES`], between
/// [`MIN_BATCH_ROWS`] and [`MAX_DEFAULT_BATCH_ROWS`].
pub fn default_batch_rows(n_features: usize, value_bytes: usize) -> usize {
    ((DEFAULT_BLOCK_BYTES / (n_features * value_bytes).max(1) as u64) as usize)
        .clamp(MIN_BATCH_ROWS, MAX_DEFAULT_BATCH_ROWS)
}

/// Plans `cfg` on a file of shapes `input`: every stage's predicted peak, and the block
/// size (`cfg.batch_rows`, or when it is 0 the default, made smaller to meet
/// `memory_limit`).
///
/// # Errors
/// [`Error::MemoryLimit`] when some stage exceeds `memory_limit` even with the smallest
/// block; the message names the stage, its terms and what to change.
pub fn plan_run(
    cfg: &RunConfig,
    input: &PlanInput,
    memory_limit: Option<u64>,
) -> Result<MemoryPlan> {
    let budget = match memory_limit {
        Some(l) => Some((l, BudgetSource::Limit)),
        None => crate::memory::default_budget(),
    };
    plan_with_budget(cfg, input, memory_limit, budget)
}

/// [`plan_run`] against an explicit budget (`budget` is where a plan without a limit is
/// fitted: the cgroup limit or the available memory).
///
/// The reduced matrix goes to a spill file when `cfg.spill` asks for it, or, with
/// [`Spill::Auto`], when the in-memory plan does not fit the budget but the spilled one
/// does. A plan that fits neither fails only under an explicit `memory_limit`; against a
/// default budget it runs in memory (the budget is then only an estimate of what is free).
///
/// # Errors
/// As [`plan_run`].
pub fn plan_with_budget(
    cfg: &RunConfig,
    input: &PlanInput,
    memory_limit: Option<u64>,
    budget: Option<(u64, BudgetSource)>,
) -> Result<MemoryPlan> {
    let dim = match cfg.reduce {
        Reduce::None => input.n_features,
        Reduce::Pca(k) | Reduce::Matryoshka(k) => k,
    } as u64;
    let spill_bytes = input.n_samples as u64 * dim * input.value_bytes as u64;
    let with = |plan: Result<MemoryPlan>, spill: Option<SpillPlan>| {
        plan.map(|mut p| {
            p.limit_bytes = memory_limit;
            p.budget_bytes = budget.map(|b| b.0);
            p.budget_source = budget.map(|b| b.1);
            p.spill = spill;
            p
        })
    };
    let limit = budget.map(|b| b.0);
    if let Spill::Always(dir) = &cfg.spill {
        let spill = SpillPlan {
            dir: dir.clone(),
            bytes: spill_bytes,
            reason: "asked for (--spill)".into(),
        };
        return with(fit_blocks(cfg, input, memory_limit, true), Some(spill));
    }
    let in_memory = fit_blocks(cfg, input, limit, false);
    let over = match &in_memory {
        Ok(_) => return with(in_memory, None),
        Err(Error::MemoryLimit(e)) => e.clone(),
        Err(_) => return in_memory,
    };
    if cfg.spill == Spill::Auto && matches!(over.stage.as_str(), "transform" | "kmeans") {
        if let Ok(p) = fit_blocks(cfg, input, limit, true) {
            let (l, source) = budget.expect("a budget was exceeded");
            let spill = SpillPlan {
                dir: std::env::temp_dir(),
                bytes: spill_bytes,
                reason: format!(
                    "in memory, stage {} would need {} ({}) but the budget is {} ({})",
                    over.stage,
                    format_bytes(over.needs_bytes),
                    over.holds,
                    format_bytes(l),
                    match source {
                        BudgetSource::Limit => "--memory-limit",
                        BudgetSource::Cgroup => "the cgroup's memory limit",
                        BudgetSource::Available => "the machine's available memory",
                    }
                ),
            };
            return with(Ok(p), Some(spill));
        }
    }
    match memory_limit {
        Some(_) => with(in_memory, None),
        // a default budget is advice: run as planned without it
        None => with(fit_blocks(cfg, input, None, false), None),
    }
}

/// The block size loop: halves the default block until every stage fits `limit`.
fn fit_blocks(
    cfg: &RunConfig,
    input: &PlanInput,
    memory_limit: Option<u64>,
    spill: bool,
) -> Result<MemoryPlan> {
    let fixed = cfg.batch_rows > 0;
    let mut b = if fixed {
        cfg.batch_rows
    } else {
        default_batch_rows(input.n_features, input.value_bytes)
    };
    loop {
        let plan = stages(cfg, input, b, memory_limit, spill);
        let Some(limit) = memory_limit else {
            return Ok(plan);
        };
        let over = plan.stages.iter().find(|s| s.peak_bytes > limit);
        let Some(over) = over else { return Ok(plan) };
        let has_block = over.terms.iter().any(|(w, _)| w.starts_with("block"));
        if has_block && !fixed && b > MIN_BATCH_ROWS {
            b = (b / 2).max(MIN_BATCH_ROWS);
            continue;
        }
        return Err(Error::MemoryLimit(limit_message(
            cfg, input, over, limit, fixed, b,
        )));
    }
}

fn limit_message(
    cfg: &RunConfig,
    input: &PlanInput,
    over: &StagePlan,
    limit: u64,
    fixed: bool,
    b: usize,
) -> MemoryLimitError {
    let terms: Vec<String> = over
        .terms
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(w, v)| format!("{w} {}", format_bytes(*v)))
        .collect();
    let mut fixes: Vec<Advice> = Vec::new();
    let (n, d, s) = (
        input.n_samples as u64,
        input.n_features as u64,
        input.value_bytes as u64,
    );
    let excess = over.peak_bytes - limit;
    if fixed && over.terms.iter().any(|(w, _)| w.starts_with("block")) && b > MIN_BATCH_ROWS {
        fixes.push(Advice::SmallerBatch { now: b });
    }
    match over.name.as_str() {
        "pca_fit" | "pca_solve" => match cfg.pca_fit {
            PcaFit::Exact => fixes.push(Advice::SampleFit {
                n_features: d as usize,
            }),
            PcaFit::Sample(size) => {
                let per_row = d * s * if over.name == "pca_solve" { 2 } else { 1 };
                let fit = (size as u64).saturating_sub(excess.div_ceil(per_row.max(1)));
                fixes.push(Advice::SmallerSample {
                    to: fit.max(2) as usize,
                })
            }
        },
        "transform" | "kmeans" => {
            let dim = match cfg.reduce {
                Reduce::None => d,
                Reduce::Pca(k) | Reduce::Matryoshka(k) => k as u64,
            };
            // every row holds D values in the reduced matrix (and about as much again
            // in k-means' per-row arrays)
            let per_dim = n * s;
            let fit = dim.saturating_sub(excess.div_ceil(per_dim.max(1)));
            if fit >= 1 {
                fixes.push(Advice::FewerComponents {
                    from: dim as usize,
                    to: fit as usize,
                });
            } else {
                fixes.push(Advice::FewerRows);
            }
        }
        _ => {}
    }
    fixes.push(Advice::LargerLimit);
    MemoryLimitError {
        limit_bytes: limit,
        stage: over.name.clone(),
        needs_bytes: over.peak_bytes,
        holds: terms.join(" + "),
        advice: fixes,
    }
}

fn stages(
    cfg: &RunConfig,
    input: &PlanInput,
    b: usize,
    limit: Option<u64>,
    spill: bool,
) -> MemoryPlan {
    let (n, d, s) = (
        input.n_samples as u64,
        input.n_features as u64,
        input.value_bytes as u64,
    );
    let r = input.base_bytes;
    let dim = match cfg.reduce {
        Reduce::None => d,
        Reduce::Pca(k) | Reduce::Matryoshka(k) => k as u64,
    };
    let k = cfg.n_clusters as u64;
    // a block never holds more rows than the file
    let block = (b as u64).min(n) * d * s;
    let dec = match input.format {
        Format::Parquet => {
            let a = (crate::io::arrow_batch_rows((d * s) as usize).min(b) as u64).min(n);
            let w = input.decoder_threads.max(1) as u64;
            (if w == 1 {
                8 * a * d * s + 4 * MIB
            } else {
                // each worker decodes one row group at a time and holds a few batches ready;
                // fitted on the canonical and Debian sets (the serial reader's coefficient
                // also covers its larger internal buffering)
                w * (7 * a * d * s + 2 * MIB)
            }) + if input.remote {
                w * 2 * crate::io::REMOTE_WINDOW_BYTES
            } else {
                0
            }
        }
        // the mapped pages of the block being copied, released after each block
        Format::Npy => block,
        Format::Csv => MIB,
        // rows already in memory (the caller's): nothing is decoded
        Format::Array => 0,
        // the caller's batches are in memory; one decoded batch at a time
        Format::Arrow => {
            let a = (crate::io::arrow_batch_rows((d * s) as usize).min(b) as u64).min(n);
            a * d * s + MIB
        }
    };
    let base = ("base".to_string(), r);
    // the reduced matrix in memory, or (spilled) the pages of it a pass holds: the block
    // being written (`rows`), or up to RELEASE_BYTES per thread and page-boundary slack
    let threads = input.threads.max(1) as u64;
    let reduced_term = |rows: u64| {
        if spill {
            let held = if rows > 0 {
                rows * dim * s
            } else {
                threads * (crate::memory::RELEASE_BYTES as u64 + 64 * 1024)
            };
            (
                format!(
                    "spilled reduced data, pages in use (file {})",
                    format_bytes(n * dim * s)
                ),
                held,
            )
        } else {
            (format!("reduced data {n} x {dim} x {s} B"), n * dim * s)
        }
    };
    // faer's GEMM keeps its packing buffers (a thread-local pool of up to 2 x L3 bytes) once
    // a GEMM has touched them, so each stage carries the largest packing any stage before
    // it needed. Measured: about `min(m * 512 * s, L3)` for a tall `m`-row operand of depth
    // >= 512 (smaller depths take another kernel and pack little), `d x 1024` panels for
    // the exact fit and about 6 KiB per feature for the eigensolver.
    let l3 = l3_cache_bytes();
    let tall = |m: u64| if d >= 512 { (m * 512 * s).min(l3) } else { 0 };
    let mut g = 2 * MIB;
    let mut scratch = |need: u64| {
        g = g.max(2 * MIB + need);
        ("GEMM scratch".to_string(), g)
    };
    let mut out = Vec::new();
    let mut push = |name: &str, terms: Vec<(String, u64)>| {
        out.push(StagePlan {
            name: name.into(),
            peak_bytes: terms.iter().map(|t| t.1).sum(),
            terms,
        });
    };
    push("open", vec![base.clone()]);
    let blk = |what: &str| {
        (
            format!("block {} x {d} x {s} B{what}", (b as u64).min(n)),
            block,
        )
    };
    if let Reduce::Pca(_) = cfg.reduce {
        match cfg.pca_fit {
            PcaFit::Exact => {
                let chunk = (crate::decomposition::cov_chunk_rows(d as usize) as u64).min(n);
                // the centered copy, plus the pending rows when blocks do not end on chunks
                let bufs = if (b as u64).min(n) % chunk == 0 { 1 } else { 2 };
                push(
                    "pca_fit",
                    vec![
                        base.clone(),
                        // faer's packing grows with the chunk's depth (measured at d = 768
                        // with 8,192-row chunks: 6 MiB above the 1,024-row figure)
                        scratch(2 * (chunk / 4).max(1024) * d * s),
                        blk(""),
                        ("decoder".into(), dec),
                        (
                            format!("co-moment and Gram d^2 (8 + {s}/2) B"),
                            d * d * (8 + s / 2),
                        ),
                        (
                            format!("chunk buffers {bufs} x {chunk} x d x {s} B"),
                            bufs * chunk * d * s,
                        ),
                    ],
                );
                push(
                    "pca_solve",
                    vec![
                        base.clone(),
                        scratch(6 * 1024 * d),
                        (
                            "covariance and eigensolver 7 d^2 x 8 B".into(),
                            7 * d * d * 8,
                        ),
                    ],
                );
            }
            PcaFit::Sample(size) => {
                let nn = (size as u64).min(n);
                let l = (dim + 10).min(d).min(nn);
                push(
                    "pca_fit",
                    vec![
                        base.clone(),
                        scratch(0),
                        blk(""),
                        ("decoder".into(), dec),
                        (format!("sample {nn} x {d} x {s} B"), nn * d * s),
                    ],
                );
                push(
                    "pca_solve",
                    vec![
                        base.clone(),
                        scratch(tall(nn)),
                        (format!("sample {nn} x {d} x {s} B"), nn * d * s),
                        (
                            format!("range basis and QR 3 N l s (l = {l})"),
                            3 * nn * l * s,
                        ),
                        ("SVD 3 d l x 8 B".into(), 3 * d * l * 8),
                    ],
                );
            }
        }
    }
    push(
        "transform",
        vec![
            base.clone(),
            scratch(if matches!(cfg.reduce, Reduce::Pca(_)) {
                tall(b as u64)
            } else {
                0
            }),
            blk(""),
            ("decoder".into(), dec),
            reduced_term((b as u64).min(n)),
            ("projection d D s".into(), d * dim * s),
        ],
    );
    let trials = 2 + (k.max(1) as f64).ln().floor() as u64;
    let params = cfg.kmeans_params();
    let seeding = if params.init_trials > 1 {
        let m = params.init_sample_size(n as usize) as u64;
        (
            format!("screening sample {m} x (D s + {trials} s + 4 s + 16)"),
            m * (dim * s + trials * s + 4 * s + 16),
        )
    } else {
        match params.init {
            Init::KMeansParallel(p) => {
                let cands = 1 + (p.rounds as f64 * p.oversampling_factor * k as f64) as u64;
                (
                    format!("k-means|| n (s + 12) + {cands} candidates x D s"),
                    n * (s + 12) + 2 * cands * dim * s,
                )
            }
            Init::KMeansPlusPlus => (
                format!("k-means++ n ({trials} s + s + 8)"),
                n * (trials * s + s + 8),
            ),
            _ => ("initial centroids k D s".into(), k * dim * s),
        }
    };
    push(
        "kmeans",
        vec![
            base.clone(),
            scratch(0),
            reduced_term(0),
            (
                "labels, distances, norms n (8 + 3 s)".into(),
                n * (8 + 3 * s),
            ),
            seeding,
            ("centroid sums 16 k D x 8 B".into(), 16 * k * dim * 8),
            pruning_term(&params, n, dim, k, s, input.threads.max(1) as u64),
        ],
    );
    if cfg.output.is_some() || cfg.labels_column.is_some() || cfg.wants_summary() {
        let mut terms = vec![
            base.clone(),
            scratch(0),
            ("labels and scores 8 n".into(), 8 * n),
        ];
        if cfg.labels_column.is_some() {
            terms.push(("true labels 8 n".into(), 8 * n));
        }
        if cfg.output.is_some() {
            let o = input.other_bytes_per_row;
            terms.push((
                "Parquet writer (row group, compressor)".into(),
                n.min(65536) * (o + 8) + 8 * MIB,
            ));
        }
        if cfg.wants_summary() {
            let p = &cfg.summary_params;
            terms.push((
                "summaries: keyword table 140 max_entries + representatives, scores grouped 4 n"
                    .into(),
                crate::summary::memory_bound_bytes(p.max_entries, p.n_representatives * k as usize)
                    + 4 * n,
            ));
            if cfg.output.is_none() {
                // the other columns are read, one batch at a time
                terms.push((
                    "one batch of the other columns".into(),
                    n.min(65536) * input.other_bytes_per_row,
                ));
            }
        }
        push("write", terms);
    }
    if cfg.model.is_some() {
        let pca = match cfg.reduce {
            Reduce::Pca(_) => d * dim * 8 + d * 8,
            _ => 0,
        };
        push(
            "save_model",
            vec![
                base,
                scratch(0),
                ("labels and scores 8 n".into(), 8 * n),
                (
                    "tensors, twice (f64 PCA, centroids)".into(),
                    2 * (pca + k * dim * s),
                ),
            ],
        );
    }
    MemoryPlan {
        batch_rows: b,
        base_bytes: r,
        limit_bytes: limit,
        budget_bytes: None,
        budget_source: None,
        spill: None,
        stages: out,
    }
}

/// Size of the last-level cache in bytes (Linux sysfs), or 32 MiB where unknown.
fn l3_cache_bytes() -> u64 {
    let read = |i: u32| -> Option<u64> {
        let t =
            std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size"))
                .ok()?;
        let t = t.trim();
        let (num, mult) = match t.strip_suffix('K') {
            Some(v) => (v, 1024),
            None => match t.strip_suffix('M') {
                Some(v) => (v, 1 << 20),
                None => (t, 1),
            },
        };
        num.parse::<u64>().ok().map(|v| v * mult)
    };
    read(3).or_else(|| read(2)).unwrap_or(32 * MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(n: usize, d: usize) -> PlanInput {
        PlanInput {
            n_samples: n,
            n_features: d,
            value_bytes: 4,
            format: Format::Parquet,
            other_bytes_per_row: 16,
            base_bytes: 8 << 20,
            threads: 2,
            decoder_threads: 1,
            remote: false,
        }
    }

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        for bad in ["", "1 parsec", "-1G", "0", "GiB", "1e3"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_plan_shrinks_the_block_to_fit_and_names_the_stage_that_cannot() {
        let mut cfg = RunConfig::new("x.parquet", 50);
        cfg.batch_rows = 0;
        let inp = input(312_000, 1536);
        let free = plan_run(&cfg, &inp, None).unwrap();
        assert_eq!(free.batch_rows, default_batch_rows(1536, 4));
        // block = b * 1536 * 4; a budget just above the rest forces smaller blocks
        let tight = free.stage("transform").unwrap().peak_bytes - 24 * MIB;
        let p = plan_run(&cfg, &inp, Some(tight)).unwrap();
        assert!(p.batch_rows < free.batch_rows);
        assert!(p.peak_bytes() <= tight, "{}", p.describe());
        // the reduced matrix (312000 x 128 x 4 = 152 MiB) cannot shrink with the block: it
        // spills, and every stage fits
        let p = plan_run(&cfg, &inp, Some(170 * MIB)).unwrap();
        assert_eq!(p.spill.as_ref().unwrap().bytes, 312_000 * 128 * 4);
        assert!(p.peak_bytes() <= 170 * MIB, "{}", p.describe());
        // kept in memory, it does not fit
        cfg.spill = crate::jobs::run::Spill::Never;
        let e = plan_run(&cfg, &inp, Some(170 * MIB))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("memory limit 170.0 MiB cannot be met: stage `transform` needs about"),
            "{e}"
        );
        assert!(
            e.contains("reduced data 312000 x 128 x 4 B 152.3 MiB"),
            "{e}"
        );
        assert!(e.contains("fewer components: reduce pca:"), "{e}");
        // the exact fit's d x d matrices and chunk buffers do not shrink with the block
        let e = plan_run(&cfg, &inp, Some(100 * MIB))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stage `pca_fit`") && e.contains("pca_fit sample:N"),
            "{e}"
        );
        // a fixed block is not changed; the message says to change it
        cfg.batch_rows = 16384;
        let p = plan_run(&cfg, &inp, None).unwrap();
        assert_eq!(p.batch_rows, 16384);
        let need = p.stage("transform").unwrap().peak_bytes;
        let e = plan_run(&cfg, &inp, Some(need - 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a smaller batch_rows"), "{e}");
    }

    #[test]
    fn an_exact_fit_of_very_wide_vectors_suggests_a_sample() {
        let mut cfg = RunConfig::new("x.parquet", 10);
        cfg.batch_rows = 0;
        let inp = input(10_000, 8192);
        let e = plan_run(&cfg, &inp, Some(256 * MIB))
            .unwrap_err()
            .to_string();
        assert!(e.contains("stage `pca_"), "{e}");
        assert!(e.contains("pca_fit sample:N"), "{e}");
    }
}

/// The pruned assignment's memory (`cluster::Pruning`): the projected rows and their norms
/// `n (p s + 8)`, the projected centroids `k (p + 3) 4` and a bound tile of
/// `TILE_VALUES` floats per thread; nothing when it does not prune (float64 data, few
/// clusters).
fn pruning_term(
    params: &crate::cluster::KMeansParams,
    n: u64,
    dim: u64,
    k: u64,
    s: u64,
    threads: u64,
) -> (String, u64) {
    match params
        .pruning
        .prefix_dims(n as usize, dim as usize, k as usize)
        .filter(|_| s == 4)
    {
        Some(p) => {
            let p = p as u64;
            (
                format!("pruning: n ({p} s + 8) + k ({p} + 3) 4 + threads x 4 MiB"),
                n * (p * s + 8)
                    + k * (p + 3) * 4
                    + threads * crate::cluster::PRUNE_TILE_VALUES as u64 * 4,
            )
        }
        None => ("pruning: none".into(), 0),
    }
}
