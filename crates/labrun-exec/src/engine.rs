//! Runs chapters: renders each step, calls the backend with retries, records changes in the
//! ledger before moving on, checks expectations, polls `until`, and undoes on `down`.

use crate::assert::{self, Mismatch};
use crate::backend::{Backend, CallError, ErrorKind, mask_secrets, strip_nulls};
use crate::ledger::{Entry, Ledger, now_secs};
use crate::template::{Context, Renderer};
use labrun_lab::catalog::{self, Operation, Tagging, Undo};
use labrun_lab::model::{Chapter, Cleanup, Matcher, Step, Workshop};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Make the calls: build the chapter.
    Run,
    /// Read-only: run only the checks, against whatever exists.
    Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    /// Needs something the target cannot do (Session Manager on an emulator): neither pass nor fail.
    Gap,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub chapter: String,
    pub id: String,
    pub title: String,
    pub call: String,
    pub status: Status,
    /// Why it failed, was skipped, or is a gap.
    pub message: Option<String>,
    pub mismatches: Vec<Mismatch>,
    pub hint: Option<String>,
    pub location: labrun_lab::Location,
    pub elapsed_ms: u128,
    /// True for steps that only read (what `check` runs).
    pub is_check: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChapterReport {
    pub number: String,
    pub title: String,
    pub mode: Mode,
    pub steps: Vec<StepReport>,
    /// Set when the chapter was not run at all, and why.
    pub skipped: Option<String>,
    /// Ran as a prerequisite of the selection.
    pub prerequisite: bool,
}

impl ChapterReport {
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Failed)
    }
    /// Every check ran and passed (gaps aside), and there was at least one.
    pub fn checks_pass(&self) -> bool {
        let checks: Vec<&StepReport> = self.steps.iter().filter(|s| s.is_check && s.status != Status::Gap).collect();
        !checks.is_empty() && checks.iter().all(|s| s.status == Status::Passed)
    }
    /// Some check ran and failed.
    pub fn checks_fail(&self) -> bool {
        self.steps.iter().any(|s| s.is_check && s.status == Status::Failed)
    }
}

/// Progress callbacks: the engine reports, the CLI draws. Every method has a no-op default.
pub trait Observer: Send + Sync {
    fn chapter_started(&self, _chapter: &Chapter, _mode: Mode, _prerequisite: bool) {}
    fn chapter_skipped(&self, _report: &ChapterReport) {}
    fn step_started(&self, _chapter: &Chapter, _step: &Step) {}
    /// A retry or an `until` poll is about to wait.
    fn step_waiting(&self, _step: &Step, _attempt: u32, _why: &str) {}
    fn step_finished(&self, _report: &StepReport) {}
    fn undo_finished(&self, _entry: &Entry, _outcome: &UndoOutcome) {}
}

pub struct Quiet;
impl Observer for Quiet {}

/// Polling and retry pacing. Tests shrink these; real runs use the defaults.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub poll_interval: Duration,
    pub poll_max_interval: Duration,
    pub default_timeout: Duration,
    pub retry_max_delay: Duration,
    /// How long `down` keeps retrying a delete that hits a dependency still draining.
    pub dependency_patience: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            poll_interval: Duration::from_secs(2),
            poll_max_interval: Duration::from_secs(15),
            default_timeout: Duration::from_secs(300),
            retry_max_delay: Duration::from_secs(20),
            dependency_patience: Duration::from_secs(120),
        }
    }
}

pub struct Engine {
    pub backend: Arc<dyn Backend>,
    pub ledger: Option<Arc<Ledger>>,
    pub observer: Arc<dyn Observer>,
    pub cancel: Arc<AtomicBool>,
    pub run_id: String,
    /// `--var k=v`, applied over chapter and workshop vars.
    pub var_overrides: Map<String, Value>,
    pub pacing: Pacing,
    renderer: Renderer,
}

/// Result of a whole command over a selection.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    pub chapters: Vec<ChapterReport>,
    pub interrupted: bool,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        self.chapters.iter().any(ChapterReport::failed)
    }
    pub fn steps(&self) -> impl Iterator<Item = &StepReport> {
        self.chapters.iter().flat_map(|c| c.steps.iter())
    }
}

impl Engine {
    pub fn new(backend: Arc<dyn Backend>, ledger: Option<Arc<Ledger>>, observer: Arc<dyn Observer>, run_id: String) -> Self {
        Engine {
            backend,
            ledger,
            observer,
            cancel: Arc::new(AtomicBool::new(false)),
            run_id,
            var_overrides: Map::new(),
            pacing: Pacing::default(),
            renderer: Renderer::new(),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// `labrun run`: prerequisites first (only those whose checks fail), then the selection.
    /// A selected chapter whose checks already pass is not run again unless `force`.
    pub async fn run(&self, w: &Workshop, selection: &[usize], force: bool) -> RunReport {
        let mut report = RunReport::default();
        // A teardown chapter removes what others built: building them first would be absurd.
        let building: Vec<usize> = selection.iter().copied().filter(|&i| !w.chapters[i].teardown).collect();
        let prereqs = labrun_lab::prerequisites(w, &building);
        let plan: Vec<(usize, bool)> = prereqs.iter().map(|&i| (i, true)).chain(selection.iter().map(|&i| (i, false))).collect();
        for (i, is_prereq) in plan {
            if self.cancelled() {
                report.interrupted = true;
                break;
            }
            let chapter = &w.chapters[i];
            if chapter.steps.is_empty() {
                continue;
            }
            if is_prereq || !force {
                let check = self.chapter(w, chapter, Mode::Check, is_prereq, true).await;
                if check.checks_pass() && !chapter.steps.iter().all(|s| s.runs_in_check()) {
                    let done =
                        ChapterReport { skipped: Some("already in place: its checks pass".into()), prerequisite: is_prereq, ..check };
                    self.observer.chapter_skipped(&done);
                    report.chapters.push(done);
                    continue;
                }
            }
            let r = self.chapter(w, chapter, Mode::Run, is_prereq, false).await;
            let failed = r.failed();
            report.chapters.push(r);
            if failed || self.cancelled() {
                report.interrupted = self.cancelled();
                break;
            }
        }
        report
    }

    /// `labrun check`: every selected chapter in check mode, none of it stopping the rest.
    pub async fn check(&self, w: &Workshop, selection: &[usize]) -> RunReport {
        let mut report = RunReport::default();
        for &i in selection {
            if self.cancelled() {
                report.interrupted = true;
                break;
            }
            if w.chapters[i].steps.is_empty() {
                continue;
            }
            report.chapters.push(self.chapter(w, &w.chapters[i], Mode::Check, false, false).await);
        }
        report
    }

    fn base_context(&self, w: &Workshop, chapter: &Chapter) -> Context {
        let target = self.backend.target();
        let mut vars = w.vars.clone();
        vars.extend(chapter.vars.clone());
        vars.extend(self.var_overrides.clone());
        let lab = [
            ("region", json!(target.region)),
            ("account", json!(target.account)),
            ("run_id", json!(self.run_id)),
            ("workshop", json!(w.id)),
            ("chapter", json!(chapter.label())),
        ];
        Context { vars, steps: Map::new(), lab: lab.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), item: None }
    }

    /// Runs one chapter's steps in `mode`. `silent` runs report nothing to the observer (the
    /// quiet check that decides whether a chapter is already in place).
    pub async fn chapter(&self, w: &Workshop, chapter: &Chapter, mode: Mode, prerequisite: bool, silent: bool) -> ChapterReport {
        if !silent {
            self.observer.chapter_started(chapter, mode, prerequisite);
        }
        let mut ctx = self.base_context(w, chapter);
        let mut reports = Vec::new();
        let mut stop = false;
        let mut passed: std::collections::HashSet<String> = std::collections::HashSet::new();
        for step in &chapter.steps {
            if self.cancelled() {
                break;
            }
            if !silent {
                self.observer.step_started(chapter, step);
            }
            let started = Instant::now();
            let blocked = depends_on(step).into_iter().find(|d| ctx.steps.contains_key(d) && !passed.contains(d));
            let (status, message, mismatches, outputs) = if stop {
                (Status::Skipped, Some("not run: an earlier step failed".to_string()), Vec::new(), None)
            } else if let Some(d) = blocked {
                (Status::Skipped, Some(format!("not run: it uses step `{d}`, which did not pass")), Vec::new(), None)
            } else {
                self.step(w, chapter, step, mode, &mut ctx).await
            };
            if status == Status::Passed {
                passed.insert(step.id.clone());
            }
            // Later steps may refer to this one's outputs: a step that did not run binds them to none.
            let bound = outputs.unwrap_or_else(|| Value::Object(step.outputs.iter().map(|(n, _)| (n.clone(), Value::Null)).collect()));
            ctx.steps.insert(step.id.clone(), bound);
            let report = StepReport {
                chapter: chapter.label().to_string(),
                id: step.id.clone(),
                title: step.title.clone().unwrap_or_else(|| step.call.clone()),
                call: step.call.clone(),
                status,
                message,
                hint: (status == Status::Failed).then(|| step.hint.clone()).flatten(),
                mismatches,
                location: step.location.clone(),
                elapsed_ms: started.elapsed().as_millis(),
                is_check: step.runs_in_check(),
            };
            if mode == Mode::Run && status == Status::Failed {
                stop = true;
            }
            if !silent {
                self.observer.step_finished(&report);
            }
            reports.push(report);
        }
        ChapterReport {
            number: chapter.label().to_string(),
            title: chapter.title.clone(),
            mode,
            steps: reports,
            skipped: None,
            prerequisite,
        }
    }

    async fn step(
        &self,
        w: &Workshop,
        chapter: &Chapter,
        step: &Step,
        mode: Mode,
        ctx: &mut Context,
    ) -> (Status, Option<String>, Vec<Mismatch>, Option<Value>) {
        if mode == Mode::Check && !step.runs_in_check() {
            let why = if step.op.read_only { "check: false" } else { "changes resources" };
            return (Status::Skipped, Some(format!("not run in check mode ({why})")), Vec::new(), None);
        }
        if let Some(cond) = &step.when {
            match self.renderer.truthy(cond, ctx) {
                Ok(true) => {}
                Ok(false) => return (Status::Skipped, Some(format!("condition is false: {cond}")), Vec::new(), None),
                Err(e) => return (Status::Failed, Some(format!("`when` could not be evaluated: {e}")), Vec::new(), None),
            }
        }
        if step.needs_real_aws() && self.backend.target().is_emulator() {
            let why = if step.op.real_aws_only {
                format!("{} is not implemented by the emulator", step.call)
            } else {
                "the step is marked `requires: [real-aws]`".to_string()
            };
            return (Status::Gap, Some(format!("needs a real AWS account: {why}")), Vec::new(), None);
        }
        let items: Vec<Option<Value>> = match &step.for_each {
            None => vec![None],
            Some(list) => match self.renderer.render(list, ctx) {
                Ok(Value::Array(items)) => items.into_iter().map(Some).collect(),
                Ok(other) => {
                    return (
                        Status::Failed,
                        Some(format!("`for_each` must give a list, gave {}", assert::short(&other))),
                        Vec::new(),
                        None,
                    );
                }
                Err(e) => return (Status::Failed, Some(format!("`for_each`: {e}")), Vec::new(), None),
            },
        };
        // Items are independent, so they run concurrently.
        let runs = items.iter().map(|item| {
            let mut ictx = ctx.clone();
            ictx.item = item.clone();
            async move { self.one_call(w, chapter, step, mode, ictx).await }
        });
        let results = futures::future::join_all(runs).await;
        let mut mismatches = Vec::new();
        let mut failure = None;
        let mut outputs: Vec<Map<String, Value>> = Vec::new();
        for r in results {
            match r {
                Ok((m, out)) => {
                    mismatches.extend(m);
                    outputs.push(out);
                }
                Err(msg) => {
                    failure.get_or_insert(msg);
                }
            }
        }
        let bound = if step.for_each.is_some() {
            // Each output becomes the list of its per-item values.
            Value::Object(
                step.outputs
                    .iter()
                    .map(|(n, _)| (n.clone(), Value::Array(outputs.iter().map(|o| o.get(n).cloned().unwrap_or(Value::Null)).collect())))
                    .collect(),
            )
        } else {
            Value::Object(outputs.pop().unwrap_or_default())
        };
        if let Some(msg) = failure {
            return (Status::Failed, Some(msg), mismatches, Some(bound));
        }
        if !mismatches.is_empty() {
            let n = mismatches.len();
            return (Status::Failed, Some(format!("{n} expectation(s) not met")), mismatches, Some(bound));
        }
        (Status::Passed, None, Vec::new(), Some(bound))
    }

    /// One call of a step (one `for_each` item): render, call (with retry), record, poll, assert.
    async fn one_call(
        &self,
        w: &Workshop,
        chapter: &Chapter,
        step: &Step,
        mode: Mode,
        ctx: Context,
    ) -> Result<(Vec<Mismatch>, Map<String, Value>), String> {
        let mut params =
            self.renderer.render(&step.with, &ctx).map_err(|e| format!("parameters could not be rendered: {e} (in `{}`)", e.template))?;
        params = strip_nulls(params);
        let op = step.op;
        let mutating = !op.read_only && mode == Mode::Run;
        if mutating {
            add_tags(op, &mut params, &w.id, chapter.label(), &self.run_id, step.cleanup == Cleanup::None);
        }
        // A restore needs the old value before the change.
        let before = match (mutating, op.undo, &step.cleanup) {
            (true, Undo::Restore { capture, capture_params, .. }, Cleanup::Auto | Cleanup::Restore) => {
                let cop = catalog::operation(capture).expect("catalog checks capture ops");
                let cparams = assert::search(capture_params, &json!({"request": params})).map_err(|e| format!("capture: {e}"))?;
                Some(self.call_with_retry(step, cop, &strip_nulls(cparams), mode).await.map_err(|e| describe_error(op, &e))?)
            }
            _ => None,
        };
        let mut response = self.call_with_retry(step, op, &params, mode).await.map_err(|e| describe_error(op, &e))?;
        if mutating {
            self.record(w, chapter, step, &params, &response, before.as_ref(), &ctx).await?;
        }
        // `until`: poll until the expectations hold (in check mode, one look is enough).
        let deadline = Instant::now() + step.timeout.unwrap_or(self.pacing.default_timeout);
        let mut interval = step.interval.unwrap_or(self.pacing.poll_interval);
        let mut attempt = 1;
        loop {
            let mismatches = self.evaluate(&step.until, &response, &ctx)?;
            if mismatches.is_empty() || mode == Mode::Check {
                if !mismatches.is_empty() {
                    let (m, out) = (mismatches, self.outputs(step, &response)?);
                    return Ok((m, out));
                }
                break;
            }
            if self.cancelled() {
                return Err("interrupted while waiting".into());
            }
            if Instant::now() + interval > deadline {
                let waited = step.timeout.unwrap_or(self.pacing.default_timeout);
                return Err(format!(
                    "timed out after {} waiting for: {}",
                    labrun_lab::model::format_duration(waited),
                    mismatches.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                ));
            }
            self.observer.step_waiting(step, attempt, &mismatches[0].to_string());
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(self.pacing.poll_max_interval);
            attempt += 1;
            response = self.call_with_retry(step, op, &params, mode).await.map_err(|e| describe_error(op, &e))?;
        }
        let outputs = self.outputs(step, &response)?;
        let mismatches = self.evaluate(&step.expect, &response, &ctx)?;
        Ok((mismatches, outputs))
    }

    fn outputs(&self, step: &Step, response: &Value) -> Result<Map<String, Value>, String> {
        step.outputs
            .iter()
            .map(|(name, expr)| assert::search(expr, response).map(|v| (name.clone(), v)).map_err(|e| format!("output `{name}`: {e}")))
            .collect()
    }

    fn evaluate(&self, assertions: &[labrun_lab::Assertion], response: &Value, ctx: &Context) -> Result<Vec<Mismatch>, String> {
        let mut out = Vec::new();
        for a in assertions {
            let matcher = self.render_matcher(&a.matcher, ctx)?;
            if let Some(m) = assert::check(a, &matcher, response)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn render_matcher(&self, m: &Matcher, ctx: &Context) -> Result<Matcher, String> {
        let r = |v: &Value| self.renderer.render(v, ctx).map_err(|e| format!("expected value: {e}"));
        Ok(match m {
            Matcher::Equals(v) => Matcher::Equals(r(v)?),
            Matcher::NotEquals(v) => Matcher::NotEquals(r(v)?),
            Matcher::Contains(v) => Matcher::Contains(r(v)?),
            Matcher::NotContains(v) => Matcher::NotContains(r(v)?),
            Matcher::AllEqual(v) => Matcher::AllEqual(r(v)?),
            Matcher::AnyOf(vs) => Matcher::AnyOf(vs.iter().map(r).collect::<Result<_, _>>()?),
            Matcher::Matches(re) if re.contains("{{") => match r(&Value::String(re.clone()))? {
                Value::String(s) => Matcher::Matches(s),
                other => Matcher::Matches(other.to_string()),
            },
            other => other.clone(),
        })
    }

    /// Calls with retries on transient errors (and, while building, on NotFound right after a create).
    async fn call_with_retry(&self, step: &Step, op: &'static Operation, params: &Value, mode: Mode) -> Result<Value, CallError> {
        let mut attempt = 1;
        loop {
            let result = if op.synthetic {
                crate::reachability::call(self.backend.as_ref(), op, params).await
            } else {
                self.backend.call(op, params).await
            };
            let err = match result {
                Ok(mut v) => {
                    mask_secrets(op, &mut v);
                    return Ok(v);
                }
                Err(e) => e,
            };
            let retryable = err.kind == ErrorKind::Transient
                || (err.kind == ErrorKind::NotFound && mode == Mode::Run)
                || step.retry.on.iter().any(|c| c == &err.code);
            if !retryable || attempt >= step.retry.attempts || self.cancelled() {
                return Err(err);
            }
            let delay = backoff(step.retry.delay, attempt, self.pacing.retry_max_delay);
            self.observer.step_waiting(step, attempt, &format!("retrying after {}", err.code));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        w: &Workshop,
        chapter: &Chapter,
        step: &Step,
        request: &Value,
        response: &Value,
        before: Option<&Value>,
        ctx: &Context,
    ) -> Result<(), String> {
        let (undo_call, undo_params) = match (&step.cleanup, step.op.undo) {
            // An explicit cleanup call wins; otherwise the catalog's undo, unless there is none.
            (Cleanup::None, _) => return Ok(()),
            (Cleanup::Call { call, with }, _) => {
                let mut c = ctx.clone();
                c.steps.insert(step.id.clone(), json!({"request": request, "response": response}));
                let params = self.renderer.render(with, &c).map_err(|e| format!("cleanup parameters: {e}"))?;
                (call.clone(), params)
            }
            (_, Undo::Call { op, params }) => (op.to_string(), assert::search(params, &json!({"request": request, "response": response}))?),
            (_, Undo::Restore { op, params, .. }) => (
                op.to_string(),
                assert::search(params, &json!({"request": request, "response": response, "before": before.cloned().unwrap_or_default()}))?,
            ),
            (Cleanup::Auto | Cleanup::Restore, Undo::None) => return Ok(()),
        };
        let undo_params = strip_nulls(undo_params);
        let Some(ledger) = &self.ledger else { return Ok(()) };
        let entry = Entry {
            seq: 0,
            run_id: self.run_id.clone(),
            workshop: w.id.clone(),
            chapter: chapter.label().to_string(),
            step: step.id.clone(),
            call: step.call.clone(),
            undo_call,
            resource: describe_resource(&undo_params),
            undo_params,
            at: now_secs(),
        };
        ledger.record(entry).map(|_| ()).map_err(|e| format!("could not write the ledger, stopping so nothing is lost: {e}"))
    }

    /// `labrun down`: undoes outstanding ledger entries of these chapters, newest first.
    /// Idempotent: a resource that is already gone counts as undone.
    pub async fn down(&self, workshop: &str, chapters: Option<&[String]>) -> DownReport {
        let mut report = DownReport::default();
        let Some(ledger) = &self.ledger else { return report };
        let entries = match ledger.outstanding() {
            Ok(e) => e,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        for entry in entries.into_iter().filter(|e| e.workshop == workshop && chapters.is_none_or(|c| c.contains(&e.chapter))) {
            if self.cancelled() {
                report.interrupted = true;
                break;
            }
            let outcome = self.undo(&entry).await;
            self.observer.undo_finished(&entry, &outcome);
            match &outcome {
                UndoOutcome::Undone | UndoOutcome::AlreadyGone => {
                    if let Err(e) = ledger.mark_undone(entry.seq) {
                        report.errors.push(e.to_string());
                    }
                    report.undone += 1;
                }
                UndoOutcome::Failed(msg) => report.errors.push(format!("{} {} ({}): {msg}", entry.undo_call, entry.resource, entry.step)),
            }
        }
        if !report.interrupted {
            let (swept, failed) = crate::sweep::sweep(self.backend.as_ref(), workshop, chapters).await;
            report.swept = swept;
            report.errors.extend(failed);
        }
        report
    }

    async fn undo(&self, entry: &Entry) -> UndoOutcome {
        let Some(op) = catalog::operation(&entry.undo_call) else {
            return UndoOutcome::Failed(format!("unknown operation {}", entry.undo_call));
        };
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match self.backend.call(op, &entry.undo_params).await {
                Ok(_) => return UndoOutcome::Undone,
                Err(e) if e.kind == ErrorKind::NotFound || is_already_undone(&e) => return UndoOutcome::AlreadyGone,
                Err(e)
                    if (e.kind == ErrorKind::Transient || is_dependency(&e))
                        && started.elapsed() < self.pacing.dependency_patience
                        && !self.cancelled() =>
                {
                    tokio::time::sleep(backoff(Duration::from_millis(500), attempt, self.pacing.retry_max_delay)).await;
                    attempt += 1;
                }
                Err(e) => return UndoOutcome::Failed(e.to_string()),
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub enum UndoOutcome {
    Undone,
    AlreadyGone,
    Failed(String),
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub undone: usize,
    pub errors: Vec<String>,
    pub interrupted: bool,
    /// Resources found by tag after the ledger replay and deleted.
    pub swept: Vec<String>,
}

fn is_dependency(e: &CallError) -> bool {
    matches!(e.code.as_str(), "DependencyViolation" | "DeleteConflict" | "IncorrectState" | "InvalidState" | "ResourceInUse")
}

/// Undo calls on something already reversed: a detach of a detached gateway, a revoke of a
/// rule that is gone, a disassociation already done.
fn is_already_undone(e: &CallError) -> bool {
    matches!(
        e.code.as_str(),
        "Gateway.NotAttached"
            | "InvalidPermission.NotFound"
            | "InvalidAssociationID.NotFound"
            | "NoSuchBucket"
            | "NoSuchEntity"
            | "InvalidDocument"
    ) || e.code.ends_with(".NotFound")
        || e.code.ends_with("NotFound")
}

/// Steps whose outputs this step's parameters or `for_each` use.
fn depends_on(step: &Step) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.extend(labrun_lab::steps::step_references(s).into_iter().map(|(id, _)| id)),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&step.with, &mut out);
    if let Some(f) = &step.for_each {
        walk(f, &mut out);
    }
    out
}

/// Exponential backoff with full jitter, capped.
fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(10)).min(cap);
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    exp.mul_f64(jitter)
}

fn describe_error(op: &Operation, e: &CallError) -> String {
    match e.kind {
        ErrorKind::Unsupported => format!("{} is not supported by this target: {}", op.name, e.message),
        _ => format!("{} failed: {} ({})", op.name, e.message, e.code),
    }
}

fn describe_resource(params: &Value) -> String {
    match params {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !k.ends_with("Permissions") && *k != "Tags")
            .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| assert::short(v))))
            .collect::<Vec<_>>()
            .join(" "),
        other => assert::short(other),
    }
}

/// Adds `labrun:workshop`, `labrun:chapter` and `labrun:run` tags to a create call, and
/// `labrun:cleanup=none` where the author asked labrun to leave the resource (the sweep obeys).
pub fn add_tags(op: &Operation, params: &mut Value, workshop: &str, chapter: &str, run_id: &str, keep: bool) {
    let mut tags = json!([
        {"Key": "labrun:workshop", "Value": workshop},
        {"Key": "labrun:chapter", "Value": chapter},
        {"Key": "labrun:run", "Value": run_id},
    ]);
    if keep && let Value::Array(t) = &mut tags {
        t.push(json!({"Key": "labrun:cleanup", "Value": "none"}));
    }
    let Value::Object(map) = params else { return };
    match op.tagging {
        Tagging::TagSpecifications(resource) => {
            let specs = map.entry("TagSpecifications").or_insert_with(|| json!([]));
            let Value::Array(specs) = specs else { return };
            match specs.iter_mut().find(|s| s.get("ResourceType").and_then(Value::as_str) == Some(resource)) {
                Some(spec) => {
                    let list = spec.as_object_mut().map(|o| o.entry("Tags").or_insert_with(|| json!([])));
                    if let Some(Value::Array(list)) = list {
                        list.extend(tags.as_array().cloned().unwrap_or_default());
                    }
                }
                None => specs.push(json!({"ResourceType": resource, "Tags": tags})),
            }
        }
        Tagging::Tags => {
            let list = map.entry("Tags").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                list.extend(tags.as_array().cloned().unwrap_or_default());
            }
        }
        // Buckets are tagged by the backend right after CreateBucket (S3 has no tags on create).
        Tagging::BucketTagging => {
            map.insert("__labrun_tags".into(), tags);
        }
        Tagging::None => {}
    }
}
