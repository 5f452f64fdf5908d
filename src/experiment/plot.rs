//! SVG heatmaps of selectivity and transfer matrices (plotters' SVG backend, drawn from
//! primitives so the bytes depend only on the numbers: no system fonts are measured).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::equivalence::point::{SelectivityMatrix, Verdict};
use crate::equivalence::transfer::TransferMatrix;

/// What one heatmap shows.
pub struct Heatmap<'a> {
    pub title: &'a str,
    /// Lines under the title (command, settings); wrapped to the figure's width.
    pub notes: &'a [String],
    pub row_axis: &'a str,
    pub col_axis: &'a str,
    pub labels: &'a [String],
    /// `values[i][j]`, `None` for an empty cell.
    pub values: Vec<Vec<Option<f64>>>,
    /// Text written in each cell.
    pub text: Vec<Vec<String>>,
    /// What the colours measure (e.g. `mean fit`); the legend adds the range they span.
    pub scale: &'a str,
}

/// The colour scale: fitted to the smallest and largest value shown, so that a matrix whose
/// cells span 0.96–1.0 shows its structure instead of one shade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourScale {
    pub lo: f64,
    pub hi: f64,
}

impl ColourScale {
    /// The range of the finite values, or `None` when there is none.
    pub fn fitted(values: &[Vec<Option<f64>>]) -> Option<Self> {
        let finite = values.iter().flatten().flatten().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        (lo <= hi).then_some(Self { lo, hi })
    }

    /// Position of `v` on the scale, 0 (lo) to 1 (hi); the middle when all values are equal.
    fn t(&self, v: f64) -> f64 {
        if self.hi > self.lo {
            ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    /// White (lo) to dark blue (hi).
    fn colour(&self, v: f64) -> RGBColor {
        let t = self.t(v);
        let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
        RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
    }

    /// Enough decimals that the two ends read differently (4 at least, 12 at most).
    fn label(&self, v: f64) -> String {
        let span = (self.hi - self.lo).abs();
        let digits = if span > 0.0 {
            (2.0 - span.log10().floor()).clamp(4.0, 12.0) as usize
        } else {
            4
        };
        format!("{v:.digits$}")
    }
}

/// Greedy word wrap to `max` characters; a word longer than a line is cut.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(8);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > max {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..max).collect());
        }
        let word: String = word.into_iter().collect();
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > max && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Text is not measured (no font files): widths are estimated per character, generously, so
/// that text stays inside the figure.
const TITLE_CHAR: i32 = 9;
const NOTE_CHAR: i32 = 6;
const LABEL_CHAR: i32 = 8;
const MARGIN: i32 = 12;

/// Why a figure could not be drawn (plotters' SVG backend writes into a string, so this is
/// not expected; it is reported rather than unwrapped).
pub type PlotError = DrawingAreaErrorKind<std::io::Error>;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Where everything of a heatmap goes: sizes follow the matrix, its labels and the colour bar;
/// the title, notes and legend wrap to the resulting width.
struct Geometry {
    /// Side of a cell.
    cell: i32,
    /// Left edge of the grid (after the row labels) and its top.
    x0: i32,
    y0: i32,
    grid_h: i32,
    bar_x: i32,
    width: u32,
    height: u32,
    title: Vec<String>,
    notes: Vec<String>,
    legend: Vec<String>,
    /// Top of the axis line (under the title and notes).
    top: i32,
}

impl Geometry {
    fn of(h: &Heatmap<'_>, scale: Option<&ColourScale>, ends: Option<&(String, String)>) -> Self {
        let m = h.labels.len() as i32;
        let longest = h
            .labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(4) as i32;
        let label_w = longest * LABEL_CHAR + 2 * MARGIN;
        // Cells are wide enough for their column label and two lines of cell text.
        let longest_text = h
            .text
            .iter()
            .flatten()
            .flat_map(|t| t.lines())
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as i32;
        let cell = (longest * LABEL_CHAR)
            .max(longest_text * LABEL_CHAR + 8)
            .max(92);
        let end_w = ends.map_or(0, |(a, b)| a.len().max(b.len()) as i32 * NOTE_CHAR);
        let bar_x = label_w + cell * m + 24;
        let width = (bar_x + 20 + 6 + end_w + MARGIN).max(360);
        let title = wrap(h.title, ((width - 2 * MARGIN) / TITLE_CHAR) as usize);
        let notes: Vec<String> = h
            .notes
            .iter()
            .flat_map(|n| wrap(n, ((width - 2 * MARGIN) / NOTE_CHAR) as usize))
            .collect();
        let legend = match scale {
            Some(s) => format!(
                "colour: {}, scale fitted to the values shown, {} (white) to {} (dark blue)",
                h.scale,
                s.label(s.lo),
                s.label(s.hi)
            ),
            None => format!("colour: {} (no values)", h.scale),
        };
        let legend = wrap(&legend, ((width - 2 * MARGIN) / NOTE_CHAR) as usize);
        let title_h = 20 * title.len() as i32;
        let top = 12 + title_h + 14 * notes.len() as i32 + 8;
        let y0 = top + 40;
        let grid_h = cell * m;
        let height = y0 + grid_h + 16 + 14 * legend.len() as i32 + MARGIN;
        Geometry {
            cell,
            x0: label_w,
            y0,
            grid_h,
            bar_x,
            width: width as u32,
            height: height as u32,
            title,
            notes,
            legend,
            top,
        }
    }

    fn title_h(&self) -> i32 {
        20 * self.title.len() as i32
    }
}

fn font(size: f64) -> FontDesc<'static> {
    ("sans-serif", size).into_font()
}

fn left(size: f64) -> TextStyle<'static> {
    font(size)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center))
}

fn centre(size: f64, c: &RGBColor) -> TextStyle<'static> {
    font(size)
        .color(c)
        .pos(Pos::new(HPos::Center, VPos::Center))
}

/// Renders the heatmap to SVG text. The figure is as wide as the matrix, its labels and the
/// colour bar need; the title and notes wrap to that width.
pub fn heatmap_svg(h: &Heatmap<'_>) -> Result<String, PlotError> {
    let scale = ColourScale::fitted(&h.values);
    let ends = scale.map(|s| (s.label(s.hi), s.label(s.lo)));
    let g = Geometry::of(h, scale.as_ref(), ends.as_ref());
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (g.width, g.height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw_header(&root, h, &g)?;
        draw_grid(&root, h, &g, scale.as_ref())?;
        if let (Some(s), Some(ends)) = (&scale, &ends) {
            draw_colour_bar(&root, &g, s, ends)?;
        }
        for (k, line) in g.legend.iter().enumerate() {
            root.draw(&Text::new(
                line.clone(),
                (MARGIN, g.y0 + g.grid_h + 16 + 14 * k as i32),
                left(11.0),
            ))?;
        }
        root.present()?;
    }
    Ok(out)
}

/// The title, the notes, the axes line and the column labels.
fn draw_header(root: &Area<'_>, h: &Heatmap<'_>, g: &Geometry) -> Result<(), PlotError> {
    for (k, line) in g.title.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (MARGIN, 20 + 20 * k as i32),
            left(16.0),
        ))?;
    }
    for (k, n) in g.notes.iter().enumerate() {
        root.draw(&Text::new(
            n.clone(),
            (MARGIN, 12 + g.title_h() + 10 + 14 * k as i32),
            left(11.0),
        ))?;
    }
    root.draw(&Text::new(
        format!("{} (rows) \\ {} (columns)", h.row_axis, h.col_axis),
        (MARGIN, g.top + 8),
        left(12.0),
    ))?;
    for (j, l) in h.labels.iter().enumerate() {
        root.draw(&Text::new(
            l.clone(),
            (g.x0 + g.cell * j as i32 + g.cell / 2, g.y0 - 10),
            centre(12.0, &BLACK),
        ))?;
    }
    Ok(())
}

/// Row labels and cells: fill by the colour scale (grey when empty), text in white on dark
/// cells.
fn draw_grid(
    root: &Area<'_>,
    h: &Heatmap<'_>,
    g: &Geometry,
    scale: Option<&ColourScale>,
) -> Result<(), PlotError> {
    let cell = g.cell;
    for (i, l) in h.labels.iter().enumerate() {
        root.draw(&Text::new(
            l.clone(),
            (MARGIN, g.y0 + cell * i as i32 + cell / 2),
            left(12.0),
        ))?;
        for j in 0..h.labels.len() {
            let (x, y) = (g.x0 + cell * j as i32, g.y0 + cell * i as i32);
            let v = h
                .values
                .get(i)
                .and_then(|r| r.get(j))
                .copied()
                .flatten()
                .filter(|v| v.is_finite());
            let (fill, dark) = match (v, scale) {
                (Some(v), Some(s)) => (s.colour(v), s.t(v) > 0.55),
                _ => (RGBColor(220, 220, 220), false),
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                fill.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                WHITE.stroke_width(2),
            ))?;
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
                ))?;
            }
        }
    }
    Ok(())
}

/// The colour bar beside the grid, hi at the top, with its two end labels.
fn draw_colour_bar(
    root: &Area<'_>,
    g: &Geometry,
    s: &ColourScale,
    (hi, lo): &(String, String),
) -> Result<(), PlotError> {
    let (bar_x, y0, grid_h) = (g.bar_x, g.y0, g.grid_h);
    let steps = 20;
    for k in 0..steps {
        let v = s.hi - (s.hi - s.lo) * f64::from(k) / f64::from(steps - 1);
        let y = y0 + grid_h * k / steps;
        root.draw(&Rectangle::new(
            [(bar_x, y), (bar_x + 20, y0 + grid_h * (k + 1) / steps)],
            s.colour(v).filled(),
        ))?;
    }
    root.draw(&Text::new(hi.clone(), (bar_x + 26, y0 + 6), left(11.0)))?;
    root.draw(&Text::new(
        lo.clone(),
        (bar_x + 26, y0 + grid_h - 6),
        left(11.0),
    ))?;
    Ok(())
}

/// The selectivity matrix: colour = mean win rate over bootstraps; text = mean ± sd, `*` where
/// the pooled verdict is distinguishable.
pub fn selectivity_svg(
    m: &SelectivityMatrix,
    title: &str,
    notes: &[String],
) -> Result<String, PlotError> {
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
        scale: "mean win rate",
    })
}

/// The transfer matrix: colour and text = mean fit.
pub fn transfer_svg(
    t: &TransferMatrix,
    title: &str,
    notes: &[String],
) -> Result<String, PlotError> {
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
        scale: "mean fit",
    })
}

/// Bins of a win-rate histogram (width 0.05 over [0, 1]).
const HIST_BINS: usize = 20;

/// The win rates of every selectivity cell's replicates as histograms, one panel per ordered
/// pair (G1 row, G2 column; the diagonal is the calibration, which should sit near 1/2): how
/// much a cell's verdict moves between bootstraps. A line marks 1/2; the panel names the
/// pooled win rate and verdict.
pub fn win_rate_histogram_svg(
    m: &SelectivityMatrix,
    title: &str,
    notes: &[String],
) -> Result<String, PlotError> {
    let k = m.labels.len() as i32;
    let (pw, ph) = (220i32, 120i32);
    let label_w = m
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4) as i32
        * LABEL_CHAR
        + 2 * MARGIN;
    let width = (label_w + pw * k + MARGIN).max(360);
    let title_lines = wrap(title, ((width - 2 * MARGIN) / TITLE_CHAR) as usize);
    let note_lines: Vec<String> = notes
        .iter()
        .flat_map(|n| wrap(n, ((width - 2 * MARGIN) / NOTE_CHAR) as usize))
        .collect();
    let top = 12 + 20 * title_lines.len() as i32 + 14 * note_lines.len() as i32 + 16;
    let y0 = top + 24;
    let height = y0 + ph * k + 40;
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        for (i, line) in title_lines.iter().enumerate() {
            root.draw(&Text::new(
                line.clone(),
                (MARGIN, 20 + 20 * i as i32),
                left(16.0),
            ))?;
        }
        for (i, n) in note_lines.iter().enumerate() {
            root.draw(&Text::new(
                n.clone(),
                (
                    MARGIN,
                    12 + 20 * title_lines.len() as i32 + 10 + 14 * i as i32,
                ),
                left(11.0),
            ))?;
        }
        for (j, l) in m.labels.iter().enumerate() {
            root.draw(&Text::new(
                l.clone(),
                (label_w + pw * j as i32 + pw / 2, y0 - 10),
                centre(12.0, &BLACK),
            ))?;
        }
        let blue = RGBColor(8, 48, 107);
        for (i, row) in m.cells.iter().enumerate() {
            let py = y0 + ph * i as i32;
            root.draw(&Text::new(
                m.labels[i].clone(),
                (MARGIN, py + ph / 2),
                left(12.0),
            ))?;
            for (j, c) in row.iter().enumerate() {
                let px = label_w + pw * j as i32;
                let (x0, x1) = (px + 10, px + pw - 10);
                let (base, top_y) = (py + ph - 24, py + 22);
                let mut counts = [0usize; HIST_BINS];
                for r in &c.replicates {
                    let b = ((r.win_rate * HIST_BINS as f64) as usize).min(HIST_BINS - 1);
                    counts[b] += 1;
                }
                let most = counts.iter().copied().max().unwrap_or(0).max(1) as i32;
                root.draw(&Rectangle::new(
                    [(x0, top_y), (x1, base)],
                    RGBColor(235, 235, 235).stroke_width(1),
                ))?;
                let bw = (x1 - x0) / HIST_BINS as i32;
                for (b, &n) in counts.iter().enumerate() {
                    if n == 0 {
                        continue;
                    }
                    let h = (base - top_y) * n as i32 / most;
                    let bx = x0 + bw * b as i32;
                    root.draw(&Rectangle::new(
                        [(bx, base - h), (bx + bw, base)],
                        blue.filled(),
                    ))?;
                }
                let half = x0 + (x1 - x0) / 2;
                root.draw(&PathElement::new(
                    vec![(half, top_y), (half, base)],
                    RED.stroke_width(1),
                ))?;
                root.draw(&Text::new(
                    "0".to_string(),
                    (x0, base + 10),
                    centre(9.0, &BLACK),
                ))?;
                root.draw(&Text::new(
                    "1".to_string(),
                    (x1, base + 10),
                    centre(9.0, &BLACK),
                ))?;
                root.draw(&Text::new(
                    format!(
                        "pooled {:.3}{}",
                        c.pooled.win_rate,
                        if c.pooled.verdict == Verdict::Distinguishable {
                            " *"
                        } else {
                            ""
                        }
                    ),
                    (px + pw / 2, py + 12),
                    centre(10.0, &BLACK),
                ))?;
            }
        }
        root.draw(&Text::new(
            format!(
                "replicate win rates in bins of {:.2}; red line: 1/2; * = distinguishable (pooled)",
                1.0 / HIST_BINS as f64
            ),
            (MARGIN, height - 16),
            left(11.0),
        ))?;
        root.present()?;
    }
    Ok(out)
}

/// A patching sweep as a heatmap: rows are layers (for `heads-by-position`, layer × head), columns
/// heads, positions or the one whole layer; each cell holds the metric of the run patched there.
/// Colour: the metric from its smallest to its largest value (white to dark blue); the base and
/// source runs' metrics are in the legend, so a cell reads against both ends.
pub fn sweep_svg(r: &crate::intervene::SweepResult) -> Result<String, PlotError> {
    use crate::intervene::SweepKind;
    let (rows, cols): (Vec<String>, Vec<String>) = match r.kind {
        SweepKind::Heads => (
            (0..r.shape[0]).map(|l| format!("layer {l}")).collect(),
            (0..r.shape[1]).map(|h| format!("head {h}")).collect(),
        ),
        SweepKind::Positions => (
            (0..r.shape[0]).map(|l| format!("layer {l}")).collect(),
            (0..r.shape[1]).map(|p| format!("pos {p}")).collect(),
        ),
        SweepKind::HeadsByPosition => (
            (0..r.shape[0])
                .flat_map(|l| (0..r.shape[2]).map(move |h| format!("L{l} head {h}")))
                .collect(),
            (0..r.shape[1]).map(|p| format!("pos {p}")).collect(),
        ),
        SweepKind::Layers => (
            (0..r.shape[0]).map(|l| format!("layer {l}")).collect(),
            vec!["whole".to_string()],
        ),
    };
    // values[row][col] in the layout above.
    let value = |row: usize, col: usize| -> f64 {
        match r.kind {
            SweepKind::HeadsByPosition => {
                let (l, h) = (row / r.shape[2], row % r.shape[2]);
                r.values[(l * r.shape[1] + col) * r.shape[2] + h]
            }
            _ => r.values[row * cols.len() + col],
        }
    };
    let grid: Vec<Vec<Option<f64>>> = (0..rows.len())
        .map(|i| (0..cols.len()).map(|j| Some(value(i, j))).collect())
        .collect();
    let scale = ColourScale::fitted(&grid);
    let (cell_w, cell_h) = (
        cols.iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(4)
            .max(8) as i32
            * LABEL_CHAR,
        28i32,
    );
    let label_w =
        rows.iter().map(|c| c.chars().count()).max().unwrap_or(4) as i32 * LABEL_CHAR + 2 * MARGIN;
    let width = (label_w + cell_w * cols.len() as i32 + MARGIN).max(420);
    let title = format!(
        "patching sweep: {} of {} ({})",
        r.metric,
        r.hook,
        r.kind.name()
    );
    let title_lines = wrap(&title, ((width - 2 * MARGIN) / TITLE_CHAR) as usize);
    let legend = wrap(
        &format!(
            "cell = metric with that site patched from the source run; base run {:.4}, source run {:.4}; colour {} (white) to {} (dark blue)",
            r.base_metric,
            r.source_metric,
            scale.map_or("-".into(), |s| s.label(s.lo)),
            scale.map_or("-".into(), |s| s.label(s.hi)),
        ),
        ((width - 2 * MARGIN) / NOTE_CHAR) as usize,
    );
    let y0 = 12 + 20 * title_lines.len() as i32 + 30;
    let height = y0 + cell_h * rows.len() as i32 + 16 + 14 * legend.len() as i32 + MARGIN;
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        for (k, line) in title_lines.iter().enumerate() {
            root.draw(&Text::new(
                line.clone(),
                (MARGIN, 20 + 20 * k as i32),
                left(16.0),
            ))?;
        }
        for (j, c) in cols.iter().enumerate() {
            root.draw(&Text::new(
                c.clone(),
                (label_w + cell_w * j as i32 + cell_w / 2, y0 - 10),
                centre(11.0, &BLACK),
            ))?;
        }
        for (i, row) in rows.iter().enumerate() {
            let y = y0 + cell_h * i as i32;
            root.draw(&Text::new(
                row.clone(),
                (MARGIN, y + cell_h / 2),
                left(11.0),
            ))?;
            for j in 0..cols.len() {
                let v = value(i, j);
                let x = label_w + cell_w * j as i32;
                let (fill, dark) = match scale {
                    Some(s) if v.is_finite() => (s.colour(v), s.t(v) > 0.55),
                    _ => (RGBColor(220, 220, 220), false),
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w, y + cell_h)],
                    fill.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w, y + cell_h)],
                    WHITE.stroke_width(1),
                ))?;
                root.draw(&Text::new(
                    format!("{v:.3}"),
                    (x + cell_w / 2, y + cell_h / 2),
                    centre(10.0, if dark { &WHITE } else { &BLACK }),
                ))?;
            }
        }
        for (k, line) in legend.iter().enumerate() {
            root.draw(&Text::new(
                line.clone(),
                (MARGIN, y0 + cell_h * rows.len() as i32 + 16 + 14 * k as i32),
                left(11.0),
            ))?;
        }
        root.present()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("pool_{i}")).collect()
    }

    fn map<'a>(
        labels: &'a [String],
        values: Vec<Vec<Option<f64>>>,
        notes: &'a [String],
    ) -> Heatmap<'a> {
        let text = values
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.map_or("—".into(), |v| format!("{v:.4}")))
                    .collect()
            })
            .collect();
        Heatmap {
            title: "t",
            notes,
            row_axis: "r",
            col_axis: "c",
            labels,
            values,
            text,
            scale: "mean fit",
        }
    }

    fn attr(svg: &str, tag: &str, name: &str) -> Vec<f64> {
        svg.split(&format!("<{tag} "))
            .skip(1)
            .filter_map(|t| {
                let rest = t
                    .split(&format!(" {name}=\""))
                    .nth(1)
                    .or_else(|| t.strip_prefix(&format!("{name}=\"")))?;
                rest.split('"').next()?.parse().ok()
            })
            .collect()
    }

    /// The text of every `<text>` element, joined by spaces (wrapped lines read as one).
    fn texts(svg: &str) -> String {
        svg.split("<text ")
            .skip(1)
            .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
            .filter_map(|t| t.split("</text>").next())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn svg_is_deterministic_and_holds_the_numbers() {
        let l = vec!["a".to_string(), "bb".to_string()];
        let mk = || {
            map(
                &l,
                vec![vec![Some(0.5), Some(1.0)], vec![None, Some(0.0)]],
                &[],
            )
        };
        let a = heatmap_svg(&mk()).unwrap();
        assert_eq!(a, heatmap_svg(&mk()).unwrap());
        assert!(a.starts_with("<svg"));
        assert!(a.contains("1.0000") && a.contains("bb"));
    }

    #[test]
    fn long_notes_wrap_instead_of_widening_the_figure() {
        let l = labels(3);
        let long = vec![format!("congruity compare {}", "--flag value ".repeat(40))];
        let values = vec![vec![Some(0.97); 3]; 3];
        let short = heatmap_svg(&map(&l, values.clone(), &[])).unwrap();
        let wrapped = heatmap_svg(&map(&l, values, &long)).unwrap();
        assert_eq!(attr(&short, "svg", "width"), attr(&wrapped, "svg", "width"));
        assert!(attr(&wrapped, "svg", "height")[0] > attr(&short, "svg", "height")[0]);
    }

    #[test]
    fn colours_span_the_values_shown() {
        // Cells between 0.96 and 1.0 get the two ends of the scale, not one shade.
        let l = labels(2);
        let svg = heatmap_svg(&map(
            &l,
            vec![vec![Some(0.96), Some(1.0)], vec![Some(0.98), Some(0.999)]],
            &[],
        ))
        .unwrap();
        assert!(svg.contains("#F7FBFF"), "lowest cell is white");
        assert!(svg.contains("#08306B"), "highest cell is dark blue");
        assert!(
            texts(&svg).contains("0.9600 (white) to 1.0000 (dark blue)"),
            "{}",
            texts(&svg)
        );
        let s = ColourScale {
            lo: 0.999_990,
            hi: 0.999_998,
        };
        assert_ne!(s.label(s.lo), s.label(s.hi), "labels resolve a tiny span");
    }

    #[test]
    fn no_finite_value_gives_grey_cells_and_says_so() {
        let l = labels(1);
        let svg = heatmap_svg(&map(&l, vec![vec![None]], &[])).unwrap();
        assert!(svg.contains("(no values)"));
        assert_eq!(ColourScale::fitted(&[vec![Some(f64::NAN)]]), None);
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("aaaa bbbb cc", 8), vec!["aaaa", "bbbb cc"]);
        assert_eq!(wrap("abcdefghijkl", 8), vec!["abcdefgh", "ijkl"]);
        assert_eq!(wrap("", 10), vec![""]);
    }
}
