//! Reports people look at: self-contained HTML pages (`run --html`, `sweep --html`,
//! `evaluate --html`, Python's `result.to_html()` and notebooks' `_repr_html_`) and the SVG
//! pictures of `--plot`.
//!
//! A page needs no network and no JavaScript: inline CSS, pictures as inline SVG drawn with
//! plotters, memory bars as CSS widths. Every text from the data (paths, keywords,
//! representative texts) is HTML-escaped. The renderers return strings; the front ends
//! write them (atomically).
//!
//! The run page has these sections (each a `<section id=...>`): `overview` (the fit's
//! figures), `memory` (per stage: seconds, rows, measured and predicted peak RSS as bars),
//! `sizes` (cluster sizes, largest first), `map` (the centroids on their first two principal
//! components, each a disc with area proportional to its cluster's size), `summaries`
//! (keywords and representative texts per cluster, largest first) and `warnings`.

use crate::decomposition::CovarianceAccumulator;
use crate::error::{Error, Result};
use crate::jobs::evaluate::EvaluateReport;
use crate::jobs::sweep::SweepReport;
use crate::memory::{format_bytes, StageReport};
use crate::summary::ClusterSummary;
use plotters::prelude::*;
use std::fmt::Write as _;

type DynErr = Box<dyn std::error::Error>;

fn draw_err(e: DynErr) -> Error {
    Error::Numerical(format!("cannot draw the picture: {e}"))
}

/// What the run page shows of a run report: the fields of
/// [`crate::jobs::run::RunReport`]'s JSON that it uses (others are ignored), so a report
/// read back from JSON (Python's `result.report`) renders as the live one.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunView {
    pub input: String,
    pub dtype: String,
    pub n_samples: u64,
    pub n_features: u64,
    pub n_components: u64,
    pub n_clusters: u64,
    pub metric: serde_json::Value,
    pub reduce: String,
    pub pca_fit: Option<String>,
    pub n_iter: u64,
    pub converged: bool,
    pub objective: f64,
    pub explained_variance_ratio_sum: Option<f64>,
    pub cluster_sizes: Vec<u64>,
    pub ari: Option<f64>,
    pub nmi: Option<f64>,
    pub threads: u64,
    pub seed: u64,
    pub batch_rows: u64,
    pub skipped_rows: u64,
    pub warnings: Vec<String>,
    pub stages: Vec<StageReport>,
    pub peak_rss_bytes: u64,
    pub text_column: Option<String>,
    pub memory_plan: Option<PlanView>,
}

/// The parts of the memory plan the page shows.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PlanView {
    pub batch_rows: u64,
    pub budget_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
}

impl RunView {
    /// The view of a report (any `Serialize` with the run report's fields).
    ///
    /// # Errors
    /// [`Error::Parameter`] when `report` does not serialize to such an object.
    pub fn of<R: serde::Serialize>(report: &R) -> Result<RunView> {
        let v =
            serde_json::to_value(report).map_err(|e| Error::param_msg("report", e.to_string()))?;
        serde_json::from_value(v).map_err(|e| Error::param_msg("report", e.to_string()))
    }

    /// The view of a run report's JSON text.
    ///
    /// # Errors
    /// [`Error::Parameter`] when it is not such JSON.
    pub fn from_json(json: &str) -> Result<RunView> {
        serde_json::from_str(json).map_err(|e| Error::param_msg("report", e.to_string()))
    }
}

fn metric_name(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    }
}

/// HTML-escapes `s` (`& < > " '`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The centroids' coordinates on their first two principal components (unweighted PCA of
/// the `k` rows of `centers`, `k x dim` row-major): `k` points. Fewer than 2 centroids or
/// dimensions, or centroids that do not vary, give zeros on the missing axes. Memory:
/// `O(dim^2)` besides the output.
pub fn centroid_map(centers: &[f64], dim: usize) -> Vec<[f64; 2]> {
    let k = if dim == 0 { 0 } else { centers.len() / dim };
    let mut out = vec![[0.0; 2]; k];
    if k < 2 {
        return out;
    }
    let axes = dim.min(2);
    let mut acc = CovarianceAccumulator::<f64>::new(dim);
    acc.push(&centers[..k * dim]);
    let Ok(pca) = acc.finish().finish(axes) else {
        return out;
    };
    let mut proj = vec![0.0; k * axes];
    if pca
        .transformer::<f64>()
        .transform(&centers[..k * dim], &mut proj)
        .is_err()
    {
        return out;
    }
    for (o, p) in out.iter_mut().zip(proj.chunks_exact(axes)) {
        o[..axes].copy_from_slice(p);
    }
    out
}

const CSS: &str = "\
.ec{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1d2330;max-width:1100px;margin:0 auto;padding:0 16px 40px;line-height:1.4}\
.ec h1{font-size:1.5em;margin:18px 0 4px}.ec h2{font-size:1.2em;margin:26px 0 8px;border-bottom:1px solid #d8dce4;padding-bottom:4px}\
.ec .sub{color:#5a6275;margin:0 0 12px}\
.ec table{border-collapse:collapse;font-size:0.9em;margin:4px 0}\
.ec th,.ec td{text-align:left;padding:4px 10px;border-bottom:1px solid #e6e8ee;vertical-align:top}\
.ec th{background:#f3f5f9;font-weight:600}.ec td.n{text-align:right;font-variant-numeric:tabular-nums}\
.ec .figs{display:flex;flex-wrap:wrap;gap:10px}.ec .fig{background:#f3f5f9;border-radius:6px;padding:8px 12px;min-width:110px}\
.ec .fig b{display:block;font-size:1.15em}.ec .fig span{color:#5a6275;font-size:0.8em}\
.ec .bar{height:9px;border-radius:2px;margin:2px 0}.ec .bar.m{background:#d64545}.ec .bar.p{background:#8a94a8}\
.ec .bars{width:260px}.ec .kw{color:#234a9c;font-weight:600}.ec .rep{color:#39404f;font-size:0.92em;margin:2px 0}\
.ec .warn{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px;margin:4px 0}\
.ec svg{max-width:100%;height:auto}.ec .legend{font-size:0.8em;color:#5a6275}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head><body><main class=\"ec\">{body}</main></body></html>\n",
        escape(title)
    )
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

fn fig(out: &mut String, value: &str, what: &str) {
    let _ = write!(
        out,
        "<div class=\"fig\"><b>{}</b><span>{}</span></div>",
        escape(value),
        escape(what)
    );
}

/// The stage table with measured and predicted peak RSS as bars (the `memory` section's
/// content; also what notebooks show).
pub fn stage_table(stages: &[StageReport]) -> String {
    let max = stages
        .iter()
        .map(|s| {
            s.peak_rss_bytes
                .max(s.predicted_peak_rss_bytes.unwrap_or(0))
        })
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut out = String::from(
        "<table class=\"stages\"><tr><th>stage</th><th>seconds</th><th>CPU seconds</th><th>rows</th>\
<th>peak RSS</th><th>predicted</th><th class=\"bars\">measured <span style=\"color:#d64545\">&#9632;</span> \
/ predicted <span style=\"color:#8a94a8\">&#9632;</span></th></tr>",
    );
    for s in stages {
        let pred = s.predicted_peak_rss_bytes;
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"bars\"><div class=\"bar m\" style=\"width:{:.1}%\"></div>{}</td></tr>",
            escape(&s.name),
            s.seconds,
            s.cpu_seconds,
            s.rows,
            format_bytes(s.peak_rss_bytes),
            pred.map(format_bytes).unwrap_or_else(|| "-".into()),
            100.0 * s.peak_rss_bytes as f64 / max,
            pred.map(|p| format!("<div class=\"bar p\" style=\"width:{:.1}%\"></div>", 100.0 * p as f64 / max))
                .unwrap_or_default(),
        );
    }
    out.push_str("</table>");
    out
}

/// A notebook's view of a fit report (`_repr_html_`): a title line and [`stage_table`], with
/// the page's CSS scoped to it.
pub fn stages_fragment(title: &str, stages: &[StageReport], peak_rss_bytes: u64) -> String {
    format!(
        "<div class=\"ec\"><style>{CSS}</style><p><b>{}</b> &middot; peak RSS {}</p>{}</div>",
        escape(title),
        format_bytes(peak_rss_bytes),
        stage_table(stages)
    )
}

/// The cluster-size bars (`sizes` sorted, largest first) into an area.
fn draw_sizes(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    sizes: &[u64],
) -> std::result::Result<(), DynErr> {
    let max = *sizes.first().unwrap_or(&1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "cluster sizes, largest first (min {}, median {}, max {})",
                sizes.last().unwrap_or(&0),
                sizes.get(sizes.len() / 2).unwrap_or(&0),
                sizes.first().unwrap_or(&0)
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..sizes.len().max(1) as f64, 0f64..max.max(1.0) * 1.08)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("cluster rank")
        .y_desc("rows")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(sizes.iter().enumerate().map(|(i, &s)| {
        Rectangle::new(
            [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, s as f64)],
            BLUE.mix(0.7).filled(),
        )
    }))?;
    Ok(())
}

/// Cluster sizes, largest first, as an SVG bar chart (`width x height` pixels).
pub fn sizes_svg(sizes: &[u64], width: u32, height: u32) -> Result<String> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut svg = String::new();
    (|| -> std::result::Result<(), DynErr> {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw_sizes(&root, &sizes)?;
        root.present()?;
        Ok(())
    })()
    .map_err(draw_err)?;
    Ok(svg)
}

/// The centroid map as SVG: point `i` of `map` is a disc with area proportional to
/// `sizes[i]`; the `labelled` largest clusters carry `labels[i]`.
pub fn map_svg(
    map: &[[f64; 2]],
    sizes: &[u64],
    labels: &[String],
    labelled: usize,
) -> Result<String> {
    let mut svg = String::new();
    (|| -> std::result::Result<(), DynErr> {
        let root = SVGBackend::with_string(&mut svg, (900, 620)).into_drawing_area();
        root.fill(&WHITE)?;
        let range = |i: usize| {
            let lo = map.iter().map(|p| p[i]).fold(f64::INFINITY, f64::min);
            let hi = map.iter().map(|p| p[i]).fold(f64::NEG_INFINITY, f64::max);
            if !lo.is_finite() || hi - lo < 1e-12 {
                return (-1.0, 1.0);
            }
            let pad = (hi - lo) * 0.08;
            (lo - pad, hi + pad)
        };
        let (x0, x1) = range(0);
        let (y0, y1) = range(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "centroids on their first two principal components (area: cluster size)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("PC 1")
            .y_desc("PC 2")
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 14))
            .x_label_formatter(&|v| format!("{v:.2}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .draw()?;
        let max = sizes.iter().copied().max().unwrap_or(1).max(1) as f64;
        let radius = |s: u64| (4.0 + 26.0 * (s as f64 / max).sqrt()) as i32;
        let mut order: Vec<usize> = (0..map.len()).collect();
        order.sort_by(|&a, &b| sizes.get(b).cmp(&sizes.get(a)).then(a.cmp(&b)));
        // the largest are drawn first, the small ones stay visible on top
        chart.draw_series(order.iter().map(|&i| {
            let s = sizes.get(i).copied().unwrap_or(0);
            Circle::new(
                (map[i][0], map[i][1]),
                radius(s),
                RGBColor(35, 74, 156).mix(0.35).filled(),
            )
        }))?;
        chart.draw_series(order.iter().take(labelled).filter_map(|&i| {
            labels.get(i).map(|l| {
                Text::new(
                    l.clone(),
                    (map[i][0], map[i][1]),
                    ("sans-serif", 12).into_font().color(&BLACK),
                )
            })
        }))?;
        root.present()?;
        Ok(())
    })()
    .map_err(draw_err)?;
    Ok(svg)
}

fn strip_xml_header(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

fn fmt_opt(v: Option<f64>, dec: usize) -> String {
    v.map(|x| format!("{x:.dec$}"))
        .unwrap_or_else(|| "-".into())
}

/// The run page (see the module docs). `summary`: one per cluster, from the run's
/// summaries; `centroid_map`: [`centroid_map`] of the centroids (empty: no map).
///
/// # Errors
/// [`Error::Numerical`] if a picture cannot be drawn.
pub fn run_html(
    r: &RunView,
    summary: Option<&[ClusterSummary]>,
    centroid_map: &[[f64; 2]],
) -> Result<String> {
    let mut b = String::new();
    let metric = metric_name(&r.metric);
    let _ = write!(
        b,
        "<h1>embedcluster run: {}</h1><p class=\"sub\">{} rows &times; {} features &rarr; {} ({}), k = {}, {} metric, seed {}, {} threads</p>",
        escape(&file_name(&r.input)),
        r.n_samples,
        r.n_features,
        r.n_components,
        escape(&r.reduce),
        r.n_clusters,
        escape(&metric),
        r.seed,
        r.threads
    );
    b.push_str("<section id=\"overview\"><h2>Overview</h2><div class=\"figs\">");
    fig(&mut b, &r.n_samples.to_string(), "rows");
    fig(&mut b, &r.n_clusters.to_string(), "clusters");
    fig(&mut b, &format!("{:.6}", r.objective), "objective");
    fig(
        &mut b,
        &format!(
            "{}{}",
            r.n_iter,
            if r.converged { "" } else { " (not converged)" }
        ),
        "iterations",
    );
    if let Some(e) = r.explained_variance_ratio_sum {
        fig(&mut b, &format!("{:.3}", e), "explained variance (PCA)");
    }
    if r.ari.is_some() {
        fig(&mut b, &fmt_opt(r.ari, 3), "ARI");
        fig(&mut b, &fmt_opt(r.nmi, 3), "NMI");
    }
    let total: f64 = r.stages.iter().map(|s| s.seconds).sum();
    fig(&mut b, &format!("{total:.2} s"), "time");
    fig(&mut b, &format_bytes(r.peak_rss_bytes), "peak RSS");
    if r.skipped_rows > 0 {
        fig(
            &mut b,
            &r.skipped_rows.to_string(),
            "rows skipped as invalid",
        );
    }
    let _ = write!(
        b,
        "</div><p class=\"sub\">input {}</p></section>",
        escape(&r.input)
    );
    b.push_str("<section id=\"memory\"><h2>Stages and memory</h2>");
    if let Some(p) = &r.memory_plan {
        let _ = write!(
            b,
            "<p class=\"sub\">planned blocks of {} rows; budget {}{}</p>",
            p.batch_rows,
            p.budget_bytes
                .map(format_bytes)
                .unwrap_or_else(|| "none".into()),
            p.limit_bytes
                .map(|l| format!(" (limit {})", format_bytes(l)))
                .unwrap_or_default()
        );
    }
    b.push_str(&stage_table(&r.stages));
    b.push_str("</section><section id=\"sizes\"><h2>Cluster sizes</h2>");
    b.push_str(strip_xml_header(&sizes_svg(&r.cluster_sizes, 1000, 380)?));
    b.push_str("</section>");
    if !centroid_map.is_empty() {
        let labels: Vec<String> = (0..centroid_map.len())
            .map(|c| {
                let kw = summary
                    .and_then(|s| s.get(c))
                    .and_then(|s| s.keywords.first())
                    .map(|k| format!(" {k}"))
                    .unwrap_or_default();
                format!("{c}{kw}")
            })
            .collect();
        b.push_str("<section id=\"map\"><h2>Centroid map</h2>");
        b.push_str(strip_xml_header(&map_svg(
            centroid_map,
            &r.cluster_sizes,
            &labels,
            15,
        )?));
        b.push_str("<p class=\"legend\">Each disc is a centroid; the 15 largest are labelled with their cluster and first keyword.</p></section>");
    }
    if let Some(s) = summary {
        b.push_str(&summary_section(s, r.text_column.as_deref()));
    }
    b.push_str("<section id=\"warnings\"><h2>Warnings</h2>");
    if r.warnings.is_empty() {
        b.push_str("<p class=\"sub\">none</p>");
    }
    for w in &r.warnings {
        let _ = write!(b, "<div class=\"warn\">{}</div>", escape(w));
    }
    b.push_str("</section>");
    Ok(page(
        &format!("embedcluster run: {}", file_name(&r.input)),
        &b,
    ))
}

fn summary_section(s: &[ClusterSummary], text_column: Option<&str>) -> String {
    let mut b = String::from("<section id=\"summaries\"><h2>Clusters</h2>");
    let _ = write!(
        b,
        "<p class=\"sub\">largest first; keywords by class-based TF-IDF{}; representatives are the rows closest to the centroid</p>",
        text_column.map(|c| format!(" of column <code>{}</code>", escape(c))).unwrap_or_default()
    );
    b.push_str("<table class=\"summaries\"><tr><th>cluster</th><th>size</th><th>score mean (p5 / p50 / p95)</th><th>keywords and representatives</th></tr>");
    let mut order: Vec<&ClusterSummary> = s.iter().collect();
    order.sort_by(|a, b| b.size.cmp(&a.size).then(a.cluster.cmp(&b.cluster)));
    for c in order {
        let q = |i: usize| c.score_quantiles.get(i).copied().unwrap_or(f64::NAN);
        let _ = write!(
            b,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.3} ({:.3} / {:.3} / {:.3})</td><td><div class=\"kw\">{}</div>",
            c.cluster,
            c.size,
            c.score_mean,
            q(0),
            q(2),
            q(4),
            escape(&c.keywords.join(", "))
        );
        for r in &c.representatives {
            let _ = write!(
                b,
                "<div class=\"rep\">#{} ({:.3}) {}</div>",
                r.id,
                r.score,
                escape(r.text.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</table></section>");
    b
}

/// One line chart of `(k, value)` into an area.
fn line_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    points: &[(f64, f64)],
    color: RGBColor,
    k_range: (f64, f64),
) -> std::result::Result<(), DynErr> {
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (y0, y1) = {
        let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            let pad = ((hi - lo) * 0.08).max(hi.abs() * 1e-3).max(1e-12);
            (lo - pad, hi + pad)
        } else {
            (0.0, 1.0)
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(k_range.0..k_range.1, y0..y1)?;
    let dec = if y1 - y0 >= 100.0 {
        0
    } else if y1 - y0 >= 1.0 {
        2
    } else {
        3
    };
    chart
        .configure_mesh()
        .x_desc("number of clusters k")
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .y_label_formatter(&|v| format!("{v:.dec$}"))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(2),
    ))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    Ok(())
}

/// The sweep's picture: objective (elbow), silhouette and Davies-Bouldin per k, one above
/// the other (`--plot` of `sweep`, and the sweep page).
///
/// # Errors
/// [`Error::Numerical`] if it cannot be drawn.
pub fn sweep_svg(r: &SweepReport) -> Result<String> {
    let mut svg = String::new();
    (|| -> std::result::Result<(), DynErr> {
        let root = SVGBackend::with_string(&mut svg, (900, 1050)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "k sweep: {} ({} x {}, {}, {})",
            file_name(&r.input),
            r.n_samples,
            r.n_features,
            r.reduce,
            metric_name(&serde_json::to_value(r.metric).unwrap_or_default())
        );
        let root = root.titled(&title, ("sans-serif", 22))?;
        let panels = root.split_evenly((3, 1));
        let ks: Vec<f64> = r.rows.iter().map(|x| x.k as f64).collect();
        let (a, b) = (
            ks.iter().copied().fold(f64::INFINITY, f64::min),
            ks.iter().copied().fold(0.0, f64::max),
        );
        let pad = ((b - a) * 0.04).max(0.5);
        let kr = (a - pad, b + pad);
        let obj: Vec<(f64, f64)> = r.rows.iter().map(|x| (x.k as f64, x.objective)).collect();
        let objective_name = match r.metric {
            crate::cluster::Metric::Cosine => "objective: sum of (1 - cos)",
            _ => "objective: inertia",
        };
        line_panel(
            &panels[0],
            "elbow: k-means objective (lower is tighter)",
            objective_name,
            &obj,
            BLUE,
            kr,
        )?;
        let sil: Vec<(f64, f64)> = r
            .rows
            .iter()
            .filter_map(|x| x.silhouette.map(|s| (x.k as f64, s)))
            .collect();
        line_panel(
            &panels[1],
            &format!(
                "silhouette on {} sampled rows (higher is better)",
                r.silhouette_sample_size
            ),
            "mean silhouette",
            &sil,
            RGBColor(0, 140, 60),
            kr,
        )?;
        let db: Vec<(f64, f64)> = r
            .rows
            .iter()
            .filter_map(|x| x.davies_bouldin.map(|s| (x.k as f64, s)))
            .collect();
        line_panel(
            &panels[2],
            "Davies-Bouldin index (lower is better)",
            "Davies-Bouldin",
            &db,
            RED,
            kr,
        )?;
        root.present()?;
        Ok(())
    })()
    .map_err(draw_err)?;
    Ok(svg)
}

/// The run's `--plot` picture: cluster sizes and per-stage seconds and peak RSS.
///
/// # Errors
/// [`Error::Numerical`] if it cannot be drawn.
pub fn run_svg(r: &RunView) -> Result<String> {
    let mut svg = String::new();
    (|| -> std::result::Result<(), DynErr> {
        let root = SVGBackend::with_string(&mut svg, (1000, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "{}: {} x {} -> {} ({}), k = {}, {}",
            file_name(&r.input),
            r.n_samples,
            r.n_features,
            r.n_components,
            r.reduce,
            r.n_clusters,
            metric_name(&r.metric)
        );
        let root = root.titled(&title, ("sans-serif", 22))?;
        let (top, bottom) = root.split_vertically(450);
        let mut sizes = r.cluster_sizes.clone();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        draw_sizes(&top, &sizes)?;
        let (left, right) = bottom.split_horizontally(500);
        let stages: Vec<(String, f64, f64)> = r
            .stages
            .iter()
            .filter(|s| s.name != "open")
            .map(|s| {
                (
                    s.name.clone(),
                    s.seconds,
                    s.peak_rss_bytes as f64 / (1024.0 * 1024.0),
                )
            })
            .collect();
        for (area, time, title, unit, color) in [
            (
                &left,
                true,
                "time per stage",
                "seconds",
                RGBColor(0, 140, 60),
            ),
            (&right, false, "peak RSS per stage", "MiB", RED),
        ] {
            let vals: Vec<f64> = stages
                .iter()
                .map(|s| if time { s.1 } else { s.2 })
                .collect();
            let max = vals.iter().copied().fold(0.0, f64::max).max(1e-9);
            let names: Vec<String> = stages.iter().map(|s| s.0.clone()).collect();
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(90)
                .build_cartesian_2d(0f64..max * 1.15, 0f64..stages.len().max(1) as f64)?;
            let dec = if max < 0.1 {
                3
            } else if max < 10.0 {
                2
            } else {
                0
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_desc(unit)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 15))
                .y_labels(stages.len() * 2 + 1)
                .y_label_formatter(&|v| {
                    let i = (v - 0.5).round();
                    if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                        names[names.len() - 1 - i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .x_label_formatter(&|v| format!("{v:.dec$}"))
                .draw()?;
            let n = vals.len();
            chart.draw_series(vals.iter().enumerate().map(|(i, &v)| {
                let y = (n - 1 - i) as f64;
                Rectangle::new([(0.0, y + 0.15), (v, y + 0.85)], color.mix(0.7).filled())
            }))?;
            chart.draw_series(vals.iter().enumerate().map(|(i, &v)| {
                let y = (n - 1 - i) as f64;
                Text::new(
                    if time {
                        format!("{v:.2} s")
                    } else {
                        format!("{v:.0} MiB")
                    },
                    (v + max * 0.01, y + 0.65),
                    ("sans-serif", 13),
                )
            }))?;
        }
        root.present()?;
        Ok(())
    })()
    .map_err(draw_err)?;
    Ok(svg)
}

/// The sweep page: the table of k with objective, silhouette, Davies-Bouldin,
/// Calinski-Harabasz (and ARI), the curves, and the stages.
///
/// # Errors
/// [`Error::Numerical`] if the picture cannot be drawn.
pub fn sweep_html(r: &SweepReport) -> Result<String> {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>embedcluster sweep: {}</h1><p class=\"sub\">{} rows &times; {} features &rarr; {} ({}), seed {}, {} threads</p>",
        escape(&file_name(&r.input)),
        r.n_samples,
        r.n_features,
        r.n_components,
        escape(&r.reduce),
        r.seed,
        r.threads
    );
    b.push_str("<section id=\"sweep\"><h2>Scores per k</h2><table><tr><th>k</th><th>objective</th><th>silhouette</th><th>Davies-Bouldin</th><th>Calinski-Harabasz</th><th>ARI</th><th>iterations</th><th>seconds</th></tr>");
    for x in &r.rows {
        let _ = write!(
            b,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{:.6}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td></tr>",
            x.k,
            x.objective,
            fmt_opt(x.silhouette, 4),
            fmt_opt(x.davies_bouldin, 4),
            fmt_opt(x.calinski_harabasz, 1),
            fmt_opt(x.ari, 4),
            x.n_iter,
            x.seconds
        );
    }
    b.push_str("</table></section><section id=\"curves\"><h2>Elbow and silhouette</h2>");
    b.push_str(strip_xml_header(&sweep_svg(r)?));
    b.push_str("</section><section id=\"memory\"><h2>Stages and memory</h2>");
    let _ = write!(
        b,
        "<p class=\"sub\">peak RSS {}</p>",
        format_bytes(r.peak_rss_bytes)
    );
    b.push_str(&stage_table(&r.stages));
    b.push_str("</section>");
    Ok(page(
        &format!("embedcluster sweep: {}", file_name(&r.input)),
        &b,
    ))
}

/// The evaluate page: external scores (against labels), internal scores (against the
/// embeddings), the stages.
pub fn evaluate_html(r: &EvaluateReport) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>embedcluster evaluate: {}</h1><p class=\"sub\">{} rows, {} clusters</p>",
        escape(&file_name(&r.clusters)),
        r.n_samples,
        r.n_clusters
    );
    let row = |b: &mut String, name: &str, v: f64| {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"n\">{v:.6}</td></tr>",
            escape(name)
        );
    };
    b.push_str("<section id=\"external\"><h2>Against the labels</h2>");
    match &r.external {
        Some(e) => {
            let _ = write!(
                b,
                "<p class=\"sub\">labels column <code>{}</code></p><table><tr><th>score</th><th>value</th></tr>",
                escape(r.labels_column.as_deref().unwrap_or(""))
            );
            row(&mut b, "adjusted Rand index", e.adjusted_rand_score);
            row(
                &mut b,
                "normalized mutual information",
                e.normalized_mutual_info_score,
            );
            row(
                &mut b,
                "adjusted mutual information",
                e.adjusted_mutual_info_score,
            );
            row(&mut b, "mutual information", e.mutual_info_score);
            row(&mut b, "homogeneity", e.homogeneity);
            row(&mut b, "completeness", e.completeness);
            row(&mut b, "V-measure", e.v_measure);
            b.push_str("</table>");
        }
        None => b.push_str("<p class=\"sub\">no labels column given</p>"),
    }
    b.push_str("</section><section id=\"internal\"><h2>Against the embeddings</h2>");
    match &r.internal {
        Some(i) => {
            let _ = write!(
                b,
                "<p class=\"sub\">embeddings {}</p><table><tr><th>score</th><th>value</th></tr>",
                escape(r.embeddings.as_deref().unwrap_or(""))
            );
            row(
                &mut b,
                &format!("silhouette ({} rows)", i.silhouette_sample_size),
                i.silhouette_score,
            );
            row(&mut b, "Davies-Bouldin", i.davies_bouldin_score);
            row(&mut b, "Calinski-Harabasz", i.calinski_harabasz_score);
            b.push_str("</table>");
        }
        None => b.push_str("<p class=\"sub\">no embeddings given</p>"),
    }
    b.push_str("</section><section id=\"memory\"><h2>Stages and memory</h2>");
    let _ = write!(
        b,
        "<p class=\"sub\">peak RSS {}</p>",
        format_bytes(r.peak_rss_bytes)
    );
    b.push_str(&stage_table(&r.stages));
    b.push_str("</section>");
    page(
        &format!("embedcluster evaluate: {}", file_name(&r.clusters)),
        &b,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn centroid_map_separates_what_differs_most() {
        // three centroids on a line along axis 0, one off along axis 1 a little
        let c = [0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 20.0, 1.0, 0.0];
        let m = centroid_map(&c, 3);
        assert_eq!(m.len(), 3);
        let d01 = (m[0][0] - m[1][0]).abs();
        let d12 = (m[1][0] - m[2][0]).abs();
        assert!(
            (d01 - 10.0).abs() < 0.2 && (d12 - 10.0).abs() < 0.2,
            "{m:?}"
        );
        assert_eq!(centroid_map(&c[..3], 3), vec![[0.0, 0.0]]);
    }

    #[test]
    fn run_page_has_its_sections_and_escapes_texts() {
        let view = RunView {
            input: "data/x<y>.parquet".into(),
            n_clusters: 2,
            cluster_sizes: vec![3, 1],
            stages: vec![StageReport {
                name: "kmeans".into(),
                seconds: 0.5,
                cpu_seconds: 1.0,
                rows: 4,
                peak_rss_bytes: 10 << 20,
                predicted_peak_rss_bytes: Some(12 << 20),
            }],
            ..Default::default()
        };
        let s = vec![ClusterSummary {
            cluster: 0,
            size: 3,
            score_mean: 0.9,
            score_quantiles: vec![0.8, 0.85, 0.9, 0.95, 0.99],
            representatives: vec![crate::summary::Representative {
                id: 7,
                text: Some("<script>".into()),
                score: 0.99,
            }],
            keywords: vec!["apple".into()],
            keyword_weights: vec![0.5],
        }];
        let html = run_html(&view, Some(&s), &[[0.0, 1.0], [1.0, 0.0]]).unwrap();
        for id in [
            "overview",
            "memory",
            "sizes",
            "map",
            "summaries",
            "warnings",
        ] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;") && html.contains("x&lt;y&gt;.parquet"));
        // nothing is fetched: no external scripts, styles or images
        assert!(
            !html.contains("src=\"http")
                && !html.contains("href=\"http")
                && !html.contains("@import")
        );
        assert!(!html.contains("<?xml"));
    }
}
