//! What a person sees while labrun works: a line per step with a spinner while it polls on a
//! terminal, plain lines otherwise. Implements the engine's `Observer`. Also the output
//! settings every command shares: colour, quiet/verbose, and the log writer.

use crate::cli::{ColorWhen, OutputArgs};
use anstyle::{AnsiColor, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use labrun_exec::{ChapterReport, Entry, Mode, Observer, Status, StepReport, UndoOutcome};
use labrun_lab::{Chapter, Step};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How this process writes: decided once in `main` from the global options and the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    /// `-q`: only errors and the final summary.
    pub quiet: bool,
    /// `-v` count: 1 retries and polls, 2 debug events.
    pub verbose: u8,
    /// `--plain`: no spinners.
    pub plain: bool,
    /// Colour on standard output / standard error.
    pub color_out: bool,
    pub color_err: bool,
}

static OUTPUT: OnceLock<Output> = OnceLock::new();

impl Output {
    pub fn decide(a: &OutputArgs) -> Self {
        Output {
            quiet: a.quiet,
            verbose: a.verbose,
            plain: a.plain,
            color_out: color_enabled(a.color, std::io::stdout().is_terminal()),
            color_err: color_enabled(a.color, std::io::stderr().is_terminal()),
        }
    }
    /// Makes these the settings of the process; also tells clap (through `colorchoice`, which
    /// anstream reads) so that its help and errors follow the same choice.
    pub fn install(self, when: ColorWhen) {
        let _ = OUTPUT.set(self);
        clap_color(when);
    }
}

/// The settings `main` installed (defaults before that: a library test, say).
pub fn output() -> Output {
    OUTPUT.get().copied().unwrap_or_default()
}

// Why anstyle + colorchoice: both are already in the tree through clap, anstyle is the
// dependency-free styling crate clap itself renders with (it writes the SGR codes, so none is
// hand-written here), and colorchoice is the one switch anstream, and so clap's help and error
// output, obey. The decision itself stays here, ten lines, because the order asked of labrun
// (an explicit CLICOLOR_FORCE wins over NO_COLOR, CLICOLOR_FORCE=0 forces nothing) is not
// anstyle-query's or supports-color's.
/// Whether to colour a stream: `--color`/LABRUN_COLOR first, then the environment, then "is it a
/// terminal (and not TERM=dumb)".
pub fn color_enabled(when: ColorWhen, terminal: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => env_color().unwrap_or_else(|| terminal && std::env::var_os("TERM").is_none_or(|t| t != "dumb")),
    }
}

/// What the environment says, in this order: CLICOLOR_FORCE set and not `0` forces colour;
/// NO_COLOR set (and not empty) disables it; CLICOLOR=0 disables it; otherwise nothing.
fn env_color() -> Option<bool> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if var("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        Some(true)
    } else if var("NO_COLOR").is_some() || var("CLICOLOR").is_some_and(|v| v == "0") {
        Some(false)
    } else {
        None
    }
}

/// The same choice for clap's help and errors (before and after parsing).
pub fn clap_color(when: ColorWhen) {
    let choice = match (when, env_color()) {
        (ColorWhen::Always, _) | (ColorWhen::Auto, Some(true)) => colorchoice::ColorChoice::Always,
        (ColorWhen::Never, _) | (ColorWhen::Auto, Some(false)) => colorchoice::ColorChoice::Never,
        (ColorWhen::Auto, None) => colorchoice::ColorChoice::Auto,
    };
    choice.write_global();
}

/// `text` in `style` when `on`, as is otherwise.
pub fn paint(on: bool, style: Style, text: &str) -> String {
    if on { format!("{style}{text}{style:#}") } else { text.to_string() }
}

/// ✔ pass green, ✘ fail red, gap yellow, skip dim.
pub fn status_style(status: Status) -> Style {
    match status {
        Status::Passed => AnsiColor::Green.on_default(),
        Status::Failed => AnsiColor::Red.on_default().bold(),
        Status::Gap => AnsiColor::Yellow.on_default(),
        Status::Skipped => Style::new().dimmed(),
    }
}

/// The progress bars on screen, so that a log line written to standard error (`-v`) does not
/// tear them: it is written with the bars hidden for a moment.
static PROGRESS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// `tracing`'s writer: standard error, one event at a time, around any progress bars.
pub struct LogWriter;

pub struct LogLine(Vec<u8>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        use std::io::Write;
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        let bars = PROGRESS.lock().ok().and_then(|p| p.clone());
        match bars {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }
}

pub struct Ui {
    fancy: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    out: Output,
}

impl Ui {
    /// Spinners only on a terminal, never with `--plain`, `-q` or `CI`.
    pub fn new() -> Self {
        let out = output();
        let fancy = (!out.plain && !out.quiet && std::io::stdout().is_terminal() && std::env::var_os("CI").is_none())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        if let (Some(m), Ok(mut p)) = (&fancy, PROGRESS.lock()) {
            *p = Some(m.clone());
        }
        Ui { fancy, bars: Mutex::new(HashMap::new()), out }
    }

    /// Prints a line of progress (left out with `-q`) without tearing progress bars.
    pub fn line(&self, text: &str) {
        if !self.out.quiet {
            self.print(text);
        }
    }

    /// Prints a line that `-q` keeps: an error or the final summary.
    pub fn summary(&self, text: &str) {
        self.print(text);
    }

    fn print(&self, text: &str) {
        match &self.fancy {
            Some(m) => {
                let _ = m.println(text);
            }
            None => outln!("{text}"),
        }
    }

    /// `text` in `style` when standard output takes colour.
    pub fn paint(&self, style: Style, text: &str) -> String {
        paint(self.out.color_out, style, text)
    }

    fn key(chapter: &str, step: &str) -> String {
        format!("{chapter}/{step}")
    }
}

fn mark(status: Status) -> &'static str {
    match status {
        Status::Passed => "✔",
        Status::Failed => "✘",
        Status::Skipped => "–",
        Status::Gap => "◌",
    }
}

pub fn word(status: Status) -> &'static str {
    match status {
        Status::Passed => "pass",
        Status::Failed => "FAIL",
        Status::Skipped => "skip",
        Status::Gap => "gap ",
    }
}

fn seconds(ms: u128) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// A failed expectation drawn at its key with the source around it, as hurl draws a failed
/// assert and as `validate` draws a static problem.
fn snippet(m: &labrun_exec::assert::Mismatch, color: bool) -> Option<String> {
    let source = m.source.as_ref()?;
    let d = labrun_lab::Diagnostic::error("labrun::expectation", format!("{} did not match", m.path)).at(
        &source.file,
        source.span,
        format!("expected {}", m.expected),
    );
    let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    handler.render_report(&mut out, &labrun_lab::diag::Report::new(d)).ok()?;
    // From the `× ...` line on: the code line above it says nothing the step line does not.
    let start = out.find('×').and_then(|i| out[..i].rfind('\n').map(|n| n + 1)).unwrap_or(0);
    Some(out[start..].trim_end().to_string())
}

/// The lines under a step that explain a failure, a skip or a gap.
pub fn details(r: &StepReport, color: bool) -> Vec<String> {
    let mut out = Vec::new();
    if r.status == Status::Failed {
        if let Some(m) = &r.message {
            out.push(format!("      {m}"));
        }
        for m in &r.mismatches {
            out.push(format!("      {}: expected {}, found {}", m.path, m.expected, labrun_exec::assert::short(&m.actual)));
            // What the operation says the value means (labrun's own checks list their failing
            // conditions): a line each.
            for d in &m.details {
                out.push(format!("        {} {d}", paint(color, status_style(Status::Failed), "✘")));
            }
            // The failing key in its file, drawn as `validate` draws a problem.
            if let Some(snippet) = snippet(m, color) {
                out.extend(snippet.lines().map(|l| format!("      {l}")));
            }
        }
        out.push(format!("      at {}", r.location));
        if let Some(h) = &r.hint {
            out.push(format!("      hint: {h}"));
        }
    } else if matches!(r.status, Status::Gap | Status::Skipped)
        && let Some(m) = &r.message
    {
        out.push(format!("      {m}"));
    }
    out
}

impl Observer for Ui {
    fn chapter_started(&self, chapter: &Chapter, mode: Mode, prerequisite: bool) {
        let what = match (mode, prerequisite) {
            (Mode::Check, _) => "checking",
            (Mode::Run, true) => "building prerequisite",
            (Mode::Run, false) => "running",
        };
        self.line(&format!("── {} {} · {what}", chapter.label(), chapter.title.trim()));
    }

    fn chapter_skipped(&self, report: &ChapterReport) {
        let why = report.skipped.as_deref().unwrap_or("skipped");
        self.line(&format!("── {} {} · {why}", report.number, report.title.trim()));
    }

    fn step_started(&self, chapter: &Chapter, step: &Step) {
        tracing::debug!(chapter = chapter.label(), step = %step.id, call = %step.call, "step started");
        if let Some(m) = &self.fancy {
            let pb = m.add(ProgressBar::new_spinner());
            pb.set_style(
                ProgressStyle::with_template("  {spinner} {msg} {elapsed:.dim}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_message(format!("{} {}", step.id, step.title.as_deref().unwrap_or(&step.call)));
            pb.enable_steady_tick(Duration::from_millis(100));
            self.bars.lock().expect("ui lock").insert(Self::key(chapter.label(), &step.id), pb);
        }
    }

    fn step_waiting(&self, step: &Step, attempt: u32, why: &str) {
        // Shown with -v (on standard error, between the bars on a terminal).
        tracing::info!("… {} waiting (poll {attempt}): {why}", step.id);
        if self.fancy.is_some() {
            for pb in self.bars.lock().expect("ui lock").values() {
                if pb.message().starts_with(&format!("{} ", step.id)) {
                    pb.set_message(format!(
                        "{} {} · waiting (poll {attempt}): {why}",
                        step.id,
                        step.title.as_deref().unwrap_or(&step.call)
                    ));
                }
            }
        }
    }

    fn step_finished(&self, r: &StepReport) {
        let status = self.paint(status_style(r.status), &format!("{} {:<5}", mark(r.status), word(r.status)));
        let text = format!("  {status} {} {} ({})", r.id, r.title, seconds(r.elapsed_ms));
        if let Some(pb) = self.bars.lock().expect("ui lock").remove(&Self::key(&r.chapter, &r.id)) {
            pb.finish_and_clear();
            if let Some(m) = &self.fancy {
                m.remove(&pb);
            }
        }
        // `-q` keeps failures (they are the errors) and drops the rest.
        let print = |t: &str| if r.status == Status::Failed { self.summary(t) } else { self.line(t) };
        print(&text);
        for d in details(r, self.out.color_out) {
            print(&d);
        }
    }

    fn undo_finished(&self, entry: &Entry, outcome: &UndoOutcome) {
        let (status, what) = match outcome {
            UndoOutcome::Undone => (Status::Passed, "undone".to_string()),
            UndoOutcome::AlreadyGone => (Status::Skipped, "already gone".to_string()),
            UndoOutcome::Failed(e) => (Status::Failed, format!("FAILED: {e}")),
        };
        let text = format!(
            "  {} {} {} ({} {}) {what}",
            self.paint(status_style(status), mark(status)),
            entry.undo_call,
            entry.resource,
            entry.chapter,
            entry.step
        );
        if status == Status::Failed { self.summary(&text) } else { self.line(&text) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use labrun_exec::assert::Mismatch;
    use labrun_lab::diag::SourceRef;
    use labrun_lab::yaml::Span;
    use serde_json::json;

    #[test]
    fn a_failed_expectation_is_drawn_at_its_key() {
        let text = "- id: dns\n  call: ec2:DescribeVpcAttribute\n  expect: { \"EnableDnsHostnames.Value\": true }\n";
        let file = labrun_lab::SourceFile::new("labs/1-x/lab.yaml", text);
        let start = text.find("\"Enable").unwrap();
        let span = Span { start, end: start + "\"EnableDnsHostnames.Value\"".len() };
        let mismatch = Mismatch {
            location: Some(file.location(span.start)),
            source: Some(SourceRef { file: file.clone(), span }),
            ..Mismatch::new("EnableDnsHostnames.Value", "true", json!(false))
        };
        let report = StepReport {
            chapter: "1".into(),
            id: "dns".into(),
            title: "DNS hostnames are on".into(),
            call: "ec2:DescribeVpcAttribute".into(),
            status: Status::Failed,
            message: Some("1 expectation(s) not met".into()),
            hint: None,
            mismatches: vec![mismatch],
            location: file.location(0),
            elapsed_ms: 1,
            is_check: true,
        };
        let lines = details(&report, false).join("\n");
        assert!(lines.contains("EnableDnsHostnames.Value: expected true, found false"), "{lines}");
        assert!(lines.contains("╭─[labs/1-x/lab.yaml:3:13]"), "{lines}");
        assert!(lines.contains(" 3 │   expect: { \"EnableDnsHostnames.Value\": true }"), "{lines}");
        assert!(lines.contains("╰── expected true"), "{lines}");
        assert!(!lines.contains("\u{1b}["), "no colour when off: {lines}");
    }
}
