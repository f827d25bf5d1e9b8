//! `labrun test`: each chapter on the emulator, in an account of its own, through the
//! protocol that proves the chapter and its checks mean something:
//! prerequisites built → inventory → checks must fail → run → checks must pass → down →
//! checks must fail again → inventory must equal the first.

use crate::inventory;
use labrun_aws::{AwsBackend, Connect};
use labrun_exec::{Engine, Ledger, Mode, Observer, Reporting, Role, Status};
use labrun_lab::derive::Listing;
use labrun_lab::model::Workshop;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct ChapterTest {
    pub chapter: String,
    pub title: String,
    pub account: String,
    pub passed: bool,
    /// What went wrong, phase by phase.
    pub failures: Vec<String>,
    /// Steps that need real AWS, reported as gaps.
    pub gaps: Vec<String>,
    pub leaked: Vec<String>,
    pub elapsed_ms: u128,
    pub location: String,
}

pub struct TestOptions {
    /// The emulator itself: inventories and leak checks look here.
    pub endpoint: String,
    /// Where the engine's calls go when it is not `endpoint`: a realism proxy in front of it.
    pub engine_endpoint: Option<String>,
    pub pacing: labrun_exec::Pacing,
    pub region: String,
    /// Six digits shared by this test run; each chapter adds its own six to make an account.
    pub account_prefix: u32,
    pub ledger_dir: std::path::PathBuf,
}

/// Pacing for an emulator, with or without the realism proxy: its delays are seconds, not
/// minutes, so polls and backoff can be short; patience stays long enough to outlast them.
pub fn test_pacing() -> labrun_exec::Pacing {
    use std::time::Duration;
    labrun_exec::Pacing {
        poll_interval: Duration::from_millis(500),
        poll_max_interval: Duration::from_secs(3),
        retry_base: Duration::from_millis(200),
        retry_max_delay: Duration::from_secs(3),
        consistency_patience: Duration::from_secs(60),
        dependency_patience: Duration::from_secs(60),
        ..labrun_exec::Pacing::default()
    }
}

/// The 12-digit account of chapter `index` in a run.
pub fn account_for(prefix: u32, index: usize) -> String {
    format!("{:06}{:06}", prefix % 1_000_000, index % 1_000_000)
}

/// Tests one chapter (index into `w.chapters`).
pub async fn test_chapter(w: &Workshop, index: usize, opts: &TestOptions, observer: Arc<dyn Observer>) -> ChapterTest {
    let started = Instant::now();
    let chapter = &w.chapters[index];
    let account = account_for(opts.account_prefix, index);
    let mut t = ChapterTest {
        chapter: chapter.label().to_string(),
        title: chapter.title.clone(),
        account: account.clone(),
        passed: false,
        failures: Vec::new(),
        gaps: Vec::new(),
        leaked: Vec::new(),
        elapsed_ms: 0,
        location: chapter.steps.first().map(|s| s.location.to_string()).unwrap_or_default(),
    };
    // The observer's view goes straight to the emulator; the engine's may go through a proxy.
    let backend: Arc<dyn labrun_exec::Backend> =
        match AwsBackend::connect(Connect::emulator(&opts.endpoint, &opts.region, Some(&account))).await {
            Ok(b) => Arc::new(b),
            Err(e) => {
                t.failures.push(format!("connect: {e}"));
                return t;
            }
        };
    let engine_backend: Arc<dyn labrun_exec::Backend> = match &opts.engine_endpoint {
        None => backend.clone(),
        Some(e) => match AwsBackend::connect(Connect::emulator(e, &opts.region, Some(&account))).await {
            Ok(b) => Arc::new(b),
            Err(e) => {
                t.failures.push(format!("connect: {e}"));
                return t;
            }
        },
    };
    let ledger = match Ledger::open(&opts.ledger_dir, backend.target()) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            t.failures.push(e.to_string());
            return t;
        }
    };
    let run_id = format!("test-{account}");
    let mut engine = Engine::new(engine_backend, Some(ledger), observer, run_id.clone());
    engine.pacing = opts.pacing.clone();

    // After everything, the account must be as it was before the prerequisites.
    let listings = inventory::listings_for(w);
    let pristine = match inventory::take(backend.as_ref(), &listings).await {
        Ok(i) => i,
        Err(e) => {
            t.failures.push(e);
            return finish(t, started);
        }
    };
    // Prerequisites, built in this chapter's own account.
    let prereqs = labrun_lab::prerequisites(w, &[index]);
    for &p in &prereqs {
        if w.chapters[p].steps.is_empty() {
            continue;
        }
        let r = engine.chapter(w, &w.chapters[p], Mode::Run, Role::Prerequisite, Reporting::Silent).await;
        if r.failed() {
            let why = r
                .steps
                .iter()
                .find(|s| s.status == Status::Failed)
                .map(|s| format!("{}: {}", s.id, s.message.clone().unwrap_or_default()))
                .unwrap_or_default();
            t.failures.push(format!("prerequisite {} failed ({why})", r.number));
            // Undo what the prerequisites built before this one failed, this one's part included.
            let built: Vec<String> = prereqs.iter().map(|&p| w.chapters[p].label().to_string()).collect();
            let cleanup = engine.down(&w.id, Some(&built)).await;
            for e in &cleanup.errors {
                t.failures.push(format!("cleaning up prerequisites: {e}"));
            }
            left_behind(&mut t, backend.as_ref(), &pristine, &listings).await;
            return finish(t, started);
        }
    }
    let before = match inventory::take(backend.as_ref(), &listings).await {
        Ok(i) => i,
        Err(e) => {
            t.failures.push(e);
            return finish(t, started);
        }
    };

    let has_checks = chapter.steps.iter().any(|s| s.runs_in_check() && !s.needs_real_aws());
    let first = engine.chapter(w, chapter, Mode::Check, Role::Addressed, Reporting::Silent).await;
    if has_checks && !first.checks_fail() {
        t.failures.push("its checks pass before the chapter ran: they do not test what the chapter builds".into());
    }
    let run = engine.chapter(w, chapter, Mode::Run, Role::Addressed, Reporting::Silent).await;
    for s in &run.steps {
        match s.status {
            Status::Failed => {
                let mut why = s.message.clone().unwrap_or_default();
                for m in &s.mismatches {
                    why.push_str(&format!("; {m}"));
                }
                t.failures.push(format!("run: step {} failed at {}: {why}", s.id, s.location));
            }
            Status::Gap => t.gaps.push(format!("{} ({})", s.id, s.message.clone().unwrap_or_default())),
            _ => {}
        }
    }
    let run_failed = run.failed();
    match inventory::duplicates(backend.as_ref(), &run_id).await {
        Ok(d) if !d.is_empty() => t.failures.push(format!("duplicates: {}", d.join(", "))),
        Ok(_) => {}
        Err(e) => t.failures.push(e),
    }
    if chapter.teardown {
        return finish_teardown(t, started, &engine, w, chapter, &prereqs, &pristine, &listings, backend.as_ref(), has_checks, run_failed)
            .await;
    }
    if !run_failed {
        let after = engine.chapter(w, chapter, Mode::Check, Role::Addressed, Reporting::Silent).await;
        if has_checks && !after.checks_pass() {
            let failed: Vec<String> = after
                .steps
                .iter()
                .filter(|s| s.status == Status::Failed)
                .map(|s| {
                    // The missed expectations, or why the step failed when it missed none.
                    let why = if s.mismatches.is_empty() {
                        s.message.clone().unwrap_or_default()
                    } else {
                        s.mismatches.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                    };
                    format!("{} ({why})", s.id)
                })
                .collect();
            t.failures.push(format!("checks fail after the chapter ran: {}", failed.join(", ")));
        }
    }
    let down = engine.down(&w.id, Some(&[chapter.label().to_string()])).await;
    for e in &down.errors {
        t.failures.push(format!("down: {e}"));
    }
    if has_checks && !run_failed {
        let last = engine.chapter(w, chapter, Mode::Check, Role::Addressed, Reporting::Silent).await;
        if !last.checks_fail() {
            t.failures.push("its checks still pass after `down`: cleanup did not undo the chapter".into());
        }
    }
    match inventory::take(backend.as_ref(), &listings).await {
        Ok(after) => {
            t.leaked = inventory::leaked(&before, &after);
            if !t.leaked.is_empty() {
                t.failures.push(format!("leaked: {}", t.leaked.join(", ")));
            }
        }
        Err(e) => t.failures.push(e),
    }
    // Leave the account as found: undo the prerequisites too.
    let prereq_labels: Vec<String> = prereqs.iter().map(|&p| w.chapters[p].label().to_string()).collect();
    let cleanup = engine.down(&w.id, Some(&prereq_labels)).await;
    for e in &cleanup.errors {
        t.failures.push(format!("cleaning up prerequisites: {e}"));
    }
    left_behind(&mut t, backend.as_ref(), &pristine, &listings).await;
    t.passed = t.failures.is_empty();
    finish(t, started)
}

/// After every `down`, the account holds what it held before the test: nothing else.
async fn left_behind(t: &mut ChapterTest, backend: &dyn labrun_exec::Backend, pristine: &inventory::Inventory, listings: &[Listing]) {
    match inventory::take(backend, listings).await {
        Ok(end) => {
            let left = inventory::leaked(pristine, &end);
            if !left.is_empty() {
                t.failures.push(format!("left behind after down: {}", left.join(", ")));
            }
        }
        Err(e) => t.failures.push(e),
    }
}

/// Teardown protocol, after the run: its checks pass, and the account holds nothing the
/// prerequisites built (what it missed is named as leaked). Leftovers are then cleaned up.
#[allow(clippy::too_many_arguments)]
async fn finish_teardown(
    mut t: ChapterTest,
    started: Instant,
    engine: &Engine,
    w: &Workshop,
    chapter: &labrun_lab::Chapter,
    prereqs: &[usize],
    pristine: &inventory::Inventory,
    listings: &[Listing],
    backend: &dyn labrun_exec::Backend,
    has_checks: bool,
    run_failed: bool,
) -> ChapterTest {
    if !run_failed && has_checks {
        let after = engine.chapter(w, chapter, Mode::Check, Role::Addressed, Reporting::Silent).await;
        if !after.checks_pass() {
            t.failures.push("checks fail after the teardown ran".into());
        }
    }
    match inventory::take(backend, listings).await {
        Ok(after) => {
            t.leaked = inventory::leaked(pristine, &after);
            if !t.leaked.is_empty() {
                t.failures.push(format!("left behind: {}", t.leaked.join(", ")));
            }
        }
        Err(e) => t.failures.push(e),
    }
    let labels: Vec<String> = prereqs.iter().map(|&p| w.chapters[p].label().to_string()).collect();
    let cleanup = engine.down(&w.id, Some(&labels)).await;
    for e in &cleanup.errors {
        t.failures.push(format!("cleaning up prerequisites: {e}"));
    }
    if t.failures.is_empty() {
        left_behind(&mut t, backend, pristine, listings).await;
    }
    t.passed = t.failures.is_empty();
    finish(t, started)
}

fn finish(mut t: ChapterTest, started: Instant) -> ChapterTest {
    t.elapsed_ms = started.elapsed().as_millis();
    t
}

/// Chapters `labrun test` covers: those with steps, in order, limited to a shard `k/n`.
pub fn testable(w: &Workshop, selection: &[usize], shard: Option<(usize, usize)>) -> Vec<usize> {
    selection
        .iter()
        .copied()
        .filter(|&i| !w.chapters[i].steps.is_empty())
        .enumerate()
        .filter(|(n, _)| shard.is_none_or(|(k, total)| n % total == k - 1))
        .map(|(_, i)| i)
        .collect()
}
