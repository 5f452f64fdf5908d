//! The figures in `docs/` are sized to their content and coloured on a scale fitted to their
//! values: the heatmap (cells and colour bar) fills the SVG's width, and the lowest and highest
//! cells get the two ends of the scale, which the legend states.

use std::path::PathBuf;

/// The attribute text of every `<tag ...>` element.
fn elements<'a>(svg: &'a str, tag: &str) -> Vec<&'a str> {
    svg.split(&format!("<{tag} "))
        .skip(1)
        .filter_map(|t| t.split('>').next())
        .collect()
}

fn attr(element: &str, name: &str) -> Option<String> {
    let rest = element.split(&format!("{name}=\"")).nth(1)?;
    rest.split('"').next().map(str::to_string)
}

fn num(element: &str, name: &str) -> f64 {
    attr(element, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("`{name}` of <{element}>"))
}

fn svgs() -> Vec<PathBuf> {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&docs)
        .expect("docs/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_figure_fills_its_width_and_fits_its_colour_scale() {
    let files = svgs();
    assert!(files.len() >= 4, "docs/ should hold the four heatmaps");
    for path in files {
        let name = path.display();
        let svg = std::fs::read_to_string(&path).unwrap();
        let root = elements(&svg, "svg");
        let width = num(root[0], "width");
        let rects = elements(&svg, "rect");
        // The background is the first rect; cells are the square ones, the colour bar the
        // narrow ones beside them.
        let drawn: Vec<&str> = rects
            .iter()
            .copied()
            .filter(|r| num(r, "width") < width)
            .collect();
        let cells: Vec<&str> = drawn
            .iter()
            .copied()
            .filter(|r| num(r, "width") == num(r, "height") && num(r, "width") >= 40.0)
            .collect();
        assert!(!cells.is_empty(), "{name}: no heatmap cells");
        let left = drawn
            .iter()
            .map(|r| num(r, "x"))
            .fold(f64::INFINITY, f64::min);
        let right = drawn
            .iter()
            .map(|r| num(r, "x") + num(r, "width"))
            .fold(0.0, f64::max);
        assert!(
            right / width >= 0.75,
            "{name}: the heatmap ends at {right} px of {width}: the figure is wider than its content"
        );
        assert!(
            left < 0.5 * width,
            "{name}: the heatmap starts at {left} of {width}"
        );
        let fills: Vec<String> = cells.iter().filter_map(|c| attr(c, "fill")).collect();
        for end in ["#F7FBFF", "#08306B"] {
            assert!(
                fills.iter().any(|f| f.eq_ignore_ascii_case(end)),
                "{name}: no cell has the scale's end colour {end}; fills: {fills:?}"
            );
        }
        let text: String = svg
            .split("<text ")
            .skip(1)
            .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
            .filter_map(|t| t.split("</text>").next())
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("scale fitted to the values shown"),
            "{name}: the legend does not state the colour scale"
        );
    }
}
