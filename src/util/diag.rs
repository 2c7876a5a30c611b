//! Diagnostics that point at a place in a source file.
//!
//! Every user-facing error about `site.toml`, an item file or a template is a
//! [`Diagnostic`]: the file, the line and column, what is wrong and what to write
//! instead, shown with the offending line the way compilers do.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    pub(crate) file: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub(crate) line: usize,
    /// 1-based, in characters.
    pub(crate) column: usize,
    pub(crate) message: String,
    /// What to write instead.
    pub(crate) help: Option<String>,
    /// The source line and the marked character range within it.
    snippet: Option<Box<(String, usize, usize)>>,
}

impl Diagnostic {
    /// A problem at a byte range of `src`, the contents of `file`.
    pub(crate) fn at_span(
        file: &Path,
        src: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let start = floor_char_boundary(src, span.start.min(src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = src[..start].matches('\n').count() + 1;
        let column = src[line_start..start].chars().count() + 1;
        let text = src[line_start..line_end].trim_end_matches('\r').to_string();
        let end = floor_char_boundary(src, span.end.clamp(start, line_end));
        let width = src[start..end].chars().count().max(1);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            help: None,
            snippet: Some(Box::new((text, column, width))),
        }
    }

    /// A problem on a 1-based line (and column) of `src`.
    pub(crate) fn at_line(
        file: &Path,
        src: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        let offset: usize = src
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let line_len = src[offset.min(src.len())..]
            .find('\n')
            .unwrap_or(src.len() - offset.min(src.len()));
        let col_offset = src[offset.min(src.len())..]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_len, |(i, _)| i.min(line_len));
        let at = offset + col_offset;
        Self::at_span(file, src, at..at + 1, message)
    }

    /// A problem at a known position, without quoting the line.
    pub(crate) fn at_position(
        file: &Path,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            line,
            column,
            ..Self::in_file(file, message)
        }
    }

    /// A problem with a file as a whole (it is missing, unreadable, ...).
    pub(crate) fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            snippet: None,
        }
    }

    /// Without the quoted line (it may hold a secret, such as a password in a URL).
    pub(crate) fn redacted(mut self) -> Self {
        self.snippet = None;
        self
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(snippet) = &self.snippet {
            let (text, column, width) = snippet.as_ref();

            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            write!(
                f,
                "\n{pad} |\n{number} | {text}\n{pad} | {}{}",
                " ".repeat(column - 1),
                "^".repeat(*width)
            )?;
        }
        if let Some(help) = &self.help {
            let pad = " ".repeat(if self.snippet.is_some() {
                self.line.to_string().len()
            } else {
                0
            });
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics reported together, so a user fixes all of them in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was reported, else the collected diagnostics.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} problems found", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Turns a TOML parse or type error into a diagnostic with a useful `help`.
///
/// `known` lists example lines for fields of the table being read, used to say
/// what to write for a missing field and to suggest the nearest name for a typo.
/// Parses `part` (which starts at byte `offset` of the file's text `whole`)
/// as `T`. When a key is unknown, its line is blanked and the text parsed
/// again, so every unknown key of the file is reported in one run; any other
/// error ends the search (after blanking, it could be an artefact). `known`
/// gives the keys to suggest for an error.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &Path,
    whole: &str,
    offset: usize,
    part: &str,
    known: impl Fn(&toml::de::Error) -> &'static [(&'static str, &'static str)],
) -> Result<T, Diagnostics> {
    let first = match toml::from_str::<T>(part) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let unknown = |e: &toml::de::Error| e.message().starts_with("unknown field");
    let mut problems = Diagnostics(vec![from_toml(file, whole, offset, &first, known(&first))]);
    let mut masked = part.as_bytes().to_vec();
    let mut err = first;
    for _ in 0..32 {
        let Some(span) = err.span().filter(|_| unknown(&err)) else {
            break;
        };
        // Spaces for the key's line, byte for byte: spans stay the file's own.
        let start = masked[..span.start.min(masked.len())]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        for b in masked[start..].iter_mut().take_while(|b| **b != b'\n') {
            *b = b' ';
        }
        let Ok(text) = std::str::from_utf8(&masked) else {
            break;
        };
        match toml::from_str::<T>(text) {
            Err(e) if unknown(&e) && e.span() != err.span() => {
                problems.push(from_toml(file, whole, offset, &e, known(&e)));
                err = e;
            }
            _ => break,
        }
    }
    Err(problems)
}

pub(crate) fn from_toml(
    file: &Path,
    src: &str,
    offset: usize,
    err: &toml::de::Error,
    known: &[(&str, &str)],
) -> Diagnostic {
    let message = err.message().trim().to_string();
    let span = err
        .span()
        .map_or(offset..offset, |s| s.start + offset..s.end + offset);
    let mut d = Diagnostic::at_span(file, src, span, first_line(&message));
    if let Some(field) = between(&message, "unknown field `", "`") {
        let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
        d.message = format!("unknown key `{field}`");
        d.help = Some(match nearest(field, &names) {
            Some(n) => format!(
                "did you mean `{n}`? Keys allowed here: {}",
                names.join(", ")
            ),
            None => format!("remove it; keys allowed here: {}", names.join(", ")),
        });
    } else if let Some(field) = between(&message, "missing field `", "`") {
        d.message = format!("missing key `{field}`");
        let example = known
            .iter()
            .find(|(k, _)| *k == field)
            .map_or_else(|| format!("{field} = ..."), |(_, e)| e.to_string());
        d.help = Some(format!("add it to this table, for example `{example}`"));
    } else if message.contains("invalid type") {
        d.help = Some(
            "check the value's type: text needs quotes, numbers do not, and times are written like 2026-12-12T20:00:00+08:00".into(),
        );
    } else if let Some(rest) = message.split_once('\n') {
        // Syntax errors: toml puts the detail on the following lines.
        d.message = format!("invalid TOML: {}", rest.0);
        d.help = Some(format!(
            "{}; see https://toml.io for the syntax",
            rest.1.trim()
        ));
    } else if message.starts_with("invalid") {
        d.help = Some("see https://toml.io for the syntax".into());
    }
    d
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let len = s[start..].find(close)?;
    Some(&s[start..start + len])
}

/// The closest candidate by edit distance, if it is close enough to be a typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_gives_line_and_column() {
        let src = "a = 1\nstart = 2026-12-01T10:00:00\n";
        let d = Diagnostic::at_span(Path::new("site.toml"), src, 14..33, "no offset");
        assert_eq!((d.line, d.column), (2, 9));
        let text = d.to_string();
        assert!(text.starts_with("site.toml:2:9: no offset"), "{text}");
        assert!(text.contains("2 | start = 2026-12-01T10:00:00"), "{text}");
        assert!(text.contains("^^^^^^^^^^^^^^^^^^^"), "{text}");
    }

    #[test]
    fn at_line_points_at_column() {
        let src = "one\ntwo three\n";
        let d = Diagnostic::at_line(Path::new("t.html"), src, 2, 5, "here");
        assert_eq!((d.line, d.column), (2, 5));
    }

    #[test]
    fn nearest_finds_typos_only() {
        assert_eq!(nearest("nmae", &["name", "start"]), Some("name"));
        assert_eq!(nearest("zzzzzz", &["name", "start"]), None);
    }
}
