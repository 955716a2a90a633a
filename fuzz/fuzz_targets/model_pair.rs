//! A manifest whose checksum matches arbitrary tensor bytes loads or fails cleanly (see
//! `embedcluster::fuzzing::model_pair`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| embedcluster::fuzzing::model_pair(data));
