//! SVG and PNG plots of the report's curves: consistency and accuracy over x with their 95%
//! interval bands, and the full-CoT and no-CoT accuracies as reference lines. plotters draws
//! the SVG; resvg rasterises it into the PNG, with the system's fonts (DejaVu Sans, Liberation
//! Sans, Arial, ... or `FAITHSCOPE_FONT`); no system library is needed, and without any font the
//! PNG is drawn without its text (the report says which package to install).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::faith::report::{InterventionSummary, Report, Section};

/// Plot size in pixels (SVG user units).
const SIZE: (u32, u32) = (820, 520);

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
        let caption = format!("{}: {title}", iv.intervention);
        let base = dir.join(format!("{stem}-{}", iv.intervention.name()));
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
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..100f64, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc(format!("x (%), bins of {:.0}%", iv.bin_width * 100.0))
        .y_desc("%")
        .label_style(("sans-serif", 14))
        .draw()?;

    let consistency: Vec<(f64, f64, f64, f64)> = iv
        .curve
        .iter()
        .filter_map(|b| b.consistency.map(|c| (b.x * 100.0, c.pct, c.lo, c.hi)))
        .collect();
    let accuracy: Vec<(f64, f64, f64, f64)> = iv
        .curve
        .iter()
        .filter_map(|b| b.accuracy.map(|a| (b.x * 100.0, a.pct, a.lo, a.hi)))
        .collect();
    let series = [
        ("consistency with the baseline answer", &consistency, BLUE),
        ("accuracy", &accuracy, RED),
    ];
    for (label, pts, color) in series {
        if pts.is_empty() {
            continue;
        }
        let band: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.0, p.3))
            .chain(pts.iter().rev().map(|p| (p.0, p.2)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))?;
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            pts.iter()
                .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
        )?;
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
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, share.pct), (100.0, share.pct)],
                8,
                5,
                style,
            ))?
            .label(format!("{label} ({:.1}%)", share.pct))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", 14))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faith::report::build;
    use crate::faith::trial::{InterventionKind, Trial};

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
