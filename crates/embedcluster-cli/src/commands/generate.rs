//! `embedcluster generate`: synthetic labelled embeddings.

use crate::args::GenerateArgs;
use crate::render::{runtime, Bars};
use embedcluster::jobs::generate::{generate, generate_parts, GenerateParams};
use embedcluster::runtime::Progress;

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    let bars = Bars::new();
    let rt = runtime(a.threads, &bars);
    let start = std::time::Instant::now();
    bars.begin("generate", Some(a.n_samples as u64));
    let done = std::sync::atomic::AtomicU64::new(0);
    let params = GenerateParams {
        n_samples: a.n_samples,
        n_features: a.n_features,
        n_clusters: a.n_clusters,
        seed: a.seed,
        noise: a.noise,
    };
    let progress = |rows: u64| {
        let before = done.fetch_max(rows, std::sync::atomic::Ordering::Relaxed);
        bars.advance(rows.saturating_sub(before));
    };
    let as_dir = a.parts.is_some() || a.output.as_os_str().to_string_lossy().ends_with('/');
    let sigma = rt.install(|| match as_dir {
        true => generate_parts(params, &a.output, a.parts.unwrap_or(16), &progress),
        false => generate(params, &a.output, &progress),
    })?;
    bars.end();
    eprintln!(
        "wrote {} rows x {} features, {} clusters (noise sigma {sigma:.4}) to {} in {:.1} s",
        a.n_samples,
        a.n_features,
        a.n_clusters,
        a.output.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
