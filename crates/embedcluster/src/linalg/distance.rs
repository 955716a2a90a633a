//! One dissimilarity enum for k-means, neighbours and the silhouette, and what each
//! algorithm accepts of it.
//!
//! | variant | k-means | neighbours | silhouette |
//! |---|---|---|---|
//! | [`Distance::Euclidean`] | yes (minimizes its square) | as `SqEuclidean` | yes |
//! | [`Distance::SqEuclidean`] | no | yes (FAISS `IndexFlatL2`) | yes |
//! | [`Distance::Cosine`] | yes (spherical k-means) | yes (`1 - cos`) | yes |
//! | [`Distance::InnerProduct`] | no | yes (largest first, FAISS `IndexFlatIP`) | no |
//!
//! # Example
//! ```
//! use embedcluster::linalg::Distance;
//! let d: Distance = "cosine".parse().unwrap();
//! assert_eq!(d, Distance::Cosine);
//! assert_eq!(d.name(), "cosine");
//! assert!("manhattan".parse::<Distance>().is_err());
//! ```

use crate::error::{Error, Result};

/// A dissimilarity between rows (see the module docs for who takes which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Distance {
    /// Euclidean distance `|x - y|` (k-means minimizes its square, the inertia).
    #[serde(rename = "euclidean")]
    Euclidean,
    /// Squared Euclidean distance `|x - y|^2`.
    #[serde(rename = "sqeuclidean")]
    SqEuclidean,
    /// Cosine dissimilarity `1 - cos(x, y)` (rows normalized to unit length).
    #[serde(rename = "cosine")]
    Cosine,
    /// Inner product `x.y`, larger is closer.
    #[serde(rename = "ip")]
    InnerProduct,
}

impl Distance {
    /// The name as parsed and serialized: `euclidean`, `sqeuclidean`, `cosine`, `ip`.
    pub fn name(self) -> &'static str {
        match self {
            Distance::Euclidean => "euclidean",
            Distance::SqEuclidean => "sqeuclidean",
            Distance::Cosine => "cosine",
            Distance::InnerProduct => "ip",
        }
    }

    /// `Ok(self)` when it is one of `allowed`, else [`Error::Parameter`] on `metric`
    /// listing them.
    ///
    /// # Errors
    /// [`Error::Parameter`].
    pub fn check_in(self, allowed: &[Distance]) -> Result<Self> {
        if allowed.contains(&self) {
            Ok(self)
        } else {
            Err(unknown(self.name(), allowed))
        }
    }
}

fn unknown(s: &str, allowed: &[Distance]) -> Error {
    let names: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
    Error::param(
        "metric",
        format!("{s:?}"),
        format!("is not valid: expected {}", names.join(", ")),
    )
}

impl std::fmt::Display for Distance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Distance {
    type Err = Error;
    /// `euclidean` (or `l2`), `sqeuclidean`, `cosine`, `ip` (or `inner_product`).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "euclidean" | "l2" => Ok(Distance::Euclidean),
            "sqeuclidean" => Ok(Distance::SqEuclidean),
            "cosine" => Ok(Distance::Cosine),
            "ip" | "inner_product" => Ok(Distance::InnerProduct),
            _ => Err(unknown(
                s,
                &[
                    Distance::Euclidean,
                    Distance::SqEuclidean,
                    Distance::Cosine,
                    Distance::InnerProduct,
                ],
            )),
        }
    }
}
