//! Arrays a foreign producer sends through the Arrow C data interface are rejected or
//! decoded, never a panic (see `embedcluster::fuzzing::arrow_ffi_import`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| embedcluster::fuzzing::arrow_ffi_import(data));
