//! SVG and PNG plots of the report's curves: consistency and accuracy over x with their 95%
//! interval bands, and the full-CoT and no-CoT accuracies as reference lines. The axes say what
//! x and y are for the intervention, the legend sits below the plot (never over the data), and
//! bins with fewer than [`MIN_BAND_N`] trials get no band and a hollow point (said under the
//! legend), so that a bin of one or two trials does not spike the band. plotters draws
//! the SVG; resvg rasterises it into the PNG, with the system's fonts (DejaVu Sans, Liberation
//! Sans, Arial, ... or `FAITHSCOPE_FONT`); no system library is needed, and without any font the
//! PNG is drawn without its text (the report says which package to install).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::faith::report::{InterventionSummary, Report, Section};
use crate::faith::trial::InterventionKind;

/// Plot size in pixels (SVG user units).
const SIZE: (u32, u32) = (860, 600);

/// Height of the legend strip below the chart.
const LEGEND_H: u32 = 80;

/// Bins with fewer trials than this are drawn without an interval band, as hollow points.
pub const MIN_BAND_N: usize = 10;

/// What [`write_plots`] wrote.
#[derive(Debug, Default)]
pub struct Plots {
    /// The files written: an SVG and a PNG of the same picture per curve.
    pub files: Vec<PathBuf>,
    /// Why the PNGs have no text, when no font was found.
    pub no_text: Option<String>,
}

/// Writes one SVG and one PNG (the SVG rasterised) per intervention with a curve, for all trials and for every split
/// group, into `dir` (created if needed).
pub fn write_plots(report: &Report, dir: &Path) -> anyhow::Result<Plots> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("creating the plot folder {}: {e}", dir.display()))?;
    let mut out = Plots {
        no_text: font_options().1.clone().err(),
        ..Plots::default()
    };
    plot_section(&report.overall, "all", "all trials", dir, &mut out)?;
    for split in &report.splits {
        for g in &split.groups {
            let stem = format!("{}-{}", slug(&split.field), slug(&g.value));
            let title = format!("{} = {}", split.field, g.value);
            plot_section(&g.section, &stem, &title, dir, &mut out)?;
        }
    }
    Ok(out)
}

/// Font families tried for the PNG's `sans-serif` text, in order (the first one installed).
const SANS_FAMILIES: &[&str] = &[
    "DejaVu Sans",
    "Liberation Sans",
    "Arial",
    "Helvetica",
    "FreeSans",
    "Noto Sans",
];

/// The system's fonts for rasterising, once per process; `Err` says why the PNGs lack text.
fn font_options() -> &'static (resvg::usvg::Options<'static>, Result<(), String>) {
    static OPTS: OnceLock<(resvg::usvg::Options<'static>, Result<(), String>)> = OnceLock::new();
    OPTS.get_or_init(|| {
        let mut opt = resvg::usvg::Options::default();
        let db = opt.fontdb_mut();
        db.load_system_fonts();
        if let Ok(path) = std::env::var("FAITHSCOPE_FONT") {
            let _ = db.load_font_file(path);
        }
        let installed = |fam: &str| {
            db.faces()
                .any(|f| f.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(fam)))
        };
        let family = SANS_FAMILIES
            .iter()
            .find(|f| installed(f))
            .map(|f| f.to_string())
            .or_else(|| {
                db.faces()
                    .next()
                    .and_then(|f| f.families.first())
                    .map(|f| f.0.clone())
            });
        let found = match family {
            Some(f) => {
                db.set_sans_serif_family(f);
                Ok(())
            }
            None => Err(
                "no font found: the PNG plots have no text (install fonts-dejavu-core, \
                         or set FAITHSCOPE_FONT to a .ttf file); the SVGs have it"
                    .to_string(),
            ),
        };
        (opt, found)
    })
}

/// Renders the SVG file `svg` into the PNG file `png`.
fn rasterize(svg: &Path, png: &Path) -> Result<(), String> {
    let data = std::fs::read(svg).map_err(|e| e.to_string())?;
    let (opt, _) = font_options();
    let tree = resvg::usvg::Tree::from_data(&data, opt).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("the SVG has no area")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.save_png(png).map_err(|e| e.to_string())
}

/// File-name-safe form of a label.
fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// Plots every intervention of one section that has a curve.
fn plot_section(
    s: &Section,
    stem: &str,
    title: &str,
    dir: &Path,
    out: &mut Plots,
) -> anyhow::Result<()> {
    for iv in s.interventions.iter().filter(|iv| !iv.curve.is_empty()) {
        let caption = format!("{}: {title}", iv.label());
        let file: String = iv
            .label()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let base = dir.join(format!("{stem}-{file}"));
        let svg = base.with_extension("svg");
        draw_curve(
            SVGBackend::new(&svg, SIZE).into_drawing_area(),
            s,
            iv,
            &caption,
        )
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
        let png = base.with_extension("png");
        rasterize(&svg, &png).map_err(|e| {
            anyhow::anyhow!("rendering {} to {}: {e}", svg.display(), png.display())
        })?;
        out.files.push(svg);
        out.files.push(png);
    }
    Ok(())
}

/// What x is for an intervention's curve, as the x axis says it.
pub fn x_label(kind: InterventionKind) -> &'static str {
    match kind {
        InterventionKind::EarlyAnswering => "share of the chain's sentences kept (%)",
        InterventionKind::AddingMistakes => "position of the mistaken sentence in the chain (%)",
        InterventionKind::Paraphrasing => "share of the chain's sentences paraphrased (%)",
        InterventionKind::Filler => "share of the chain's words replaced by filler (%)",
        InterventionKind::AudioMask => "share of the audio masked (%)",
        InterventionKind::AudioNoise => "noise: 0 = 30 dB SNR, 100 = -10 dB ((30-SNR)/40, %)",
        _ => "x (%)",
    }
}

/// The y axis: both curves are shares of trials.
pub const Y_LABEL: &str = "% of trials: consistency with the baseline answer, accuracy";

/// One point of a curve: x, the share, its interval, and the bin's trials.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: f64,
    pct: f64,
    lo: f64,
    hi: f64,
    n: usize,
}

/// The runs of consecutive points with at least `min_n` trials: each gets its own band, so a
/// small bin between two large ones leaves a gap instead of a spike.
fn band_runs(pts: &[Point], min_n: usize) -> Vec<&[Point]> {
    pts.split(|p| p.n < min_n)
        .filter(|run| !run.is_empty())
        .collect()
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    Line,
    Dashed,
}

/// Draws one intervention's curves on any plotters backend.
fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    s: &Section,
    iv: &InterventionSummary,
    caption: &str,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(SIZE.1 - LEGEND_H);
    let mut chart = ChartBuilder::on(&upper)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        // room for the last x tick ("100") and the top y tick
        .margin_right(36)
        .margin_top(16)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..100f64, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_desc(format!(
            "{}, bins of {:.0}%",
            x_label(iv.intervention),
            iv.bin_width * 100.0
        ))
        .y_desc(Y_LABEL)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;

    let point = |b: &crate::faith::measures::Bin, share: Option<crate::faith::measures::Share>| {
        share.map(|c| Point {
            x: b.x * 100.0,
            pct: c.pct,
            lo: c.lo,
            hi: c.hi,
            n: c.n,
        })
    };
    let consistency: Vec<Point> = iv
        .curve
        .iter()
        .filter_map(|b| point(b, b.consistency))
        .collect();
    let accuracy: Vec<Point> = iv
        .curve
        .iter()
        .filter_map(|b| point(b, b.accuracy))
        .collect();
    let mut legend: Vec<(String, RGBColor, Mark)> = Vec::new();
    let series = [
        ("consistency with the baseline answer", &consistency, BLUE),
        ("accuracy", &accuracy, RED),
    ];
    let mut small = false;
    for (label, pts, color) in series {
        if pts.is_empty() {
            continue;
        }
        for run in band_runs(pts, MIN_BAND_N) {
            if let [p] = run {
                // a lone bin: its interval as a bar (a band of one point has no area)
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(p.x, p.lo), (p.x, p.hi)],
                    color.mix(0.35).stroke_width(6),
                )))?;
                continue;
            }
            let band: Vec<(f64, f64)> = run
                .iter()
                .map(|p| (p.x, p.hi))
                .chain(run.iter().rev().map(|p| (p.x, p.lo)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))?;
        }
        chart.draw_series(LineSeries::new(
            pts.iter().map(|p| (p.x, p.pct)),
            color.stroke_width(2),
        ))?;
        // one circle per bin: filled, or an outline where the bin is too small for a band
        chart.draw_series(pts.iter().map(|p| {
            let style = if p.n < MIN_BAND_N {
                color.stroke_width(1)
            } else {
                color.filled()
            };
            Circle::new((p.x, p.pct), 3, style)
        }))?;
        small |= pts.iter().any(|p| p.n < MIN_BAND_N);
        legend.push((label.to_string(), color, Mark::Line));
    }
    let refs = [
        ("accuracy with full CoT", s.accuracy.with_cot, BLACK),
        (
            "accuracy without CoT",
            s.accuracy.without_cot,
            RGBColor(120, 120, 120),
        ),
    ];
    for (label, share, color) in refs {
        let Some(share) = share else { continue };
        let style = ShapeStyle::from(&color).stroke_width(1);
        chart.draw_series(DashedLineSeries::new(
            [(0.0, share.pct), (100.0, share.pct)],
            8,
            5,
            style,
        ))?;
        legend.push((format!("{label} ({:.1}%)", share.pct), color, Mark::Dashed));
    }
    let note = format!(
        "shaded: 95% intervals; bins with fewer than {MIN_BAND_N} trials have none{}",
        if small { " (hollow points)" } else { "" }
    );
    draw_legend(&lower, &legend, &note)?;
    root.present()?;
    Ok(())
}

/// The legend strip below the chart: two entries per row, then the note on the bands.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, Mark)],
    note: &str,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let font = ("sans-serif", 14).into_font();
    let (left, col_w, row_h) = (72i32, 390i32, 22i32);
    for (i, (label, color, mark)) in entries.iter().enumerate() {
        let x = left + (i as i32 % 2) * col_w;
        let y = 12 + (i as i32 / 2) * row_h;
        match mark {
            Mark::Line => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 28, y)],
                    color.stroke_width(2),
                ))?;
            }
            Mark::Dashed => {
                for dx in [0, 11, 22] {
                    area.draw(&PathElement::new(vec![(x + dx, y), (x + dx + 6, y)], color))?;
                }
            }
        }
        area.draw(&Text::new(label.clone(), (x + 36, y - 8), font.clone()))?;
    }
    let rows = entries.len().div_ceil(2) as i32;
    let grey = font.color(&RGBColor(90, 90, 90));
    area.draw(&Text::new(
        note.to_string(),
        (left, 12 + rows * row_h - 8),
        grey,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faith::report::build;
    use crate::faith::trial::{InterventionKind, Trial};

    #[test]
    fn bins_with_few_trials_get_no_band_and_say_so() {
        let mk = |x: f64, i: usize| Trial {
            id: format!("q{i}"),
            intervention: Some(InterventionKind::EarlyAnswering),
            x: Some(x),
            predicted_choice: Some(if i % 3 == 0 { "A" } else { "B" }.into()),
            correct_choice: Some("B".into()),
            is_correct: i % 3 != 0,
            corresponding_baseline_predicted_choice: Some("A".into()),
            ..Default::default()
        };
        // 20 trials at x = 0, 5, 95 and 100%, one lone trial at 50%
        let mut ts: Vec<Trial> = Vec::new();
        for x in [0.0, 0.05, 0.95, 1.0] {
            ts.extend((0..20).map(|i| mk(x, i)));
        }
        ts.push(mk(0.5, 1));
        let r = build(&ts, &[], vec![]);
        let dir = tempfile::tempdir().unwrap();
        let plots = write_plots(&r, dir.path()).unwrap();
        let svg = std::fs::read_to_string(&plots.files[0]).unwrap();
        // two bands per curve (0-5% and 95-100%), none through the lone bin
        assert_eq!(svg.matches("<polygon").count(), 4);
        assert!(svg.contains("bins with fewer than 10 trials have none (hollow points)"));
        assert!(svg.contains("share of the chain&apos;s sentences kept (%), bins of 5%"));
        let pts = |ns: &[usize]| -> Vec<Point> {
            ns.iter()
                .enumerate()
                .map(|(i, &n)| Point {
                    x: i as f64,
                    pct: 50.0,
                    lo: 0.0,
                    hi: 100.0,
                    n,
                })
                .collect()
        };
        let lens = |ns: &[usize]| -> Vec<usize> {
            band_runs(&pts(ns), MIN_BAND_N)
                .iter()
                .map(|r| r.len())
                .collect()
        };
        assert_eq!(lens(&[20, 20, 1, 20, 20, 20]), [2, 3]);
        assert_eq!(lens(&[1, 2, 3]), Vec::<usize>::new());
        assert_eq!(lens(&[10]), [1]);
        assert_eq!(
            x_label(InterventionKind::AddingMistakes),
            "position of the mistaken sentence in the chain (%)"
        );
    }

    #[test]
    fn writes_an_svg_per_curve() {
        let mk = |x: f64, pred: &str| Trial {
            id: "q".into(),
            intervention: Some(InterventionKind::Filler),
            x: Some(x),
            predicted_choice: Some(pred.into()),
            // Gold B, baseline A: accuracy and consistency are different curves.
            correct_choice: Some("B".into()),
            is_correct: pred == "B",
            corresponding_baseline_predicted_choice: Some("A".into()),
            ..Default::default()
        };
        let ts = vec![mk(0.0, "A"), mk(0.5, "B"), mk(1.0, "B")];
        let r = build(&ts, &[], vec![]);
        let dir = tempfile::tempdir().unwrap();
        let plots = write_plots(&r, dir.path()).unwrap();
        let svg = std::fs::read_to_string(&plots.files[0]).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("consistency with the baseline answer"));
        assert_eq!(slug("mix-sound speech"), "mix_sound_speech");
        assert_eq!(plots.files.len(), 2);
        assert_eq!(plots.files[1].extension().unwrap(), "png");
        let png = resvg::tiny_skia::Pixmap::load_png(&plots.files[1]).unwrap();
        assert_eq!((png.width(), png.height()), SIZE);
        let px = |f: &dyn Fn(&[u8]) -> bool| png.data().chunks(4).filter(|p| f(p)).count();
        // The curves and their points in blue and red, axes and text in black, on white.
        let blue = px(&|p| p[2] > 200 && p[0] < 60 && p[1] < 60);
        let red = px(&|p| p[0] > 200 && p[1] < 60 && p[2] < 60);
        let white = px(&|p| p[0] > 250 && p[1] > 250 && p[2] > 250);
        assert!(blue > 500 && red > 500, "{blue} blue and {red} red pixels");
        assert!(
            white > png.width() as usize * png.height() as usize / 5,
            "{white}"
        );
        // The caption, in the top rows above the plot, is text only.
        let w = png.width() as usize;
        let caption = png.data()[..w * 30 * 4]
            .chunks(4)
            .filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100)
            .count();
        match &plots.no_text {
            // No font: no text; the reason names the package to install.
            Some(why) => assert!(why.contains("fonts-dejavu-core") && caption == 0, "{why}"),
            None => assert!(caption > 100, "{caption} dark pixels in the caption"),
        }
    }
}
