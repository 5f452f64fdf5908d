//! SVG heatmaps of selectivity and transfer matrices (plotters' SVG backend, drawn from
//! primitives so the bytes depend only on the numbers: no system fonts are measured).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::point::{SelectivityMatrix, Verdict};
use super::transfer::TransferMatrix;

/// What one heatmap shows.
pub struct Heatmap<'a> {
    pub title: &'a str,
    /// Lines under the title (command, settings).
    pub notes: &'a [String],
    pub row_axis: &'a str,
    pub col_axis: &'a str,
    pub labels: &'a [String],
    /// `values[i][j]` in `[lo, hi]` (clamped), `None` for an empty cell.
    pub values: Vec<Vec<Option<f64>>>,
    /// Text written in each cell.
    pub text: Vec<Vec<String>>,
    pub lo: f64,
    pub hi: f64,
    /// Legend caption of the colour scale.
    pub scale: &'a str,
}

/// White (lo) to dark blue (hi).
fn colour(v: f64, lo: f64, hi: f64) -> RGBColor {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

/// Renders the heatmap to SVG text.
pub fn heatmap_svg(h: &Heatmap<'_>) -> Result<String, String> {
    let m = h.labels.len();
    let label_w = h.labels.iter().map(|l| l.len()).max().unwrap_or(4) as i32 * 8 + 24;
    let cell = 92i32;
    let top = 70 + 16 * h.notes.len() as i32;
    // Text is not measured (no font files); about 0.6 em per character keeps long notes inside.
    let text_w = h
        .notes
        .iter()
        .map(|n| n.chars().count() as i32 * 6)
        .chain(std::iter::once(h.title.chars().count() as i32 * 9))
        .max()
        .unwrap_or(0)
        + 24;
    let width = (label_w + cell * m as i32 + 140).max(560).max(text_w) as u32;
    let height = (top + 40 + cell * m as i32 + 40) as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        let e = |x: DrawingAreaErrorKind<_>| format!("drawing the heatmap: {x:?}");
        root.fill(&WHITE).map_err(e)?;
        let font = |size: f64| ("sans-serif", size).into_font();
        let left = |size: f64| {
            font(size)
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center))
        };
        let centre = |size: f64, c: &RGBColor| {
            font(size)
                .color(c)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        root.draw(&Text::new(h.title.to_string(), (12, 20), left(16.0)))
            .map_err(e)?;
        for (k, n) in h.notes.iter().enumerate() {
            root.draw(&Text::new(n.clone(), (12, 42 + 16 * k as i32), left(11.0)))
                .map_err(e)?;
        }
        let x0 = label_w;
        let y0 = top + 30;
        root.draw(&Text::new(
            format!("{} (rows) \\ {} (columns)", h.row_axis, h.col_axis),
            (12, top + 8),
            left(12.0),
        ))
        .map_err(e)?;
        for (j, l) in h.labels.iter().enumerate() {
            root.draw(&Text::new(
                l.clone(),
                (x0 + cell * j as i32 + cell / 2, y0 - 10),
                centre(12.0, &BLACK),
            ))
            .map_err(e)?;
        }
        for (i, l) in h.labels.iter().enumerate() {
            root.draw(&Text::new(
                l.clone(),
                (12, y0 + cell * i as i32 + cell / 2),
                left(12.0),
            ))
            .map_err(e)?;
            for j in 0..m {
                let (x, y) = (x0 + cell * j as i32, y0 + cell * i as i32);
                let v = h.values.get(i).and_then(|r| r.get(j)).copied().flatten();
                let fill = match v {
                    Some(v) => colour(v, h.lo, h.hi),
                    None => RGBColor(220, 220, 220),
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    fill.filled(),
                ))
                .map_err(e)?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    WHITE.stroke_width(2),
                ))
                .map_err(e)?;
                let dark = v.is_some_and(|v| (v - h.lo) / (h.hi - h.lo).max(1e-300) > 0.55);
                let ink = if dark { WHITE } else { BLACK };
                let text = h
                    .text
                    .get(i)
                    .and_then(|r| r.get(j))
                    .cloned()
                    .unwrap_or_default();
                for (k, line) in text.lines().enumerate() {
                    root.draw(&Text::new(
                        line.to_string(),
                        (x + cell / 2, y + cell / 2 - 8 + 16 * k as i32),
                        centre(if k == 0 { 14.0 } else { 10.0 }, &ink),
                    ))
                    .map_err(e)?;
                }
            }
        }
        // Colour scale.
        let sx = x0 + cell * m as i32 + 30;
        let steps = 20;
        let sh = cell * m as i32;
        for k in 0..steps {
            let v = h.hi - (h.hi - h.lo) * k as f64 / (steps - 1) as f64;
            let y = y0 + sh * k / steps;
            root.draw(&Rectangle::new(
                [(sx, y), (sx + 20, y0 + sh * (k + 1) / steps)],
                colour(v, h.lo, h.hi).filled(),
            ))
            .map_err(e)?;
        }
        root.draw(&Text::new(
            format!("{}", h.hi),
            (sx + 26, y0 + 6),
            left(11.0),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            format!("{}", h.lo),
            (sx + 26, y0 + sh - 6),
            left(11.0),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            h.scale.to_string(),
            (sx - 10, y0 + sh + 20),
            left(11.0),
        ))
        .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(out)
}

/// The selectivity matrix: colour = mean win rate over bootstraps; text = mean ± sd, `*` where
/// the pooled verdict is distinguishable.
pub fn selectivity_svg(
    m: &SelectivityMatrix,
    title: &str,
    notes: &[String],
) -> Result<String, String> {
    let values = m
        .cells
        .iter()
        .map(|r| r.iter().map(|c| Some(c.win_rate.mean)).collect())
        .collect();
    let text = m
        .cells
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| {
                    format!(
                        "{:.3}{}\n±{:.3}",
                        c.win_rate.mean,
                        if c.pooled.verdict == Verdict::Distinguishable {
                            "*"
                        } else {
                            ""
                        },
                        c.win_rate.sd
                    )
                })
                .collect()
        })
        .collect();
    heatmap_svg(&Heatmap {
        title,
        notes,
        row_axis: "G1 (a, b)",
        col_axis: "G2 (c)",
        labels: &m.labels,
        values,
        text,
        lo: 0.0,
        hi: 1.0,
        scale: "win rate",
    })
}

/// The transfer matrix: colour and text = mean fit.
pub fn transfer_svg(t: &TransferMatrix, title: &str, notes: &[String]) -> Result<String, String> {
    let values: Vec<Vec<Option<f64>>> = t
        .cells
        .iter()
        .map(|r| r.iter().map(|c| c.fit.map(|s| s.mean)).collect())
        .collect();
    let text = t
        .cells
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match &c.fit {
                    Some(s) => format!("{:.4}\n±{:.4}", s.mean, s.sd),
                    None => "—".into(),
                })
                .collect()
        })
        .collect();
    heatmap_svg(&Heatmap {
        title,
        notes,
        row_axis: "from",
        col_axis: "to",
        labels: &t.labels,
        values,
        text,
        lo: 0.0,
        hi: 1.0,
        scale: "mean fit",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_is_deterministic_and_holds_the_numbers() {
        let labels = vec!["a".to_string(), "bb".to_string()];
        let mk = || Heatmap {
            title: "t",
            notes: &[],
            row_axis: "r",
            col_axis: "c",
            labels: &labels,
            values: vec![vec![Some(0.5), Some(1.0)], vec![None, Some(0.0)]],
            text: vec![
                vec!["0.500".into(), "1.000*".into()],
                vec!["—".into(), "0.000".into()],
            ],
            lo: 0.0,
            hi: 1.0,
            scale: "win rate",
        };
        let a = heatmap_svg(&mk()).unwrap();
        let b = heatmap_svg(&mk()).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("<svg"));
        assert!(a.contains("1.000*") && a.contains("bb"));
    }
}
