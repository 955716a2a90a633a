//! The element types the core computes in: `f32` and `f64`.
//!
//! Data keeps the dtype it arrives in (no f32 -> f64 upcast of the data); accumulators
//! (means, co-moments, centroid sums) are always `f64`.

/// Element dtype of a file or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Float32,
    Float64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Float32 => 4,
            DType::Float64 => 8,
        }
    }
    /// numpy-style name (`float32`, `float64`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }
}

/// A floating-point element type usable with faer's GEMM.
pub trait Real:
    faer::traits::RealField + Copy + Default + Send + Sync + std::fmt::Debug + 'static
{
    /// The matching [`DType`].
    const DTYPE: DType;
    /// The matching Arrow primitive type.
    type ArrowType: arrow_array::types::ArrowPrimitiveType<Native = Self>;
    /// The matching Arrow data type.
    fn arrow_type() -> arrow_schema::DataType;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_f32(x: f32) -> Self;
    fn is_finite(self) -> bool;
    fn sqrt(self) -> Self;
    const ZERO: Self;
    const ONE: Self;
}

impl Real for f32 {
    const DTYPE: DType = DType::Float32;
    type ArrowType = arrow_array::types::Float32Type;
    fn arrow_type() -> arrow_schema::DataType {
        arrow_schema::DataType::Float32
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Real for f64 {
    const DTYPE: DType = DType::Float64;
    type ArrowType = arrow_array::types::Float64Type;
    fn arrow_type() -> arrow_schema::DataType {
        arrow_schema::DataType::Float64
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f32(x: f32) -> Self {
        x as f64
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}
