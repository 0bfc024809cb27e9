//! A sweep's outcome map as data (tables of cells over two of its axes):
//! [`super::outcome`] builds it and writes it as JSON and Markdown,
//! [`super::heatmap`] draws it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Verdict;

/// One cell: a run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub id: String,
    pub row: String,
    pub column: String,
    pub verdict: Verdict,
    pub measured: String,
    pub predicted: String,
    /// The run passed: what was measured is what the oracle predicted.
    pub agrees: bool,
    pub borderline: bool,
    /// The figures the picture colours by (`None`: the run measured
    /// nothing, skipped or errored before its I/O).
    pub first_error_s: Option<f64>,
    pub max_stall_s: Option<f64>,
}

/// One table: the runs of one scenario on one target at one value of
/// every other axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    /// The scenario's name without its sweep point.
    pub scenario: String,
    pub target: String,
    /// The other axes' values.
    pub fixed: BTreeMap<String, String>,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub row_axis: String,
    /// `None` for a sweep of one axis.
    pub column_axis: Option<String>,
    pub tables: Vec<Table>,
}
