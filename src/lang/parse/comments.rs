//! Lexical scan: comments and brackets, outside strings (used by the formatter to keep comments,
//! and by syntax errors to name an unclosed bracket).

use super::Span;

/// A `#` comment: its span runs from `#` to the end of the line (without the newline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
    /// The text from `#` on, trailing whitespace removed.
    pub text: String,
}

/// Every comment of a source text, in order. Strings are skipped (`"#"` is not a comment).
pub fn comments(text: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    scan(text, |ev| {
        if let ScanEvent::Comment(span) = ev {
            out.push(Comment {
                span,
                text: text[span.start..span.end].trim_end().to_string(),
            });
        }
    });
    out
}

enum ScanEvent {
    Comment(Span),
    Open(char, usize),
    Close(char),
}

fn scan(text: &str, mut f: impl FnMut(ScanEvent)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                f(ScanEvent::Comment(Span::new(i, end)));
                i = end;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b @ (b'{' | b'(' | b'[') => {
                f(ScanEvent::Open(b as char, i));
                i += 1;
            }
            b @ (b'}' | b')' | b']') => {
                f(ScanEvent::Close(b as char));
                i += 1;
            }
            _ => i += 1,
        }
    }
}

/// The innermost bracket opened before `limit` and never closed, if any.
pub(super) fn unclosed_bracket(text: &str, limit: usize) -> Option<(char, usize)> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    scan(&text[..limit.min(text.len())], |ev| match ev {
        ScanEvent::Open(c, at) => stack.push((c, at)),
        ScanEvent::Close(c) => {
            let open = match c {
                '}' => '{',
                ')' => '(',
                _ => '[',
            };
            if let Some(pos) = stack.iter().rposition(|(o, _)| *o == open) {
                stack.truncate(pos);
            }
        }
        ScanEvent::Comment(_) => {}
    });
    stack.last().copied()
}
