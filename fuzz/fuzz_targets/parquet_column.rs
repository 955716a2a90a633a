//! Decoding a Parquet embedding column never panics (see
//! `embedcluster::fuzzing::parquet_column`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Panics inside the parquet crate are caught by our reader and become errors; keep
    // libFuzzer's hook from aborting on those. A panic that escapes still crashes.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let path =
        std::env::temp_dir().join(format!("embedcluster-fuzz-{}.parquet", std::process::id()));
    embedcluster::fuzzing::parquet_column(data, &path);
});
