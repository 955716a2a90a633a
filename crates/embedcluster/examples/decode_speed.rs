//! Rows per second of one streaming pass over a Parquet or `.npy` file's embedding column
//! into float32 blocks (decode, the finiteness check, the copy into the block), on a pool of
//! THREADS threads with THREADS decoder threads. `bench/decode.py` runs it beside pyarrow.
//!
//! `cargo run --release --example decode_speed -- FILE THREADS`

use embedcluster::io::EmbeddingSource;

fn main() -> embedcluster::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: decode_speed FILE THREADS");
        std::process::exit(2);
    }
    let threads: usize = args[2].parse().expect("THREADS is a number");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| {
        let mut src = EmbeddingSource::open(&args[1], "embedding")?;
        src.set_decoder_threads(threads);
        let b = embedcluster::jobs::plan::default_batch_rows(src.n_features(), 4);
        let t = std::time::Instant::now();
        let mut reader = src.blocks::<f32>(b)?;
        let mut n = 0usize;
        let mut check = 0.0f64;
        while let Some(block) = reader.next_block()? {
            n += block.rows;
            check += block.data[0] as f64;
        }
        let s = t.elapsed().as_secs_f64();
        println!("{n} {s:.6} {check}");
        Ok(())
    })
}
