//! The model loader never panics (see `embedcluster::fuzzing::model_loader`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| embedcluster::fuzzing::model_loader(data));
