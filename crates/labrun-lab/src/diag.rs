//! Diagnostics: a message, a code, and the place in a source file it is about.
//!
//! Libraries collect these; the CLI decides how to render them (miette's graphical report with
//! a source snippet, or one `file:line:col` line each).

use crate::yaml::Span;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded source file, shared by every diagnostic that points into it.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(SourceFile { path: path.into(), text: text.into() })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// `path:line:col` for a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let (line, col) = self.line_col(offset);
        Location { file: self.path.clone(), line, col }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A span of a loaded source, kept on what the engine evaluates (an `expect` key) so a failure
/// at run time is drawn with the same snippet and caret as a validation error.
#[derive(Debug, Clone)]
pub struct SourceRef {
    pub file: Arc<SourceFile>,
    pub span: crate::yaml::Span,
}

impl PartialEq for SourceRef {
    fn eq(&self, other: &Self) -> bool {
        self.file.path == other.file.path && self.span == other.span
    }
}

impl SourceRef {
    pub fn location(&self) -> Location {
        self.file.location(self.span.start)
    }
}

/// A place in a lab source, kept on steps so run-time reports can point back at them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a lab source.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable, greppable code such as `labrun::unknown-parameter`.
    pub code: &'static str,
    pub message: String,
    pub source: Option<Arc<SourceFile>>,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    /// A second place that explains the first (the earlier duplicate, say).
    pub related: Option<(Span, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            source: None,
            span: Span::default(),
            label: String::new(),
            help: None,
            related: None,
        }
    }
    pub fn at(mut self, source: &Arc<SourceFile>, span: Span, label: impl Into<String>) -> Self {
        self.source = Some(source.clone());
        self.span = span;
        self.label = label.into();
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related = Some((span, label.into()));
        self
    }
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    pub fn location(&self) -> Option<Location> {
        self.source.as_ref().map(|s| s.location(self.span.start))
    }
    /// `file:line:col: error[code]: message (help)` on one line.
    pub fn one_line(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let loc = self.location().map(|l| format!("{l}: ")).unwrap_or_default();
        let help = self.help.as_ref().map(|h| format!(" (help: {h})")).unwrap_or_default();
        format!("{loc}{sev}[{}]: {}{help}", self.code, self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// miette needs a named source; we keep ours behind an Arc and hand out a view.
struct NamedFile(Arc<SourceFile>, String);

impl miette::SourceCode for NamedFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.0.text.read_span(span, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.1.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// A miette view of a diagnostic, for the graphical renderer.
pub struct Report {
    diag: Diagnostic,
    source: Option<NamedFile>,
}

impl Report {
    pub fn new(diag: Diagnostic) -> Self {
        let source = diag.source.clone().map(|s| {
            let name = s.path.display().to_string();
            NamedFile(s, name)
        });
        Report { diag, source }
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.diag, f)
    }
}
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}
impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diag.code))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diag.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let mut labels = vec![miette::LabeledSpan::new_primary_with_span(
            Some(self.diag.label.clone()).filter(|l| !l.is_empty()),
            (self.diag.span.start, self.diag.span.len().max(1)),
        )];
        if let Some((span, label)) = &self.diag.related {
            labels.push(miette::LabeledSpan::new_with_span(Some(label.clone()), (span.start, span.len().max(1))));
        }
        Some(Box::new(labels.into_iter()))
    }
}

/// Renders diagnostics with source snippets, without colour (stable for tests and logs).
pub fn render_plain(diags: &[Diagnostic]) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100).with_links(false);
    let mut out = String::new();
    for d in diags {
        let _ = handler.render_report(&mut out, &Report::new(d.clone()));
    }
    out
}

/// Path shown in diagnostics: relative to the working directory when it is below it.
pub fn display_path(path: &Path) -> PathBuf {
    std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf)).unwrap_or_else(|| path.to_path_buf())
}
