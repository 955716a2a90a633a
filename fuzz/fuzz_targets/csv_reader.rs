//! The CSV reader never panics, and what it reads is whole finite rows (see
//! `embedcluster::fuzzing::csv_reader`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("embedcluster-fuzz-{}.csv", std::process::id()));
    embedcluster::fuzzing::csv_reader(data, &path);
});
