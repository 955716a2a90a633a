//! SVG pictures with plotters: the k sweep (elbow, silhouette, Davies-Bouldin) and the run
//! report (cluster sizes, per-stage time and peak memory). Written atomically.

use embedcluster::io::AtomicFile;
use embedcluster::jobs::run::RunReport;
use embedcluster::jobs::sweep::SweepReport;
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

type DynErr = Box<dyn std::error::Error>;

fn save(path: &Path, svg: String) -> anyhow::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.file().write_all(svg.as_bytes())?;
    f.commit()?;
    Ok(())
}

fn range(vals: &[f64]) -> (f64, f64) {
    let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs() * 1e-3).max(1e-12);
    (lo - pad, hi + pad)
}

/// One line chart of `(k, value)` into an area.
fn line_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    points: &[(f64, f64)],
    color: RGBColor,
    k_range: (f64, f64),
) -> Result<(), DynErr> {
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (y0, y1) = range(&ys);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(k_range.0..k_range.1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc("number of clusters k")
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .y_label_formatter(&|v| {
            let span = y1 - y0;
            let dec = if span >= 100.0 {
                0
            } else if span >= 1.0 {
                2
            } else {
                3
            };
            format!("{v:.dec$}")
        })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(2),
    ))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    Ok(())
}

/// The sweep: objective (elbow), silhouette and Davies-Bouldin per k, one above the other.
pub fn sweep_svg(path: &Path, r: &SweepReport) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 1050)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let title = format!(
            "k sweep: {} ({} x {}, {}, {:?})",
            Path::new(&r.input)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            r.n_samples,
            r.n_features,
            r.reduce,
            r.metric
        );
        let root = root
            .titled(&title, ("sans-serif", 22))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let panels = root.split_evenly((3, 1));
        let ks: Vec<f64> = r.rows.iter().map(|x| x.k as f64).collect();
        let kr = {
            let (a, b) = (
                ks.iter().copied().fold(f64::INFINITY, f64::min),
                ks.iter().copied().fold(0.0, f64::max),
            );
            let pad = ((b - a) * 0.04).max(0.5);
            (a - pad, b + pad)
        };
        let obj: Vec<(f64, f64)> = r.rows.iter().map(|x| (x.k as f64, x.objective)).collect();
        let objective_name = match r.metric {
            embedcluster::cluster::Metric::Cosine => "objective: sum of (1 - cos)",
            _ => "objective: inertia",
        };
        line_panel(
            &panels[0],
            "elbow: k-means objective (lower is tighter)",
            objective_name,
            &obj,
            BLUE,
            kr,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
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
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    save(path, svg)
}

/// The run report: cluster sizes (largest first) and per-stage seconds and peak RSS.
pub fn run_svg(path: &Path, r: &RunReport) -> anyhow::Result<()> {
    let mut svg = String::new();
    (|| -> Result<(), DynErr> {
        let root = SVGBackend::with_string(&mut svg, (1000, 900)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "{}: {} x {} -> {} ({}), k = {}, {:?}",
            Path::new(&r.input)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            r.n_samples,
            r.n_features,
            r.n_components,
            r.reduce,
            r.n_clusters,
            r.metric
        );
        let root = root.titled(&title, ("sans-serif", 22))?;
        let (top, bottom) = root.split_vertically(450);
        // cluster sizes, sorted
        let mut sizes = r.cluster_sizes.clone();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let max = *sizes.first().unwrap_or(&1) as f64;
        let mut chart = ChartBuilder::on(&top)
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
            .build_cartesian_2d(0f64..sizes.len() as f64, 0f64..max * 1.08)?;
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
        // stages: seconds and peak RSS side by side
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
        for (area, idx, title, unit, color) in [
            (
                &left,
                1usize,
                "time per stage",
                "seconds",
                RGBColor(0, 140, 60),
            ),
            (&right, 2usize, "peak RSS per stage", "MiB", RED),
        ] {
            let vals: Vec<f64> = stages
                .iter()
                .map(|s| if idx == 1 { s.1 } else { s.2 })
                .collect();
            let max = vals.iter().copied().fold(0.0, f64::max).max(1e-9);
            let names: Vec<String> = stages.iter().map(|s| s.0.clone()).collect();
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(90)
                .build_cartesian_2d(0f64..max * 1.15, 0f64..stages.len() as f64)?;
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
                .x_label_formatter(&|v| {
                    let dec = if max < 0.1 {
                        3
                    } else if max < 10.0 {
                        2
                    } else {
                        0
                    };
                    format!("{v:.dec$}")
                })
                .draw()?;
            let n = vals.len();
            chart.draw_series(vals.iter().enumerate().map(|(i, &v)| {
                let y = (n - 1 - i) as f64;
                Rectangle::new([(0.0, y + 0.15), (v, y + 0.85)], color.mix(0.7).filled())
            }))?;
            chart.draw_series(vals.iter().enumerate().map(|(i, &v)| {
                let y = (n - 1 - i) as f64;
                Text::new(
                    if idx == 1 {
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
    .map_err(|e| anyhow::anyhow!("cannot draw the plot: {e}"))?;
    save(path, svg)
}
