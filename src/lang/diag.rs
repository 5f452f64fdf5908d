//! Diagnostics: one error type for every language stage, rendered by miette.
//!
//! A [`LangError`] carries its own source file (name + text), so errors from imported files point
//! into the right file. Several errors found in one pass travel together as a [`Report`].

use std::fmt;
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

use super::ast::Span;

/// The source text of one file, shared by every error that points into it.
#[derive(Clone)]
pub struct SourceFile {
    /// The path as the user wrote it (shown in `file:line:col`).
    pub name: Arc<str>,
    pub text: Arc<str>,
    snippets: Arc<Snippets>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let name: String = name.into();
        let text: Arc<str> = text.into();
        let snippets = Arc::new(Snippets {
            name: name.clone(),
            text: text.clone(),
        });
        SourceFile {
            name: Arc::from(name),
            text,
            snippets,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceFile({:?})", self.name)
    }
}

/// The longest source line shown whole in a snippet; longer lines are shown as a window around
/// the label (miette cannot lay out a label past column 65,535, and a 100k-character line helps
/// nobody). The header still states the label's true line and column.
const MAX_SNIPPET_LINE: usize = 240;
/// How much of a clipped line is shown before the label's start.
const WINDOW_BEFORE: usize = 60;
/// The longest label underline; a 100k-character identifier is marked by its first characters.
const MAX_LABEL: usize = 80;

/// A file's text as miette reads it for snippets, clipping lines too long to show.
struct Snippets {
    name: String,
    text: Arc<str>,
}

impl SourceCode for Snippets {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let whole = self.text.as_bytes().read_span(span, before, after)?;
        let too_long = whole
            .data()
            .split(|&b| b == b'\n')
            .any(|line| line.len() > MAX_SNIPPET_LINE);
        if !too_long {
            return Ok(Box::new(MietteSpanContents::new_named(
                self.name.clone(),
                whole.data(),
                *whole.span(),
                whole.line(),
                whole.column(),
                whole.line_count(),
            )));
        }
        // Only the span's own line, and of it a window that starts shortly before the span.
        let text = &*self.text;
        let at = floor_char_boundary(text, span.offset().min(text.len()));
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let start = floor_char_boundary(text, at.saturating_sub(WINDOW_BEFORE).max(line_start));
        let end = floor_char_boundary(text, (start + MAX_SNIPPET_LINE).min(line_end)).max(at);
        let line = text[..at].matches('\n').count();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &text.as_bytes()[start..end],
            SourceSpan::new(start.into(), end - start),
            line,
            start - line_start,
            1,
        )))
    }
}

/// `text` with any whitespace-free run longer than `MAX_ECHO` characters shortened to its first
/// characters and a count, and the whole cut after `MAX_TEXT` characters, so that an error
/// echoing a 1M-digit literal, a 100k-character name or a 20k-character import path stays
/// readable (and small).
pub fn clip_echo(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX_TEXT: usize = 1000;
    let words = clip_words(text);
    let n = words.chars().count();
    if n <= MAX_TEXT {
        return words;
    }
    let kept: String = words.chars().take(MAX_TEXT / 2).collect();
    std::borrow::Cow::Owned(format!("{kept}… ({n} characters in all)"))
}

fn clip_words(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX_ECHO: usize = 200;
    const KEEP: usize = 40;
    if text.len() <= MAX_ECHO
        || !text
            .split(char::is_whitespace)
            .any(|w| w.chars().count() > MAX_ECHO)
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let n = word.chars().count();
        if n > MAX_ECHO {
            out.extend(word.chars().take(KEEP));
            out.push_str(&format!("… ({n} characters)"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    std::borrow::Cow::Owned(out)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// What went wrong, as a stable code (`congruity::unknown_name`) that tests and tools can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A block's `{` (or a `(`) is never closed.
    Unterminated,
    /// A literal is out of range or malformed (too large, too precise, bad escape).
    Literal,
    UnknownName,
    UnknownTask,
    UnknownPrimitive,
    UnknownFunction,
    /// A primitive or function called with the wrong number of arguments.
    Arity,
    /// A lambda with the wrong number of parameters for where it is used.
    LambdaArity,
    /// An argument of the wrong kind (a selector where a sequence is needed, a lambda where a
    /// predicate is needed, ...).
    ArgKind,
    /// Categorical / numerical misuse.
    Encoding,
    /// A scalar operation applied to values it does not accept (`a + 1`).
    Type,
    /// Arithmetic that cannot be evaluated on the value set (division by zero, overflow).
    Arithmetic,
    Cycle,
    Duplicate,
    MissingOutput,
    MultipleOutputs,
    /// A reserved name used for a variable.
    Reserved,
    Vocab,
    MaxLen,
    /// A task field is missing or repeated.
    TaskField,
    /// A value set grew past the checker's limits.
    ValueSetTooLarge,
    Pipeline,
    Hook,
    Circuit,
    Check,
    Proof,
    Import,
    /// A file could not be read.
    Io,
    /// A command-line input token is not in the vocabulary, or the input is out of the domain.
    Input,
    /// Evaluation failed.
    Eval,
    /// Expression nesting beyond what the tools accept.
    TooDeep,
    /// A bug in congruity (never the spec's fault); reported instead of panicking.
    Internal,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "congruity::syntax",
            ErrorKind::Unterminated => "congruity::unterminated",
            ErrorKind::Literal => "congruity::literal",
            ErrorKind::UnknownName => "congruity::unknown_name",
            ErrorKind::UnknownTask => "congruity::unknown_task",
            ErrorKind::UnknownPrimitive => "congruity::unknown_primitive",
            ErrorKind::UnknownFunction => "congruity::unknown_function",
            ErrorKind::Arity => "congruity::arity",
            ErrorKind::LambdaArity => "congruity::lambda_arity",
            ErrorKind::ArgKind => "congruity::argument_kind",
            ErrorKind::Encoding => "congruity::encoding",
            ErrorKind::Type => "congruity::type",
            ErrorKind::Arithmetic => "congruity::arithmetic",
            ErrorKind::Cycle => "congruity::cycle",
            ErrorKind::Duplicate => "congruity::duplicate",
            ErrorKind::MissingOutput => "congruity::missing_output",
            ErrorKind::MultipleOutputs => "congruity::multiple_outputs",
            ErrorKind::Reserved => "congruity::reserved_name",
            ErrorKind::Vocab => "congruity::vocab",
            ErrorKind::MaxLen => "congruity::max_len",
            ErrorKind::TaskField => "congruity::task_field",
            ErrorKind::ValueSetTooLarge => "congruity::value_set_too_large",
            ErrorKind::Pipeline => "congruity::pipeline",
            ErrorKind::Hook => "congruity::hook",
            ErrorKind::Circuit => "congruity::circuit",
            ErrorKind::Check => "congruity::check",
            ErrorKind::Proof => "congruity::proof",
            ErrorKind::Import => "congruity::import",
            ErrorKind::Io => "congruity::io",
            ErrorKind::Input => "congruity::input",
            ErrorKind::Eval => "congruity::eval",
            ErrorKind::TooDeep => "congruity::too_deep",
            ErrorKind::Internal => "congruity::internal",
        }
    }
}

/// A labelled byte range of the error's source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: Option<String>,
    /// The location shown in the `file:line:col` header.
    pub primary: bool,
}

/// One diagnostic of the language: parse, check, load or input errors.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", clip_echo(message))]
pub struct LangError {
    pub kind: ErrorKind,
    pub message: String,
    pub file: Option<SourceFile>,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl LangError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> LangError {
        LangError {
            kind,
            message: message.into(),
            file: None,
            labels: Vec::new(),
            help: None,
        }
    }

    /// An error at `span` of `file`, with the label shown under the caret.
    pub fn at(
        kind: ErrorKind,
        file: &SourceFile,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> LangError {
        LangError {
            kind,
            message: message.into(),
            file: Some(file.clone()),
            labels: vec![Label {
                span,
                text: Some(label.into()),
                primary: true,
            }],
            help: None,
        }
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> LangError {
        self.labels.push(Label {
            span,
            text: Some(text.into()),
            primary: false,
        });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> LangError {
        self.help = Some(help.into());
        self
    }

    pub fn internal(message: impl Into<String>) -> LangError {
        LangError::new(
            ErrorKind::Internal,
            format!("internal error: {}", message.into()),
        )
        .with_help("this is a bug in congruity, not in the spec; please report it")
    }

    /// `file:line:col` of the primary label, when there is one.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        let label = self
            .labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())?;
        let (line, col) = file.line_col(label.span.start);
        Some(format!("{}:{line}:{col}", file.name))
    }

    /// Plain-text rendering (ASCII, no colour, 100 columns): stable, for snapshots and logs.
    pub fn render_plain(&self) -> String {
        render_plain(self)
    }
}

impl Diagnostic for LangError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(clip_echo(h).into_owned()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.file
            .as_ref()
            .map(|f| f.snippets.as_ref() as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.file.as_ref()?;
        if self.labels.is_empty() {
            return None;
        }
        let len = file.text.len();
        Some(Box::new(self.labels.iter().map(move |l| {
            let text = &file.text;
            let start = floor_char_boundary(text, l.span.start.min(len));
            let end = l.span.end.clamp(start, len);
            // On a line too long to show whole, a label must end within the snippet window.
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[start..].find('\n').map_or(len, |i| start + i);
            let end = if line_end - line_start > MAX_SNIPPET_LINE {
                end.min(line_end)
                    .min(floor_char_boundary(text, start + MAX_LABEL).max(start))
            } else {
                end
            };
            let span = SourceSpan::new(start.into(), end - start);
            let label = l.text.as_deref().map(|t| clip_echo(t).into_owned());
            if l.primary {
                LabeledSpan::new_primary_with_span(label, span)
            } else {
                LabeledSpan::new_with_span(label, span)
            }
        })))
    }
}

/// Every error found in one file (and its imports), in source order. The first is the primary
/// diagnostic; the others ride along as related diagnostics when rendered through miette.
#[derive(Clone, Debug)]
pub struct Report {
    pub errors: Vec<LangError>,
}

impl Report {
    pub fn new(errors: Vec<LangError>) -> Report {
        Report { errors }
    }

    pub fn single(error: LangError) -> Report {
        Report {
            errors: vec![error],
        }
    }

    /// Every error rendered as plain text, separated by blank lines.
    pub fn render_plain(&self) -> String {
        self.errors
            .iter()
            .map(|e| render_plain(e))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl From<LangError> for Report {
    fn from(e: LangError) -> Report {
        Report::single(e)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.as_slice() {
            [] => f.write_str("no errors"),
            [one] => write!(f, "{one}"),
            [first, rest @ ..] => write!(f, "{first} (and {} more)", rest.len()),
        }
    }
}

impl std::error::Error for Report {}

impl Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.errors.first().and_then(|e| e.code())
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.errors.first().and_then(|e| e.help())
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.errors.first().and_then(|e| e.source_code())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.errors.first().and_then(|e| e.labels())
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.errors.len() <= 1 {
            return None;
        }
        Some(Box::new(
            self.errors[1..].iter().map(|e| e as &dyn Diagnostic),
        ))
    }
}

/// Renders any diagnostic as plain ASCII text without colour at a fixed width of 100 columns, so
/// the same error always gives the same bytes.
pub fn render_plain(diag: &dyn Diagnostic) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::none())
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, diag).is_err() {
        return format!("{diag}");
    }
    out
}

/// The closest candidate to `name` by edit distance, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        let longest = name.chars().count().max(c.chars().count());
        // A suggestion must keep something of the name: `d` for `a` is no typo.
        let limit = (longest / 3).max(1).min(longest.saturating_sub(1));
        if d <= limit && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `a`, `a or b`, `a, b or c` (with the final word given).
pub fn join_words(words: &[String], last: &str) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let t = "ab\ncé d\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        // 'é' is two bytes: 'd' is at byte 7, column 4.
        assert_eq!(line_col(t, 7), (2, 4));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn echoes_are_clipped_with_their_length() {
        assert_eq!(clip_echo("unknown name `ab`"), "unknown name `ab`");
        let long = format!("literal {} is too large", "9".repeat(5000));
        let clipped = clip_echo(&long);
        assert!(clipped.starts_with(&format!("literal {}… (5000 characters)", "9".repeat(40))));
        assert!(clipped.ends_with(" is too large"));
        let many = "word ".repeat(2000);
        let clipped = clip_echo(&many);
        assert!(clipped.chars().count() < 600 && clipped.ends_with("(10000 characters in all)"));
    }

    #[test]
    fn a_label_past_column_65535_renders_with_its_true_column() {
        let text = format!("{}oops and more\nnext line\n", " ".repeat(70_000));
        let file = SourceFile::new("long.interp", text);
        let e = LangError::at(
            ErrorKind::Syntax,
            &file,
            Span::new(70_000, 70_004),
            "bad",
            "here",
        );
        let out = e.render_plain();
        assert!(out.contains("[long.interp:1:70001]"), "{out}");
        assert!(
            out.contains("oops and more") && out.contains("here"),
            "{out}"
        );
        assert!(out.len() < 2000, "{} bytes", out.len());
        // Short lines keep their context as before.
        let file = SourceFile::new("short.interp", "a\nbb oops\nc\n");
        let e = LangError::at(ErrorKind::Syntax, &file, Span::new(5, 9), "bad", "here");
        let out = e.render_plain();
        assert!(
            out.contains("[short.interp:2:4]") && out.contains(" a") && out.contains(" c"),
            "{out}"
        );
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(
            did_you_mean("tokenz", ["tokens", "indices"]),
            Some("tokens")
        );
        assert_eq!(did_you_mean("zzz", ["tokens", "indices"]), None);
        assert_eq!(did_you_mean("slect", ["select", "map"]), Some("select"));
    }

    #[test]
    fn join_words_reads_naturally() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(join_words(&w(&["a"]), "or"), "a");
        assert_eq!(join_words(&w(&["a", "b"]), "or"), "a or b");
        assert_eq!(join_words(&w(&["a", "b", "c"]), "or"), "a, b or c");
    }
}
