//! Progress inside long stages (running implementations, fits) on stderr: a bar with counts, rate
//! and time left. Drawn only when stderr is a terminal (indicatif hides it otherwise), so logs and
//! captured output stay clean; nothing of it enters a report.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether, and under which name, a stage shows its progress. The default shows nothing, so
/// library callers and tests get quiet runs unless they ask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    label: Option<String>,
}

impl Progress {
    /// No progress shown.
    pub fn hidden() -> Self {
        Self::default()
    }

    /// A bar named `label` (e.g. `selectivity fits`) for every counted step of the stage.
    pub fn shown(label: impl Into<String>) -> Self {
        Self {
            label: Some(label.into()),
        }
    }

    /// The same setting under another name (nothing when hidden).
    pub fn named(&self, label: impl Into<String>) -> Self {
        match self.label {
            Some(_) => Self::shown(label),
            None => Self::hidden(),
        }
    }

    pub fn is_shown(&self) -> bool {
        self.label.is_some()
    }

    /// A bar over `len` steps of `unit` (e.g. `fits`), or a hidden one.
    pub fn bar(&self, len: u64, unit: &str) -> ProgressBar {
        let Some(label) = &self.label else {
            return ProgressBar::hidden();
        };
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let template = format!(
            "{{msg:28}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} {{elapsed}} (eta {{eta}})"
        );
        pb.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(label.clone());
        pb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_stays_hidden_under_any_name() {
        let p = Progress::hidden();
        assert!(!p.is_shown());
        assert!(!p.named("fits").is_shown());
        assert!(p.bar(10, "fits").is_hidden());
        assert!(Progress::shown("x").named("y").is_shown());
    }

    #[test]
    fn the_template_renders() {
        // A bad template would silently fall back to the default style; this checks ours parses.
        let t = "{msg:28} [{bar:30}] {pos}/{len} fits {per_sec} {elapsed} (eta {eta})";
        assert!(ProgressStyle::with_template(t).is_ok());
    }
}
