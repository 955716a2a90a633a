//! Synthetic embedding-like data: our benchmark workload (`embedcluster generate`).
//!
//! # Model
//! * A common mean direction `m` (a random unit vector): real sentence embeddings are
//!   anisotropic, they share a dominant direction.
//! * `K` topic centres `c_j = normalize(m + u_j)` with `u_j = normalize(Q (s^2 * g_j))`,
//!   `g_j ~ N(0, I_d)`: topic offsets decay faster than the noise (spectrum `i^-1`), so the
//!   topics lie along the dominant directions of the data, as in real embeddings where PCA
//!   keeps the topic structure (99.6 % of the offset variance is in the first 128 of 1536
//!   directions); two centres have cosine similarity about 0.5.
//! * Noise with a decaying spectrum: `e = sigma * Q (s * z)`, `z ~ N(0, I_d)`, `Q` a random
//!   orthonormal basis (QR of a Gaussian matrix), `s_i` proportional to `i^-0.5` and scaled
//!   so that `sum s_i^2 = 1` (so `E|e|^2 = sigma^2`).
//! * Each row: label `y` uniform in `0..K`, vector `normalize(c_y + e)`.
//! * `sigma` is calibrated on a pilot sample (bisection) so that assigning every row to its
//!   nearest true centre (cosine) gives an adjusted Rand index of about
//!   [`TARGET_TRUE_CENTRE_ARI`]: the clusters overlap, as real topics do.
//!
//! Rows are produced in blocks of [`GEN_BLOCK_ROWS`] with a generator seeded by
//! `(seed, block)`, so the output depends only on the arguments, and only one block is in
//! memory: peak `GEN_BLOCK_ROWS * d * 4 * 3` bytes + `Q` (`d^2 * 4`) + the writer's row group.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::io::{write_npy_header, AtomicFile, Format};
use crate::linalg::{gemm_nt, par};
use crate::metrics::adjusted_rand_score;
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Int32Array, Int64Array, RecordBatch,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rayon::prelude::*;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Rows generated (and written as one Parquet row group) at a time.
pub const GEN_BLOCK_ROWS: usize = 8192;
/// ARI of the true-centre assignment the noise scale is calibrated to.
pub const TARGET_TRUE_CENTRE_ARI: f64 = 0.92;

/// Parameters of [`generate`].
#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub n_samples: usize,
    pub n_features: usize,
    pub n_clusters: usize,
    pub seed: u64,
    /// Noise scale; `None` calibrates it (see module docs).
    pub noise: Option<f64>,
}

/// The generator's fixed parts.
pub struct Generator {
    p: GenerateParams,
    centers: Vec<f32>,
    /// Rows are `s_i * Q[:, i]`, i.e. the noise map scaled by the spectrum, row-major d x d:
    /// noise = z * basis (a GEMM with `basis^T` given as rows of `basis_t`).
    basis_t: Vec<f32>,
    sigma: f64,
}

fn rng_for(seed: u64, stream: u64) -> rand::rngs::StdRng {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    rand::rngs::StdRng::seed_from_u64(z ^ (z >> 31))
}

fn normalize(v: &mut [f32]) {
    let n = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    if n > 0.0 {
        let inv = (1.0 / n) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

impl Generator {
    /// Draws the centres and noise basis, and calibrates the noise scale.
    pub fn new(p: GenerateParams) -> Result<Self> {
        let (d, k) = (p.n_features, p.n_clusters);
        if d < 2 || k < 1 {
            return Err(Error::param_msg(
                "n_features",
                "need n_features >= 2 and n_clusters >= 1",
            ));
        }
        let mut rng = rng_for(p.seed, u64::MAX);
        let normal_vec = |len: usize, rng: &mut rand::rngs::StdRng| -> Vec<f32> {
            (0..len)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect()
        };
        let mut m = normal_vec(d, &mut rng);
        normalize(&mut m);
        let g = faer::Mat::<f64>::from_fn(d, d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let q = g.qr().compute_thin_Q();
        let s: Vec<f64> = (1..=d).map(|i| (i as f64).powf(-0.5)).collect();
        let norm = s.iter().map(|x| x * x).sum::<f64>().sqrt();
        // basis_t[j][i] = s_i * Q[j][i]: noise_row (1 x d) = z (1 x d) * (S Q^T), and
        // gemm_nt(out, z, basis_t) computes z * basis_t^T.
        let basis_t: Vec<f32> = (0..d * d)
            .map(|idx| {
                let (j, i) = (idx / d, idx % d);
                (q[(j, i)] * s[i] / norm) as f32
            })
            .collect();
        // Topic offsets share the noise's spectrum: the topics lie along the dominant
        // directions of the data, as in real embeddings (so PCA keeps them).
        let mut g = normal_vec(k * d, &mut rng);
        for row in g.chunks_exact_mut(d) {
            row.iter_mut().zip(&s).for_each(|(v, &si)| *v *= si as f32);
        }
        let mut offsets = vec![0.0f32; k * d];
        gemm_nt(&mut offsets, &g, &basis_t, k, d, d, 1.0, false, par());
        let mut centers = Vec::with_capacity(k * d);
        for u in offsets.chunks_exact_mut(d) {
            normalize(u);
            let mut c: Vec<f32> = m.iter().zip(u.iter()).map(|(a, b)| a + b).collect();
            normalize(&mut c);
            centers.extend(c);
        }
        let mut gen = Generator {
            p,
            centers,
            basis_t,
            sigma: 0.0,
        };
        gen.sigma = match gen.p.noise {
            Some(s) => s,
            None => gen.calibrate(),
        };
        Ok(gen)
    }

    /// The noise scale in use.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Rows `[block * GEN_BLOCK_ROWS, ...)`: fills `x` (`rows x d`) and `labels`.
    fn block(
        &self,
        block: u64,
        rows: usize,
        sigma: f64,
        x: &mut Vec<f32>,
        z: &mut Vec<f32>,
        labels: &mut Vec<i32>,
    ) {
        let d = self.p.n_features;
        const SUB: usize = 256;
        z.resize(rows * d, 0.0);
        labels.resize(rows, 0);
        z.par_chunks_mut(SUB * d)
            .zip(labels.par_chunks_mut(SUB))
            .enumerate()
            .for_each(|(sb, (zc, lc))| {
                let mut rng = rng_for(self.p.seed, block * 1024 + sb as u64);
                for l in lc.iter_mut() {
                    *l = rng.random_range(0..self.p.n_clusters) as i32;
                }
                for v in zc.iter_mut() {
                    *v = rng.sample::<f32, _>(StandardNormal);
                }
            });
        x.resize(rows * d, 0.0);
        gemm_nt(x, z, &self.basis_t, rows, d, d, sigma as f32, false, par());
        x.par_chunks_mut(d)
            .zip(labels.par_iter())
            .for_each(|(row, &l)| {
                let c = &self.centers[l as usize * d..(l as usize + 1) * d];
                row.iter_mut().zip(c).for_each(|(v, &cv)| *v += cv);
                normalize(row);
            });
    }

    /// ARI of the nearest-true-centre assignment on a pilot block, for noise `sigma`.
    fn true_centre_ari(&self, sigma: f64, pilot_rows: usize) -> f64 {
        let (d, k) = (self.p.n_features, self.p.n_clusters);
        let (mut x, mut z, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        self.block(
            u64::MAX / 2048,
            pilot_rows,
            sigma,
            &mut x,
            &mut z,
            &mut labels,
        );
        let mut dots = vec![0.0f32; pilot_rows * k];
        gemm_nt(
            &mut dots,
            &x,
            &self.centers,
            pilot_rows,
            k,
            d,
            1.0,
            false,
            par(),
        );
        let pred: Vec<i64> = dots
            .chunks_exact(k)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, f32::MIN), |b, (j, &v)| if v > b.1 { (j, v) } else { b })
                    .0 as i64
            })
            .collect();
        let truth: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        adjusted_rand_score(&truth, &pred).expect("same length")
    }

    fn calibrate(&self) -> f64 {
        if self.p.n_clusters < 2 {
            return 0.5;
        }
        let pilot = (200 * self.p.n_clusters).clamp(2000, 8192);
        // ARI falls as sigma grows: bisect on log sigma.
        let (mut lo, mut hi) = (1e-3f64, 1e3f64);
        for _ in 0..30 {
            let mid = (lo * hi).sqrt();
            if self.true_centre_ari(mid, pilot) > TARGET_TRUE_CENTRE_ARI {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi / lo < 1.01 {
                break;
            }
        }
        (lo * hi).sqrt()
    }

    /// Writes all rows to `path` (`.parquet`: columns `id` int64, `label` int32,
    /// `embedding` fixed_size_list<float32>[d]; `.npy`: float32 matrix and a sibling
    /// `<stem>.labels.npy`-free design: labels go to `<path>.labels.txt`, one per line).
    /// Calls `progress(rows_done)` after each block. Returns the noise scale used.
    pub fn write(&self, path: &Path, progress: &(dyn Fn(u64) + Sync)) -> Result<f64> {
        let (n, d) = (self.p.n_samples, self.p.n_features);
        let format = Format::from_path(path)?;
        let mut out = AtomicFile::create(path)?;
        let (mut x, mut z, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        let blocks = n.div_ceil(GEN_BLOCK_ROWS);
        if !matches!(format, Format::Parquet | Format::Npy) {
            return Err(Error::param_msg(
                "output",
                "generate writes .parquet or .npy (CSV would be large and slow to read)",
            ));
        }
        match format {
            Format::Parquet => {
                let rows = AtomicU64::new(0);
                self.write_parquet(out.try_clone()?, path, 0..blocks, &rows, progress)?;
            }
            _ => {
                let mut labels_out = AtomicFile::create(path.with_extension("labels.txt"))?;
                {
                    let mut lw = BufWriter::new(labels_out.file());
                    let mut bw = BufWriter::with_capacity(1 << 20, out.file());
                    write_npy_header(&mut bw, DType::Float32, n, d)
                        .map_err(|e| Error::io(path, e))?;
                    for b in 0..blocks {
                        let start = b * GEN_BLOCK_ROWS;
                        let rows = GEN_BLOCK_ROWS.min(n - start);
                        self.block(b as u64, rows, self.sigma, &mut x, &mut z, &mut labels);
                        for v in &x {
                            bw.write_all(&v.to_le_bytes())
                                .map_err(|e| Error::io(path, e))?;
                        }
                        for l in &labels {
                            writeln!(lw, "{l}").map_err(|e| Error::io(path, e))?;
                        }
                        progress((start + rows) as u64);
                    }
                    bw.flush().map_err(|e| Error::io(path, e))?;
                    lw.flush().map_err(|e| Error::io(path, e))?;
                }
                labels_out.commit()?;
            }
        }
        out.commit()?;
        Ok(self.sigma)
    }
}

impl Generator {
    /// Writes blocks `range` as Parquet into `file` (columns `id` int64, `label` int32,
    /// `embedding` fixed_size_list<float32>[d]; one row group per block); adds the rows to
    /// `done` and reports its total to `progress`.
    fn write_parquet(
        &self,
        file: std::fs::File,
        path: &Path,
        range: std::ops::Range<usize>,
        done: &AtomicU64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<std::fs::File> {
        let (n, d) = (self.p.n_samples, self.p.n_features);
        let (mut x, mut z, mut labels) = (Vec::new(), Vec::new(), Vec::new());
        let item = Arc::new(Field::new_list_field(DataType::Float32, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("label", DataType::Int32, false),
            Field::new(
                "embedding",
                DataType::FixedSizeList(item.clone(), d as i32),
                false,
            ),
        ]));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .set_max_row_group_row_count(Some(GEN_BLOCK_ROWS))
            .build();
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| Error::write(path, e))?;
        for b in range {
            let start = b * GEN_BLOCK_ROWS;
            let rows = GEN_BLOCK_ROWS.min(n - start);
            self.block(b as u64, rows, self.sigma, &mut x, &mut z, &mut labels);
            let values = Float32Array::from(std::mem::take(&mut x));
            let emb = FixedSizeListArray::try_new(item.clone(), d as i32, Arc::new(values), None)
                .map_err(|e| Error::write(path, e))?;
            let cols: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(
                    start as i64..(start + rows) as i64,
                )),
                Arc::new(Int32Array::from(labels.clone())),
                Arc::new(emb),
            ];
            let batch =
                RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::write(path, e))?;
            w.write(&batch).map_err(|e| Error::write(path, e))?;
            let total = done.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
            progress(total);
        }
        w.into_inner().map_err(|e| Error::write(path, e))
    }
}

/// Generates `params.n_samples` rows into `path`; see the module docs. Returns sigma.
pub fn generate(
    params: GenerateParams,
    path: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<f64> {
    if params.n_samples == 0 {
        return Err(Error::param("n_samples", 0, "must be at least 1"));
    }
    Generator::new(params)?.write(path, progress)
}

/// Generates the same rows as [`generate`] as a dataset: `parts` Parquet files
/// `part-00000.parquet`, ... in the directory `dir` (created; it appears only complete),
/// each holding whole blocks of [`GEN_BLOCK_ROWS`] rows, so that the parts read in order
/// are exactly the rows of the single file. Parts are generated in parallel on the pool
/// (the result does not depend on the thread count). Returns sigma.
///
/// Peak memory: one block (`GEN_BLOCK_ROWS d 4 x 3` bytes) and one row group per thread,
/// plus `Q` (`d^2 4`).
///
/// # Errors
/// [`Error::Parameter`] when `parts` is 0 or more than the blocks; [`Error::Io`] when `dir`
/// cannot be created.
pub fn generate_parts(
    params: GenerateParams,
    dir: &Path,
    parts: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<f64> {
    if params.n_samples == 0 {
        return Err(Error::param("n_samples", 0, "must be at least 1"));
    }
    let blocks = params.n_samples.div_ceil(GEN_BLOCK_ROWS);
    if parts == 0 || parts > blocks {
        return Err(Error::param(
            "parts",
            parts,
            format!("must be between 1 and the number of {GEN_BLOCK_ROWS}-row blocks ({blocks})"),
        ));
    }
    let g = Generator::new(params)?;
    let staged = crate::io::StagedDir::create(dir)?;
    let names: Vec<std::path::PathBuf> = (0..parts)
        .map(|p| format!("part-{p:05}.parquet").into())
        .collect();
    let rows = AtomicU64::new(0);
    names
        .par_iter()
        .enumerate()
        .map(|(p, name)| {
            let range = (p * blocks / parts)..((p + 1) * blocks / parts);
            let file = staged.create_file(name)?;
            let target = staged.target_of(name);
            let file = g.write_parquet(file, &target, range, &rows, progress)?;
            file.sync_all().map_err(|e| Error::io(&target, e))
        })
        .collect::<Result<Vec<()>>>()?;
    staged.commit(&names)?;
    Ok(g.sigma)
}
