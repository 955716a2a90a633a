//! Batches from another producer through the Arrow C stream interface (the PyCapsule
//! protocol's `__arrow_c_stream__`: pyarrow, polars, DuckDB, Spark's `toArrow()`), each
//! validated in full before any array is built from it.
//!
//! arrow-rs imports C-interface arrays without checking them (its `from_ffi` builds the
//! `ArrayData` unchecked) and its stream reader builds the batch's arrays at once, so a
//! producer's inconsistent lengths, offsets or child lengths panicked inside arrow-rs (our
//! `arrow_ffi_import` fuzz target found a `fixed_size_list` whose child is too short) or
//! reached the decoder. Here they are an [`Error::Format`] naming the stream. What the C
//! interface cannot check (buffers shorter than the lengths the producer declares) stays
//! the producer's promise.

use crate::error::{Error, Result};
use arrow_array::ffi::{from_ffi_and_data_type, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchOptions, StructArray};
use arrow_schema::{DataType, Schema, SchemaRef};
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A C stream moved out of its producer's struct: its schema, then validated batches.
pub struct ForeignStream {
    stream: FFI_ArrowArrayStream,
    schema: SchemaRef,
    origin: PathBuf,
}

impl std::fmt::Debug for ForeignStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignStream")
            .field("schema", &self.schema)
            .field("origin", &self.origin)
            .finish()
    }
}

impl ForeignStream {
    /// Takes the stream at `raw` (which is left released) and reads its schema; `origin`
    /// names the stream in errors (e.g. `<arrow stream>`).
    ///
    /// # Safety
    /// `raw` points to an `ArrowArrayStream` as the C stream interface defines it.
    ///
    /// # Errors
    /// [`Error::Format`] when the stream is released, lacks a callback, its producer
    /// reports an error, or its schema is not a struct of fields.
    pub unsafe fn from_raw(raw: *mut FFI_ArrowArrayStream, origin: &Path) -> Result<Self> {
        // SAFETY: the caller's promise; from_raw leaves a released stream behind.
        let stream = unsafe { FFI_ArrowArrayStream::from_raw(raw) };
        let mut s = ForeignStream {
            stream,
            schema: Arc::new(Schema::empty()),
            origin: origin.to_path_buf(),
        };
        if s.stream.release().is_none() {
            return Err(s.error("the stream is already released".into()));
        }
        let Some(get_schema) = s.stream.get_schema() else {
            return Err(s.error("the stream has no get_schema callback".into()));
        };
        let mut schema = FFI_ArrowSchema::empty();
        // SAFETY: the callback is the stream's own, called with that stream.
        let rc = unsafe { get_schema(&mut s.stream, &mut schema) };
        if rc != 0 {
            let m = s.producer_error(rc, "schema");
            return Err(s.error(m));
        }
        match DataType::try_from(&schema) {
            Ok(DataType::Struct(fields)) => s.schema = Arc::new(Schema::new(fields)),
            Ok(other) => {
                return Err(s.error(format!("the stream's schema is a {other}, not a struct")))
            }
            Err(e) => return Err(s.error(format!("the stream's schema: {e}"))),
        }
        Ok(s)
    }

    /// The stream's schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn error(&self, message: String) -> Error {
        Error::format(&self.origin, message)
    }

    fn producer_error(&mut self, rc: i32, what: &str) -> String {
        let mut m = format!("the producer failed to give the next {what} (error code {rc})");
        if let Some(get_last_error) = self.stream.get_last_error() {
            // SAFETY: the stream's own callback; the string is the producer's, copied now.
            let p = unsafe { get_last_error(&mut self.stream) };
            if !p.is_null() {
                m += &format!(": {}", unsafe { CStr::from_ptr(p) }.to_string_lossy());
            }
        }
        m
    }
}

impl Iterator for ForeignStream {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let Some(get_next) = self.stream.get_next() else {
            return Some(Err(self.error("the stream has no get_next callback".into())));
        };
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: the stream's own callback, called with that stream.
        let rc = unsafe { get_next(&mut self.stream, &mut array) };
        if rc != 0 {
            let m = self.producer_error(rc, "batch");
            return Some(Err(self.error(m)));
        }
        if array.is_released() {
            return None; // the end of the stream
        }
        // SAFETY: the producer made `array` for this stream's schema.
        Some(unsafe { import_batch(array, &self.schema, &self.origin) })
    }
}

/// One C-interface array as a batch of `schema`: imported, then validated in full (offsets
/// and child lengths, null bitmaps, recursively) before the batch's arrays are built.
///
/// # Safety
/// `array` is an `ArrowArray` whose buffers are as long as its declared lengths need, for
/// a struct of `schema`'s fields (the C data interface's contract).
///
/// # Errors
/// [`Error::Format`] naming `origin`, with arrow-rs's reason.
pub unsafe fn import_batch(
    array: FFI_ArrowArray,
    schema: &SchemaRef,
    origin: &Path,
) -> Result<RecordBatch> {
    let bad = |m: String| Error::format(origin, m);
    let dt = DataType::Struct(schema.fields().clone());
    // SAFETY: the caller's promise.
    let data = unsafe { from_ffi_and_data_type(array, dt) }
        .map_err(|e| bad(format!("cannot import a batch: {e}")))?;
    data.validate_full()
        .map_err(|e| bad(format!("an inconsistent Arrow batch: {e}")))?;
    let len = data.len();
    RecordBatch::try_new_with_options(
        schema.clone(),
        StructArray::from(data).into_parts().1,
        &RecordBatchOptions::new().with_row_count(Some(len)),
    )
    .map_err(|e| bad(format!("an inconsistent Arrow batch: {e}")))
}
