//! Byte counts as people read them.

/// Bytes in a mebibyte.
pub const MIB: u64 = 1 << 20;

/// Formats bytes with a binary unit: `512 B`, `3.2 KiB`, `152.3 MiB`, `1.25 GiB`.
pub fn format_bytes(b: u64) -> String {
    let f = b as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", f / (1u64 << 30) as f64)
    } else if f >= MIB as f64 {
        format!("{:.1} MiB", f / MIB as f64)
    } else if f >= 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{b} B")
    }
}
