//! Runs chapters: renders each step, calls the backend with retries, records changes in the
//! ledger before moving on, checks expectations, polls `until`, and undoes on `down`.

use crate::assert::{self, Mismatch};
use crate::backend::{Backend, CallError, ErrorKind, mask_secrets, strip_nulls};
use crate::ledger::{Entry, Intent, Ledger, Pending, now_secs};
use crate::paginate;
pub use crate::retry::Pacing;
use crate::retry::{self, Attempts, Next, Phase};
use crate::template::{Context, Renderer};
use crate::waiter::{Verdict, Waiter};
use futures::StreamExt;
use labrun_lab::catalog::{self, Lookup, Operation, Tagging, Undo};
use labrun_lab::compiled::Pattern;
use labrun_lab::model::{Chapter, Cleanup, Matcher, Pages, Step, Workshop};
use labrun_lab::vocab::{lab_field, tag};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// `for_each` items in flight at once: enough to overlap calls, few enough not to be throttled.
pub const FOR_EACH_CONCURRENCY: usize = 4;
/// Items one `for_each` may have: a lab step, not a bulk job.
pub const FOR_EACH_MAX_ITEMS: usize = 1000;

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

/// Why a chapter runs: the user addressed it, or a chapter they addressed needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Addressed,
    Prerequisite,
}

impl Role {
    pub fn of(prerequisite: bool) -> Self {
        if prerequisite { Role::Prerequisite } else { Role::Addressed }
    }
}

/// Whether a chapter's progress goes to the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporting {
    Observed,
    /// Nothing reaches the observer: the quiet check before a run, `labrun test`'s phases.
    Silent,
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

pub struct Engine {
    pub backend: Arc<dyn Backend>,
    pub ledger: Option<Arc<Ledger>>,
    pub observer: Arc<dyn Observer>,
    /// Ctrl-C / SIGTERM: stops waits and backoff at once and the run at the next safe point.
    pub cancel: CancellationToken,
    pub run_id: String,
    /// The chapters the user addressed (labels), recorded with every change so that
    /// `labrun down <the same path>` also undoes the prerequisites built for them.
    pub selection: Vec<String>,
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
            cancel: CancellationToken::new(),
            run_id,
            selection: Vec::new(),
            var_overrides: Map::new(),
            pacing: Pacing::default(),
            renderer: Renderer::new(),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
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
                let check = self.chapter(w, chapter, Mode::Check, Role::of(is_prereq), Reporting::Silent).await;
                if check.checks_pass() && !chapter.steps.iter().all(|s| s.runs_in_check()) {
                    let done =
                        ChapterReport { skipped: Some("already in place: its checks pass".into()), prerequisite: is_prereq, ..check };
                    self.observer.chapter_skipped(&done);
                    report.chapters.push(done);
                    continue;
                }
            }
            let r = self.chapter(w, chapter, Mode::Run, Role::of(is_prereq), Reporting::Observed).await;
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
            report.chapters.push(self.chapter(w, &w.chapters[i], Mode::Check, Role::Addressed, Reporting::Observed).await);
        }
        report
    }

    fn base_context(&self, w: &Workshop, chapter: &Chapter) -> Context {
        let target = self.backend.target();
        let mut vars = w.vars.clone();
        vars.extend(chapter.vars.clone());
        vars.extend(self.var_overrides.clone());
        let lab = [
            (lab_field::REGION, json!(target.region)),
            (lab_field::ACCOUNT, json!(target.account)),
            (lab_field::RUN_ID, json!(self.run_id)),
            (lab_field::WORKSHOP, json!(w.id)),
            (lab_field::CHAPTER, json!(chapter.label())),
        ];
        Context { vars, steps: Map::new(), lab: lab.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), item: None }
    }

    /// Runs one chapter's steps in `mode`. A silent run reports nothing to the observer (the
    /// quiet check that decides whether a chapter is already in place).
    pub async fn chapter(&self, w: &Workshop, chapter: &Chapter, mode: Mode, role: Role, reporting: Reporting) -> ChapterReport {
        let prerequisite = role == Role::Prerequisite;
        let silent = reporting == Reporting::Silent;
        if !silent {
            self.observer.chapter_started(chapter, mode, prerequisite);
        }
        let mut ctx = self.base_context(w, chapter);
        let mut reports = Vec::new();
        let mut stop = false;
        let mut passed: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut gaps: std::collections::HashSet<String> = std::collections::HashSet::new();
        for step in &chapter.steps {
            if self.cancelled() {
                break;
            }
            if !silent {
                self.observer.step_started(chapter, step);
            }
            let started = Instant::now();
            let uses = &step.uses;
            let blocked = uses.iter().find(|d| ctx.steps.contains_key(*d) && !passed.contains(*d));
            let gapped = uses.iter().find(|d| gaps.contains(*d));
            let StepOutcome { status, message, mismatches, outputs } = if stop {
                StepOutcome::skipped("not run: an earlier step failed")
            } else if let Some(d) = gapped {
                // What a gap would have made does not exist here: the steps using it are gaps too.
                StepOutcome::gap(format!("it uses step `{d}`, which this target cannot run"))
            } else if let Some(d) = blocked {
                StepOutcome::skipped(format!("not run: it uses step `{d}`, which did not pass"))
            } else {
                self.step(w, chapter, step, mode, &mut ctx).await
            };
            match status {
                Status::Passed => {
                    passed.insert(step.id.clone());
                }
                Status::Gap => {
                    gaps.insert(step.id.clone());
                }
                _ => {}
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

    async fn step(&self, w: &Workshop, chapter: &Chapter, step: &Step, mode: Mode, ctx: &mut Context) -> StepOutcome {
        if mode == Mode::Check && !step.runs_in_check() {
            let why = if step.op.read_only { "check: false" } else { "changes resources" };
            return StepOutcome::skipped(format!("not run in check mode ({why})"));
        }
        if let Some(cond) = &step.when {
            match self.renderer.truthy(cond, ctx) {
                Ok(true) => {}
                Ok(false) => return StepOutcome::skipped(format!("condition is false: {cond}")),
                Err(e) => return StepOutcome::failed(format!("`when` could not be evaluated: {e}")),
            }
        }
        if step.needs_real_aws() && self.backend.target().is_emulator() {
            let why = if step.op.real_aws_only {
                format!("{} is not implemented by the emulator", step.call)
            } else {
                "the step is marked `requires: [real-aws]`".to_string()
            };
            return StepOutcome::gap(format!("needs a real AWS account: {why}"));
        }
        let items: Vec<Option<Value>> = match &step.for_each {
            None => vec![None],
            Some(list) => match self.renderer.render(list, ctx) {
                Ok(Value::Array(items)) if items.len() > FOR_EACH_MAX_ITEMS => {
                    let n = items.len();
                    return StepOutcome::failed(format!("`for_each` gave {n} items; a step may loop over at most {FOR_EACH_MAX_ITEMS}"));
                }
                Ok(Value::Array(items)) => items.into_iter().map(Some).collect(),
                Ok(other) => return StepOutcome::failed(format!("`for_each` must give a list, gave {}", assert::short(&other))),
                Err(e) => return StepOutcome::failed(format!("`for_each`: {e}")),
            },
        };
        // Items are independent, so a few run at once; results keep the items' order.
        let looped = step.for_each.is_some();
        let runs = items.iter().enumerate().map(|(n, item)| {
            let mut ictx = ctx.clone();
            ictx.item = item.clone();
            // Unique within a run: step ids repeat across chapters (`create-subnet` in 2.1.2 and 4.3).
            let tag_step = if looped { format!("{}/{}/{n}", chapter.label(), step.id) } else { format!("{}/{}", chapter.label(), step.id) };
            async move { self.one_call(w, chapter, step, mode, ictx, tag_step).await }
        });
        let results: Vec<_> = futures::stream::iter(runs).buffered(FOR_EACH_CONCURRENCY).collect().await;
        let mut mismatches = Vec::new();
        // Every item's failure is kept, named by its position in a loop.
        let mut failures = Vec::new();
        let mut gaps = Vec::new();
        let mut outputs: Vec<Option<Map<String, Value>>> = Vec::new();
        for (n, r) in results.into_iter().enumerate() {
            let which = |msg: String| if looped { format!("item {n}: {msg}") } else { msg };
            match r {
                Ok((m, out)) => {
                    mismatches.extend(m);
                    outputs.push(Some(out));
                }
                Err(StepError::Failed(msg)) => {
                    failures.push(which(msg));
                    outputs.push(None);
                }
                Err(StepError::Gap(msg)) => {
                    gaps.push(which(msg));
                    outputs.push(None);
                }
            }
        }
        let bound = if looped {
            // Each output becomes the list of its per-item values (null for an item that failed).
            Value::Object(
                step.outputs
                    .iter()
                    .map(|(name, _)| {
                        let values = outputs.iter().map(|o| o.as_ref().and_then(|o| o.get(name)).cloned().unwrap_or(Value::Null));
                        (name.clone(), Value::Array(values.collect()))
                    })
                    .collect(),
            )
        } else {
            Value::Object(outputs.pop().flatten().unwrap_or_default())
        };
        if !failures.is_empty() {
            return StepOutcome { status: Status::Failed, message: Some(failures.join("; ")), mismatches, outputs: Some(bound) };
        }
        if !gaps.is_empty() {
            return StepOutcome::gap(gaps.join("; "));
        }
        if !mismatches.is_empty() {
            let n = mismatches.len();
            return StepOutcome {
                status: Status::Failed,
                message: Some(format!("{n} expectation(s) not met")),
                mismatches,
                outputs: Some(bound),
            };
        }
        StepOutcome { status: Status::Passed, message: None, mismatches: Vec::new(), outputs: Some(bound) }
    }

    /// One call of a step (one `for_each` item): render, call (with retry), record, poll, assert.
    /// `tag_step` is the `labrun:step` tag value: `chapter/step`, with `/n` for item n of a loop.
    async fn one_call(
        &self,
        w: &Workshop,
        chapter: &Chapter,
        step: &Step,
        mode: Mode,
        ctx: Context,
        tag_step: String,
    ) -> Result<(Vec<Mismatch>, Map<String, Value>), StepError> {
        let mut params =
            self.renderer.render(&step.with, &ctx).map_err(|e| format!("parameters could not be rendered: {e} (in `{}`)", e.template))?;
        params = strip_nulls(params);
        let op = step.op;
        let mutating = !op.read_only && mode == Mode::Run;
        let phase = if mode == Mode::Run { Phase::Build } else { Phase::Check };
        let tags = labrun_tags(&w.id, chapter.label(), &self.run_id, &tag_step, step.cleanup == Cleanup::None);
        let waiter = match &step.wait {
            // Validation allows a waiter only on the read it polls; polling a change would repeat it.
            Some(_) if !op.read_only => return Err(format!("`wait` polls the call, and {} changes resources", op.name).into()),
            Some(name) => Some(crate::waiter::for_operation(op, name)?),
            None => None,
        };
        // A waiter's acceptors judge errors (`InvalidInstanceID.NotFound` → retry), so its polls
        // do not wait out eventual consistency first; `judge` below falls back to that.
        let read_phase = if waiter.is_some() { Phase::Check } else { phase };
        let mut response: Result<Value, CallError> = if mutating {
            add_tags(op, &mut params, &tags);
            if let Some(member) = op.client_token
                && let Value::Object(m) = &mut params
            {
                // One token per step and item, the same for every retry: a repeat of a create
                // that did happen returns the first result instead of making a second one.
                m.entry(member).or_insert_with(|| Value::String(client_token(&self.run_id, chapter.label(), &tag_step)));
            }
            Ok(self.change(w, chapter, step, &params, &tag_step, &ctx).await?)
        } else {
            self.read_step(step, &params, read_phase).await
        };
        // Without a waiter an error ends the step; with one, its acceptors judge errors too.
        if waiter.is_none()
            && let Err(e) = &response
        {
            return Err(self.call_error(op, e));
        }
        if mutating && op.tagging == Tagging::BucketTagging {
            // S3 takes no tags on create: tag the bucket right after, through the same policy.
            let tagging = catalog::operation("s3:PutBucketTagging").expect("catalog has s3:PutBucketTagging");
            let p = json!({"Bucket": params["Bucket"], "Tagging": {"TagSet": tags}});
            self.mutate(step, tagging, &p, &tag_step).await.map_err(|(e, _)| self.call_error(tagging, &e))?;
        }
        // `until` and `wait`: poll until the expectations hold and the waiter says success (in
        // check mode, one look is enough). A waiter's failure state ends the step at once.
        let limit = step.timeout.or(waiter.as_ref().map(Waiter::timeout)).unwrap_or(self.pacing.default_timeout);
        let deadline = Instant::now() + limit;
        let mut interval =
            step.interval.or(waiter.as_ref().map(|w| w.delay.max(labrun_lab::limits::MIN_INTERVAL))).unwrap_or(self.pacing.poll_interval);
        let mut attempt = 1;
        loop {
            let waiting = match &waiter {
                None => None,
                Some(w) => match judge(w, &response, mode) {
                    Verdict::Success => None,
                    Verdict::Failure(why) => return Err(format!("waiter `{}` reached a failure state: {why}", w.name).into()),
                    Verdict::Retry(why) => Some(why),
                },
            };
            // A waiter that succeeds on an error (`TableNotExists`) leaves no response: `null`.
            let body = response.as_ref().unwrap_or(&Value::Null);
            let mismatches = self.evaluate(&step.until, body, &ctx, step.op.synthetic)?;
            if waiting.is_none() && mismatches.is_empty() {
                break;
            }
            if mode == Mode::Check {
                if let (Some(why), Some(w)) = (&waiting, &waiter) {
                    return Err(format!("waiter `{}` is not satisfied: {why}", w.name).into());
                }
                let out = self.outputs(step, body)?;
                return Ok((mismatches, out));
            }
            let what: Vec<String> = waiting
                .iter()
                .zip(&waiter)
                .map(|(why, w)| format!("waiter `{}` ({why})", w.name))
                .chain(mismatches.iter().map(ToString::to_string))
                .collect();
            if Instant::now() + interval > deadline {
                return Err(
                    format!("timed out after {} waiting for: {}", labrun_lab::model::format_duration(limit), what.join("; ")).into()
                );
            }
            self.observer.step_waiting(step, attempt, &what[0]);
            if retry::sleep(interval, &self.cancel).await.is_err() {
                return Err(StepError::Failed("interrupted while waiting".into()));
            }
            // `until` backs off; a waiter polls at its model's pace.
            if waiter.is_none() {
                interval = (interval * 3 / 2).min(self.pacing.poll_max_interval);
            }
            attempt += 1;
            response = self.read_step(step, &params, read_phase).await;
            if waiter.is_none()
                && let Err(e) = &response
            {
                return Err(self.call_error(op, e));
            }
        }
        let response = response.unwrap_or(Value::Null);
        let outputs = self.outputs(step, &response)?;
        let mismatches = self.evaluate(&step.expect, &response, &ctx, step.op.synthetic)?;
        Ok((mismatches, outputs))
    }

    /// A change, recorded: the intent goes to the ledger before the call, the undo after it.
    async fn change(
        &self,
        w: &Workshop,
        chapter: &Chapter,
        step: &Step,
        params: &Value,
        tag_step: &str,
        ctx: &Context,
    ) -> Result<Value, StepError> {
        let op = step.op;
        // A restore needs the old value before the change.
        let before = match (op.undo, &step.cleanup) {
            (Undo::Restore { capture, capture_params, .. }, Cleanup::Auto | Cleanup::Restore) => {
                let cop = catalog::operation(capture).expect("catalog checks capture ops");
                let cparams = assert::search(capture_params, &json!({"request": params})).map_err(|e| format!("capture: {e}"))?;
                Some(self.read(cop, &strip_nulls(cparams), Phase::Build, Some(step)).await.map_err(|e| self.call_error(op, &e))?)
            }
            _ => None,
        };
        let ledger = self.ledger.as_ref().filter(|_| records(step));
        let own_cleanup = match &step.cleanup {
            Cleanup::Call { call, with } => {
                let mut c = ctx.clone();
                c.steps.insert(step.id.clone(), json!({"request": params, "response": null}));
                self.renderer.render(with, &c).ok().map(|p| (call.clone(), strip_nulls(p)))
            }
            _ => None,
        };
        let intent = match ledger {
            Some(l) => Some(
                l.intent(Intent {
                    id: String::new(),
                    run_id: self.run_id.clone(),
                    workshop: w.id.clone(),
                    chapter: chapter.label().to_string(),
                    step: step.id.clone(),
                    tag_step: tag_step.to_string(),
                    selection: self.selection.clone(),
                    call: step.call.clone(),
                    request: params.clone(),
                    before: before.clone(),
                    cleanup: own_cleanup,
                    at: now_secs(),
                })
                .map_err(|e| format!("could not write the ledger, so nothing was called: {e}"))?,
            ),
            None => None,
        };
        match self.mutate(step, op, params, tag_step).await {
            Ok(response) => {
                self.record(w, chapter, step, params, &response, before.as_ref(), ctx, intent).await?;
                Ok(response)
            }
            Err((e, unsure)) => {
                // A call that certainly did nothing closes its intent; an unanswered one stays
                // open, and `down` looks for what it may have made.
                if let (Some(l), Some(id), false) = (ledger, &intent, unsure) {
                    l.resolve(id).map_err(|e| format!("could not write the ledger: {e}"))?;
                }
                let mut err = self.call_error(op, &e);
                if unsure && let StepError::Failed(msg) = &mut err {
                    msg.push_str("; its answer was lost, so it may have happened: `labrun down` looks for it");
                }
                Err(err)
            }
        }
    }

    /// A call's error as the step reports it. On an emulator, an operation or service the
    /// emulator does not implement (HTTP 501, "not enabled", "not implemented") is a gap.
    /// labrun's own limits (no binding, no protocol) stay failures, whatever the target.
    fn call_error(&self, op: &Operation, e: &CallError) -> StepError {
        if e.kind == ErrorKind::Unsupported && self.backend.target().is_emulator() {
            return StepError::Gap(format!("the emulator does not implement {}: {}", op.name, e.message));
        }
        StepError::Failed(describe_error(op, e))
    }

    /// One operation call: labrun's own (synthetic) or the backend's; secrets masked.
    async fn attempt(&self, op: &'static Operation, params: &Value) -> Result<Value, CallError> {
        let result = if op.synthetic {
            crate::reachability::call(self.backend.as_ref(), op, params).await
        } else {
            self.backend.call(op, params).await
        };
        result.map(|mut v| {
            mask_secrets(op, &mut v);
            v
        })
    }

    fn pacing_for(&self, step: Option<&Step>) -> Attempts {
        // A step's own `retry:` wins; otherwise the engine's pacing (tests shrink it).
        let default = labrun_lab::model::Retry::default();
        match step {
            Some(s) if s.retry.attempts != default.attempts || s.retry.delay != default.delay => {
                Attempts::new(s.retry.attempts, s.retry.delay)
            }
            _ => Attempts::new(self.pacing.attempts, self.pacing.retry_base),
        }
    }

    /// A call that changes nothing, retried as the phase allows (a lost answer is simply asked again).
    async fn read(&self, op: &'static Operation, params: &Value, phase: Phase, step: Option<&Step>) -> Result<Value, CallError> {
        let mut attempts = self.pacing_for(step);
        loop {
            let err = match self.attempt(op, params).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let next = if step.is_some_and(|s| s.retry.on.contains(&err.code)) { Next::Retry } else { retry::judge(&err, phase) };
            let Some(delay) = attempts.next(next, &self.pacing, phase) else { return Err(err) };
            if let Some(s) = step {
                self.observer.step_waiting(s, attempts.n - 1, &format!("retrying after {}", err.code));
            }
            if retry::sleep(delay, &self.cancel).await.is_err() {
                return Err(err);
            }
        }
    }

    /// A step's read: every page its service model's paginator gives, unless `pages: first`.
    async fn read_step(&self, step: &Step, params: &Value, phase: Phase) -> Result<Value, CallError> {
        match step.pages {
            Pages::All => self.read_pages(step.op, params, phase, Some(step)).await,
            Pages::First => self.read(step.op, params, phase, Some(step)).await,
        }
    }

    /// A read that follows its model's paginator, if it has one; each page is retried on its own.
    async fn read_pages(&self, op: &'static Operation, params: &Value, phase: Phase, step: Option<&Step>) -> Result<Value, CallError> {
        paginate::read_all(op, params, |page: Value| async move { self.read(op, &page, phase, step).await }).await
    }

    /// A change, retried without ever repeating a create blindly. After an attempt whose
    /// answer was lost, the operation's lookup looks for what it made before trying again, and
    /// an "already exists" kind of answer counts as that attempt's success. Returns the error
    /// with `true` when an unanswered attempt may have taken effect.
    async fn mutate(&self, step: &Step, op: &'static Operation, params: &Value, tag_step: &str) -> Result<Value, (CallError, bool)> {
        let mut attempts = self.pacing_for(Some(step));
        let mut unsure = false;
        loop {
            if unsure && let Some(l) = op.lookup {
                match self.lookup(l, params, &self.run_id, tag_step).await {
                    Ok(Some(found)) => return Ok(found),
                    Ok(None) => {}
                    Err(e) => {
                        let Some(delay) = attempts.next(retry::judge(&e, Phase::Check), &self.pacing, Phase::Build) else {
                            return Err((e, true));
                        };
                        if retry::sleep(delay, &self.cancel).await.is_err() {
                            return Err((e, true));
                        }
                        continue;
                    }
                }
            }
            let err = match self.attempt(op, params).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if unsure && op.already.contains(&err.code.as_str()) {
                // The attempt whose answer was lost did it.
                return match op.lookup {
                    None => Ok(json!({})),
                    Some(l) => match self.lookup(l, params, &self.run_id, tag_step).await {
                        Ok(Some(found)) => Ok(found),
                        _ => Err((
                            CallError::new(
                                err.kind,
                                err.code.clone(),
                                format!("{} (an earlier attempt's answer was lost, and labrun could not find what it made)", err.message),
                            ),
                            true,
                        )),
                    },
                };
            }
            if unsure && retry::removes(op) && retry::already_undone(&err) {
                return Ok(json!({}));
            }
            let next = match err.kind {
                ErrorKind::Transient | ErrorKind::Lost => {
                    unsure |= err.kind == ErrorKind::Lost || !retry::throttled(&err);
                    Next::Retry
                }
                _ if step.retry.on.contains(&err.code) => Next::Retry,
                _ => retry::judge(&err, Phase::Build),
            };
            let Some(delay) = attempts.next(next, &self.pacing, Phase::Build) else { return Err((err, unsure)) };
            self.observer.step_waiting(step, attempts.n - 1, &format!("retrying after {}", err.code));
            if retry::sleep(delay, &self.cancel).await.is_err() {
                return Err((err, unsure));
            }
        }
    }

    /// Finds what a create made, with the catalog's lookup for it. `Ok(None)`: nothing.
    async fn lookup(&self, l: &Lookup, request: &Value, run: &str, tag_step: &str) -> Result<Option<Value>, CallError> {
        let bad = |e: String| CallError::new(ErrorKind::Client, "LookupFailed", e);
        let op = catalog::operation(l.op).ok_or_else(|| bad(format!("unknown lookup operation {}", l.op)))?;
        let params = assert::search(l.params, &json!({"request": request, "run": run, "step": tag_step})).map_err(bad)?;
        let response = match self.read_pages(op, &strip_nulls(params), Phase::Check, None).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let items = match assert::search(l.items, &response).map_err(bad)? {
            Value::Array(a) => a,
            _ => Vec::new(),
        };
        // Tags as EC2 gives them (`Tags: [{Key, Value}]`) or as a map (`tags: {key: value}`).
        let has_tag = |item: &Value, key: &str, value: &str| {
            ["Tags", "tags", "TagList"].iter().any(|field| match &item[*field] {
                Value::Array(t) => t.iter().any(|t| (t["Key"] == key || t["key"] == key) && (t["Value"] == value || t["value"] == value)),
                Value::Object(m) => m.get(key).is_some_and(|v| v == value),
                _ => false,
            })
        };
        let ours: Vec<Value> = items
            .into_iter()
            .filter(|i| !i.is_null())
            .filter(|i| l.matching.iter().all(|(item_field, request_field)| i[*item_field] == request[*request_field]))
            .filter(|i| !l.tagged || (has_tag(i, tag::RUN, run) && has_tag(i, tag::STEP, tag_step)))
            .collect();
        if ours.is_empty() {
            return Ok(None);
        }
        assert::search(l.response, &Value::Array(ours)).map(Some).map_err(bad)
    }

    fn outputs(&self, step: &Step, response: &Value) -> Result<Map<String, Value>, String> {
        step.outputs
            .iter()
            .map(|(name, query)| query.search(response).map(|v| (name.clone(), v)).map_err(|e| format!("output `{name}`: {e}")))
            .collect()
    }

    /// Checks assertions; `synthetic` answers (labrun's own checks) explain their mismatches.
    fn evaluate(
        &self,
        assertions: &[labrun_lab::Assertion],
        response: &Value,
        ctx: &Context,
        synthetic: bool,
    ) -> Result<Vec<Mismatch>, String> {
        let mut out = Vec::new();
        for a in assertions {
            let matcher = self.render_matcher(&a.matcher, ctx)?;
            if let Some(mut m) = assert::check(a, &matcher, response)? {
                if synthetic {
                    m.details = crate::reachability::explain(&m.actual);
                }
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
            Matcher::Matches(re) if re.as_str().contains("{{") => match r(&Value::String(re.as_str().to_string()))? {
                Value::String(s) => Matcher::Matches(Pattern::new(&s)),
                other => Matcher::Matches(Pattern::new(&other.to_string())),
            },
            other => other.clone(),
        })
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
        intent: Option<String>,
    ) -> Result<(), String> {
        let Some(ledger) = &self.ledger else { return Ok(()) };
        let undo = match &step.cleanup {
            Cleanup::None => None,
            // An explicit cleanup call wins; otherwise the catalog's undo.
            Cleanup::Call { call, with } => {
                let mut c = ctx.clone();
                c.steps.insert(step.id.clone(), json!({"request": request, "response": response}));
                let params = self.renderer.render(with, &c).map_err(|e| format!("cleanup parameters: {e}"))?;
                Some((call.clone(), params))
            }
            Cleanup::Auto | Cleanup::Restore => catalog_undo(step.op, request, response, before)?,
        };
        let Some((undo_call, undo_params)) = undo else {
            if let Some(id) = &intent {
                ledger.resolve(id).map_err(|e| format!("could not write the ledger: {e}"))?;
            }
            return Ok(());
        };
        let undo_params = strip_nulls(undo_params);
        let entry = Entry {
            id: String::new(),
            intent,
            run_id: self.run_id.clone(),
            workshop: w.id.clone(),
            chapter: chapter.label().to_string(),
            step: step.id.clone(),
            selection: self.selection.clone(),
            call: step.call.clone(),
            undo_call,
            resource: describe_resource(&undo_params),
            undo_params,
            at: now_secs(),
        };
        ledger.record(entry).map(|_| ()).map_err(|e| format!("could not write the ledger, stopping so nothing is lost: {e}"))
    }

    /// `labrun down`: undoes outstanding ledger entries of these chapters (and of the
    /// prerequisites built for them), newest first; resolves intents whose answer was lost by
    /// looking for what they made; then sweeps by tag. Idempotent and resumable: a resource that
    /// is already gone counts as undone, and a failure leaves its entry for the next `down`.
    pub async fn down(&self, workshop: &str, chapters: Option<&[String]>) -> DownReport {
        let mut report = DownReport::default();
        let Some(ledger) = &self.ledger else { return report };
        let (pending, built_for) = match (ledger.outstanding(), ledger.built_for(workshop, chapters.unwrap_or_default())) {
            (Ok(p), Ok(r)) => (p, r),
            (Err(e), _) | (_, Err(e)) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        for item in pending.into_iter().filter(|p| p.concerns(workshop, chapters)) {
            if self.cancelled() {
                report.interrupted = true;
                break;
            }
            let (shown, outcome, close) = match &item {
                Pending::Entry(entry) => (entry.clone(), self.undo(&entry.undo_call, &entry.undo_params).await, entry.id.clone()),
                Pending::Intent(intent) => {
                    let (shown, outcome) = self.resolve_intent(intent).await;
                    (shown, outcome, intent.id.clone())
                }
            };
            self.observer.undo_finished(&shown, &outcome);
            match &outcome {
                UndoOutcome::Undone | UndoOutcome::AlreadyGone => {
                    let written = match item {
                        Pending::Entry(_) => ledger.mark_undone(&close),
                        Pending::Intent(_) => ledger.resolve(&close),
                    };
                    if let Err(e) = written {
                        report.errors.push(e.to_string());
                    }
                    report.undone += 1;
                }
                UndoOutcome::Failed(msg) => report.errors.push(format!("{} {} ({}): {msg}", shown.undo_call, shown.resource, shown.step)),
            }
        }
        if !report.interrupted {
            let scope = crate::sweep::SweepScope { workshop: workshop.to_string(), chapters: chapters.map(<[String]>::to_vec), built_for };
            let retrying = retry::Retrying {
                inner: self.backend.as_ref(),
                pacing: self.pacing.clone(),
                phase: Phase::Cleanup,
                cancel: self.cancel.clone(),
            };
            let swept = crate::sweep::sweep(&retrying, &scope).await;
            report.swept = swept.deleted;
            report.errors.extend(swept.failed);
            report.interrupted = self.cancelled();
        }
        report
    }

    /// An intent whose call never answered: find what it made and undo that.
    async fn resolve_intent(&self, intent: &Intent) -> (Entry, UndoOutcome) {
        let mut shown = Entry {
            id: intent.id.clone(),
            intent: Some(intent.id.clone()),
            run_id: intent.run_id.clone(),
            workshop: intent.workshop.clone(),
            chapter: intent.chapter.clone(),
            step: intent.step.clone(),
            selection: intent.selection.clone(),
            call: intent.call.clone(),
            undo_call: String::new(),
            undo_params: Value::Null,
            resource: format!("whatever {} made (its answer was lost)", intent.call),
            at: intent.at,
        };
        let Some(op) = catalog::operation(&intent.call) else {
            return (shown, UndoOutcome::Failed(format!("unknown operation {}", intent.call)));
        };
        let response = match op.lookup {
            Some(l) => match self.lookup(l, &intent.request, &intent.run_id, &intent.tag_step).await {
                Ok(Some(found)) => found,
                // Nothing carries its tags: the call never took effect.
                Ok(None) => return (shown, UndoOutcome::AlreadyGone),
                Err(e) => return (shown, UndoOutcome::Failed(format!("looking for what {} made: {e}", intent.call))),
            },
            // An undo that needs the answer cannot be rendered without it or a lookup.
            None if matches!(op.undo, Undo::Call { params, .. } if params.contains("response")) && intent.cleanup.is_none() => {
                return (
                    shown,
                    UndoOutcome::Failed(format!(
                        "the answer to {} was lost, and labrun has no way to find what it made (it would need the answer to undo it): \
                         look for it by hand ({})",
                        intent.call,
                        describe_resource(&intent.request)
                    )),
                );
            }
            // Changes found by their undo alone: undoing something that never happened is
            // answered "already undone".
            None => json!({}),
        };
        let undo = match intent
            .cleanup
            .clone()
            .map_or_else(|| catalog_undo(op, &intent.request, &response, intent.before.as_ref()), |c| Ok(Some(c)))
        {
            Ok(Some(u)) => u,
            // A step's own `cleanup:` that could not be rendered before the call, and no
            // catalog undo: say so rather than drop it.
            Ok(None) => {
                let found = if op.lookup.is_some() { format!(": found {}", assert::short(&response)) } else { String::new() };
                return (
                    shown,
                    UndoOutcome::Failed(format!(
                        "the answer to {} was lost{found}, and labrun has no undo for it: remove it by hand",
                        intent.call
                    )),
                );
            }
            Err(e) => return (shown, UndoOutcome::Failed(e)),
        };
        shown.undo_call = undo.0;
        shown.undo_params = strip_nulls(undo.1);
        shown.resource = describe_resource(&shown.undo_params);
        let outcome = self.undo(&shown.undo_call, &shown.undo_params).await;
        (shown, outcome)
    }

    async fn undo(&self, call: &str, params: &Value) -> UndoOutcome {
        let Some(op) = catalog::operation(call) else {
            return UndoOutcome::Failed(format!("unknown operation {call}"));
        };
        // The same policy as the sweep: retries, drains waited out, lost answers resolved.
        let retrying = retry::Retrying {
            inner: self.backend.as_ref(),
            pacing: self.pacing.clone(),
            phase: Phase::Cleanup,
            cancel: self.cancel.clone(),
        };
        match retrying.call(op, params).await {
            Ok(_) => UndoOutcome::Undone,
            Err(e) if retry::already_undone(&e) => UndoOutcome::AlreadyGone,
            Err(e) if self.cancelled() => UndoOutcome::Failed(format!("interrupted: {e}")),
            Err(e) => UndoOutcome::Failed(e.to_string()),
        }
    }
}

/// True when a successful call of this step leaves an entry in the ledger.
fn records(step: &Step) -> bool {
    match &step.cleanup {
        Cleanup::None => false,
        Cleanup::Call { .. } => true,
        Cleanup::Auto | Cleanup::Restore => !matches!(step.op.undo, Undo::None),
    }
}

/// The catalog's undo of a call, computed from what was asked, answered and read before.
fn catalog_undo(op: &Operation, request: &Value, response: &Value, before: Option<&Value>) -> Result<Option<(String, Value)>, String> {
    Ok(match op.undo {
        Undo::None => None,
        Undo::Call { op, params } => Some((op.to_string(), assert::search(params, &json!({"request": request, "response": response}))?)),
        Undo::Restore { op, params, .. } => Some((
            op.to_string(),
            assert::search(params, &json!({"request": request, "response": response, "before": before.cloned().unwrap_or_default()}))?,
        )),
    })
}

/// A client token for one step (and item) of one run: the same for every retry, at most 64
/// characters as EC2 allows.
fn client_token(run_id: &str, chapter: &str, tag_step: &str) -> String {
    let token = format!("labrun-{run_id}-{chapter}-{tag_step}");
    if token.len() <= 64 {
        return token;
    }
    // FNV-1a: stable across processes and versions, unlike the standard library's hasher.
    let hash = token.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("labrun-{run_id}-{hash:016x}").chars().take(64).collect()
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

/// One poll of a `wait`, judged by the waiter's acceptors. An error none of them names is, while
/// building, still given the time eventual consistency takes (a describe by id right after the
/// create answers NotFound for a while): the waiter's timeout bounds it.
fn judge(w: &Waiter, poll: &Result<Value, CallError>, mode: Mode) -> Verdict {
    match poll {
        Err(e) if mode == Mode::Run && w.first_match(Err(e)).is_none() && retry::not_yet_consistent(e) => {
            Verdict::Retry(format!("{} (not visible yet)", e.code))
        }
        _ => w.judge(poll.as_ref()),
    }
}

/// What one step came to: its status, why (when it did not pass), the expectations it missed,
/// and the outputs it bound (`None` when it did not run).
#[derive(Debug)]
struct StepOutcome {
    status: Status,
    message: Option<String>,
    mismatches: Vec<Mismatch>,
    outputs: Option<Value>,
}

impl StepOutcome {
    fn not_run(status: Status, why: impl Into<String>) -> Self {
        StepOutcome { status, message: Some(why.into()), mismatches: Vec::new(), outputs: None }
    }
    fn skipped(why: impl Into<String>) -> Self {
        Self::not_run(Status::Skipped, why)
    }
    fn gap(why: impl Into<String>) -> Self {
        Self::not_run(Status::Gap, why)
    }
    fn failed(why: impl Into<String>) -> Self {
        Self::not_run(Status::Failed, why)
    }
}

/// Why one call of a step did not succeed: a failure, or something the emulator does not do.
#[derive(Debug)]
enum StepError {
    Failed(String),
    /// The emulator answered that it does not implement the service or operation: a gap, on an
    /// emulator target only (real AWS never answers so).
    Gap(String),
}

impl From<String> for StepError {
    fn from(msg: String) -> Self {
        StepError::Failed(msg)
    }
}

fn describe_error(op: &Operation, e: &CallError) -> String {
    match e.kind {
        ErrorKind::Unsupported => format!("{} is not supported by this target: {}", op.name, e.message),
        ErrorKind::NotCallable => format!("labrun cannot call {}: {}", op.name, e.message),
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

/// The `labrun:*` tags of a create: workshop, chapter, run and step (which `down` and the
/// lookup after a lost answer find it by), and `labrun:cleanup=none` where the author asked
/// labrun to leave the resource (the sweep obeys).
pub fn labrun_tags(workshop: &str, chapter: &str, run_id: &str, tag_step: &str, keep: bool) -> Value {
    let mut tags = vec![
        json!({"Key": tag::WORKSHOP, "Value": workshop}),
        json!({"Key": tag::CHAPTER, "Value": chapter}),
        json!({"Key": tag::RUN, "Value": run_id}),
        json!({"Key": tag::STEP, "Value": tag_step}),
    ];
    if keep {
        tags.push(json!({"Key": tag::CLEANUP, "Value": "none"}));
    }
    Value::Array(tags)
}

/// Adds the tags to a create call the way its API takes them. Buckets take none on create:
/// the engine tags them with `s3:PutBucketTagging` right after.
pub fn add_tags(op: &Operation, params: &mut Value, tags: &Value) {
    let Value::Object(map) = params else { return };
    let list = tags.as_array().cloned().unwrap_or_default();
    match op.tagging {
        Tagging::TagSpecifications(resource) => {
            let specs = map.entry("TagSpecifications").or_insert_with(|| json!([]));
            let Value::Array(specs) = specs else { return };
            match specs.iter_mut().find(|s| s.get("ResourceType").and_then(Value::as_str) == Some(resource)) {
                Some(spec) => {
                    if let Some(Value::Array(existing)) = spec.as_object_mut().map(|o| o.entry("Tags").or_insert_with(|| json!([]))) {
                        existing.extend(list);
                    }
                }
                None => specs.push(json!({"ResourceType": resource, "Tags": list})),
            }
        }
        Tagging::Tags => {
            if let Value::Array(existing) = map.entry("Tags").or_insert_with(|| json!([])) {
                existing.extend(list);
            }
        }
        Tagging::List { member, key, value } => {
            // The service's own names for a tag's key and value (`{key, value}`, `{TagKey, TagValue}`).
            if let Value::Array(existing) = map.entry(member).or_insert_with(|| json!([])) {
                existing.extend(list.iter().map(|t| {
                    let mut tag = serde_json::Map::new();
                    tag.insert(key.to_string(), t["Key"].clone());
                    tag.insert(value.to_string(), t["Value"].clone());
                    Value::Object(tag)
                }));
            }
        }
        Tagging::Map(member) => {
            if let Value::Object(existing) = map.entry(member).or_insert_with(|| json!({})) {
                for t in &list {
                    if let Some(k) = t["Key"].as_str() {
                        existing.insert(k.to_string(), t["Value"].clone());
                    }
                }
            }
        }
        Tagging::BucketTagging | Tagging::None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_stable_and_fit_ec2s_limit() {
        let a = client_token("19a2b3c4d5e-0f1e", "3.2.2.1", "create-endpoint");
        assert_eq!(a, client_token("19a2b3c4d5e-0f1e", "3.2.2.1", "create-endpoint"));
        assert_ne!(a, client_token("19a2b3c4d5e-0f1e", "3.2.2.2", "create-endpoint"));
        let long = client_token("19a2b3c4d5e-0f1e", "3.2.2.1", &"x".repeat(80));
        assert!(long.len() <= 64);
        assert_ne!(long, client_token("19a2b3c4d5e-0f1e", "3.2.2.1", &"y".repeat(80)));
    }
}
