//! What a person sees while labrun works: a line per step with a spinner while it polls on a
//! terminal, plain lines otherwise. Implements the engine's `Observer`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use labrun_exec::{ChapterReport, Entry, Mode, Observer, Status, StepReport, UndoOutcome};
use labrun_lab::{Chapter, Step};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct Ui {
    fancy: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// The working directory, to show paths relative to it.
    pub verbose: bool,
}

impl Ui {
    pub fn new(plain: bool) -> Self {
        let fancy = (!plain && std::io::stdout().is_terminal() && std::env::var_os("CI").is_none())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Ui { fancy, bars: Mutex::new(HashMap::new()), verbose: false }
    }

    /// Prints a line without tearing progress bars.
    pub fn line(&self, text: &str) {
        match &self.fancy {
            Some(m) => {
                let _ = m.println(text);
            }
            None => outln!("{text}"),
        }
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

/// The lines under a step that explain a failure, a skip or a gap.
pub fn details(r: &StepReport) -> Vec<String> {
    let mut out = Vec::new();
    if r.status == Status::Failed {
        if let Some(m) = &r.message {
            out.push(format!("      {m}"));
        }
        for m in &r.mismatches {
            // Reachability results list the failing conditions: show each on its own line.
            if m.path == "Failed"
                && let Some(items) = m.actual.as_array()
                && items.iter().all(|c| c.get("Name").is_some())
            {
                out.push(format!("      {} condition(s) fail:", items.len()));
                for c in items {
                    out.push(format!(
                        "        ✘ {} [{}]: {}",
                        c["Name"].as_str().unwrap_or(""),
                        c["Resource"].as_str().unwrap_or(""),
                        c["Detail"].as_str().unwrap_or("")
                    ));
                }
                continue;
            }
            out.push(format!("      {}: expected {}, found {}", m.path, m.expected, labrun_exec::assert::short(&m.actual)));
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
        } else if self.verbose {
            self.line(&format!("       … {} waiting (poll {attempt}): {why}", step.id));
        }
    }

    fn step_finished(&self, r: &StepReport) {
        let text = format!("  {} {:<5} {} {} ({})", mark(r.status), word(r.status), r.id, r.title, seconds(r.elapsed_ms));
        let pb = self.bars.lock().expect("ui lock").remove(&Self::key(&r.chapter, &r.id));
        match pb {
            Some(pb) => {
                pb.finish_and_clear();
                if let Some(m) = &self.fancy {
                    m.remove(&pb);
                }
                self.line(&text);
            }
            None => self.line(&text),
        }
        for d in details(r) {
            self.line(&d);
        }
    }

    fn undo_finished(&self, entry: &Entry, outcome: &UndoOutcome) {
        let (m, what) = match outcome {
            UndoOutcome::Undone => ("✔", "undone".to_string()),
            UndoOutcome::AlreadyGone => ("–", "already gone".to_string()),
            UndoOutcome::Failed(e) => ("✘", format!("FAILED: {e}")),
        };
        self.line(&format!("  {m} {} {} ({} {}) {what}", entry.undo_call, entry.resource, entry.chapter, entry.step));
    }
}
