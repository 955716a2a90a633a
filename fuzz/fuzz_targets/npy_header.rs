//! The `.npy` header parser never panics (see `embedcluster::fuzzing::npy_header`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| embedcluster::fuzzing::npy_header(data));
