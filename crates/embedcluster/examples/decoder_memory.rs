//! Measures what one streaming pass holds beyond its block: the reader's decoder buffers
//! (Parquet pages, levels, the Arrow batch) or the mapped pages of a `.npy` file. The
//! coefficients of the memory plan's `dec` term (`crate::plan`) come from this.
//!
//! `cargo run --release --example decoder_memory -- FILE BATCH_ROWS`

use embedcluster::io::EmbeddingSource;
use embedcluster::memory::{current_rss_bytes, peak_rss_bytes, reset_peak_rss, trim_heap};

fn main() -> embedcluster::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: decoder_memory FILE BATCH_ROWS");
        std::process::exit(2);
    }
    let src = EmbeddingSource::open(&args[1], "embedding")?;
    let b: usize = args[2].parse().expect("BATCH_ROWS is a number");
    trim_heap();
    let start = current_rss_bytes();
    reset_peak_rss();
    let mut reader = src.blocks::<f32>(b)?;
    let mut n = 0;
    while let Some(block) = reader.next_block()? {
        n += block.rows;
    }
    let mib = |x: f64| x / (1u64 << 20) as f64;
    let block = (b * src.n_features() * 4) as f64;
    let extra = peak_rss_bytes().saturating_sub(start) as f64 - block;
    println!(
        "{n} rows x {}: start {:.1} MiB, block {:.1} MiB, decoder {:.1} MiB",
        src.n_features(),
        mib(start as f64),
        mib(block),
        mib(extra)
    );
    Ok(())
}
