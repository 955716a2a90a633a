//! `embedcluster` summaries: the core's [`embedcluster::summary::SummaryBuilder`] for texts
//! Python holds (arrays, Arrow tables in memory).

use crate::errors::{to_py, value_error};
use embedcluster::summary::{SummaryBuilder as Core, SummaryParams};
use numpy::{PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// Cluster summaries from labels (int32, -1: left out) and scores (float32) of every row,
/// then texts pushed in row order (`push_texts`, lists of str or None), then `finish()`:
/// `(summaries JSON, info JSON)`. Memory: see the core's `summary` module.
#[pyclass(module = "embedcluster._core")]
pub struct SummaryBuilder {
    inner: Option<Core>,
    /// The labels (the core's builder borrows them per push).
    labels: Vec<i32>,
}

#[pymethods]
impl SummaryBuilder {
    #[new]
    #[pyo3(signature = (labels, scores, n_clusters, higher_is_closer=true, n_representatives=5, n_keywords=10, max_entries=524288))]
    fn new(
        labels: PyReadonlyArray1<'_, i32>,
        scores: PyReadonlyArray1<'_, f32>,
        n_clusters: usize,
        higher_is_closer: bool,
        n_representatives: usize,
        n_keywords: usize,
        max_entries: usize,
    ) -> PyResult<Self> {
        if !labels.is_c_contiguous() || !scores.is_c_contiguous() {
            return Err(value_error("labels and scores must be contiguous"));
        }
        let params = SummaryParams {
            n_representatives,
            n_keywords,
            max_entries,
            higher_is_closer,
        };
        let labels = labels.as_slice()?.to_vec();
        let b = Core::new(&labels, scores.as_slice()?, n_clusters, params).map_err(to_py)?;
        Ok(SummaryBuilder {
            inner: Some(b),
            labels,
        })
    }

    /// The texts of the next rows (None: a null or no text).
    fn push_texts(&mut self, texts: Vec<Option<String>>) -> PyResult<()> {
        let b = self
            .inner
            .as_mut()
            .ok_or_else(|| value_error("the summaries are finished"))?;
        let at = b.rows_pushed() as usize;
        let Some(labels) = self.labels.get(at..at + texts.len()) else {
            return Err(value_error(format!(
                "more texts than the {} rows of labels",
                self.labels.len()
            )));
        };
        b.push_texts(labels, texts.iter().map(|t| t.as_deref()))
            .map_err(to_py)
    }

    /// `(summaries JSON, info JSON)`; the builder is spent.
    fn finish(&mut self) -> PyResult<(String, String)> {
        let b = self
            .inner
            .take()
            .ok_or_else(|| value_error("the summaries are finished"))?;
        let (s, info) = b.finish();
        let j = |e: serde_json::Error| value_error(format!("summary: {e}"));
        Ok((
            serde_json::to_string(&s).map_err(j)?,
            serde_json::to_string(&info).map_err(j)?,
        ))
    }
}
