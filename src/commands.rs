//! One function per command: load, connect, drive the engine, print, map to an exit code.

use crate::CliError;
use crate::cli::{self, Command, DiagFormat, EmulatorAction, Target, TargetedArgs};
use crate::report;
use crate::ui::Ui;
use labrun_aws::{AwsBackend, Connect, TargetKind};
use labrun_exec::{Backend, Engine, Ledger, RunReport, Status, TargetInfo};
use labrun_harness::emulator::{self, Options};
use labrun_lab::diag::{Diagnostic, render_plain};
use labrun_lab::{Selection, Workshop};
use serde_json::{Map, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

pub fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Validate(a) => validate(&a.path.path, a.format),
        Command::List(a) => list(&a.path),
        Command::Plan(a) => plan(a),
        Command::Schema(a) => {
            let text = match a.selector {
                None => labrun_lab::schema::schema_text(),
                Some(s) => labrun_lab::schema::schema_text_for(&s).map_err(CliError::Invalid)?,
            };
            out!("{text}");
            Ok(())
        }
        Command::Run(a) => block_on(targeted(a.t, Mode::Run { force: a.force })),
        Command::Check(a) => block_on(targeted(a, Mode::Check)),
        Command::Down(a) => block_on(targeted(a, Mode::Down)),
        Command::Test(a) => block_on(test(a)),
        Command::Emulator { action } => emulator_cmd(action),
    }
}

fn block_on<F: std::future::Future<Output = Result<(), CliError>>>(f: F) -> Result<(), CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Environment(format!("cannot start the async runtime: {e}")))?
        .block_on(f)
}

/// Loads and validates; prints diagnostics. Errors end the command with exit code 2.
fn load(path: &Path, format: DiagFormat) -> Result<Selection, CliError> {
    let sel = labrun_lab::select(path).map_err(|e| match e {
        labrun_lab::load::LoadError::NoChapter { root, number, suggestion } => CliError::Invalid(format!(
            "no chapter numbered {number} under {}{}",
            root.display(),
            suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
        )),
        other => CliError::Invalid(other.to_string()),
    })?;
    // The whole workshop is validated, not only the selection: prerequisites may run too.
    print_diagnostics(&sel.loaded.diagnostics, format);
    let errors = sel.loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        return Err(CliError::Invalid(format!("{errors} error(s) in the lab sources; nothing was run")));
    }
    Ok(sel)
}

fn print_diagnostics(diags: &[Diagnostic], format: DiagFormat) {
    match format {
        DiagFormat::Short => {
            for d in diags {
                eprintln!("{}", d.one_line());
            }
        }
        DiagFormat::Human => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            if colour {
                let handler = miette::GraphicalReportHandler::new();
                for d in diags {
                    let mut out = String::new();
                    let _ = handler.render_report(&mut out, &labrun_lab::diag::Report::new(d.clone()));
                    eprint!("{out}");
                }
            } else {
                eprint!("{}", render_plain(diags));
            }
        }
    }
}

fn validate(path: &Path, format: DiagFormat) -> Result<(), CliError> {
    let sel = load(path, format)?;
    let w = &sel.loaded.workshop;
    let steps: usize = sel.chapters.iter().map(|&i| w.chapters[i].steps.len()).sum();
    let warnings = sel.loaded.diagnostics.len();
    outln!(
        "{} valid: {} chapter(s), {steps} step(s){}",
        path.display(),
        sel.chapters.len(),
        if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() }
    );
    Ok(())
}

fn list(path: &Path) -> Result<(), CliError> {
    let sel = load(path, DiagFormat::Human)?;
    let w = &sel.loaded.workshop;
    let base = sel.chapters.first().map_or(0, |&i| w.chapters[i].depth);
    for &i in &sel.chapters {
        let c = &w.chapters[i];
        let indent = "  ".repeat(c.depth - base);
        let vi = c.title_vi.as_deref().map(|t| format!(" / {}", t.trim())).unwrap_or_default();
        let steps = if c.steps.is_empty() { String::new() } else { format!("  ({} steps)", c.steps.len()) };
        let req = if c.requires.is_empty() { String::new() } else { format!("  [requires {}]", c.requires.join(", ")) };
        outln!("{indent}{:<8} {}{vi}{steps}{req}", c.label(), c.title.trim());
    }
    Ok(())
}

fn parse_vars(items: &[String], w: &Workshop, sel: &Selection) -> Result<Map<String, Value>, CliError> {
    let mut known: std::collections::HashSet<&String> = w.vars.keys().collect();
    for &i in &sel.chapters {
        known.extend(w.chapters[i].vars.keys());
    }
    for i in labrun_lab::prerequisites(w, &sel.chapters) {
        known.extend(w.chapters[i].vars.keys());
    }
    let mut out = Map::new();
    for item in items {
        let (k, v) = item.split_once('=').ok_or_else(|| CliError::Invalid(format!("--var takes KEY=VALUE, got `{item}`")))?;
        if !known.contains(&k.to_string()) {
            let names: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            let hint =
                labrun_lab::catalog::did_you_mean(k, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            return Err(CliError::Invalid(format!("--var {k}: no such variable in these chapters{hint}")));
        }
        // Numbers, booleans and JSON lists pass as such; anything else is a string.
        let value = serde_json::from_str(v).ok().filter(|v: &Value| !v.is_string()).unwrap_or_else(|| Value::String(v.to_string()));
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

fn plan(a: cli::PlanArgs) -> Result<(), CliError> {
    let sel = load(&a.path.path, DiagFormat::Human)?;
    let w = &sel.loaded.workshop;
    let vars = parse_vars(&a.vars, w, &sel)?;
    let region = a.region.unwrap_or_else(|| w.region.clone());
    let prereqs = labrun_lab::prerequisites(w, &sel.chapters);
    if !prereqs.is_empty() {
        let names: Vec<&str> = prereqs.iter().map(|&i| w.chapters[i].label()).collect();
        outln!("# prerequisites, run first where their checks fail: {}\n", names.join(", "));
    }
    for &i in &sel.chapters {
        let c = &w.chapters[i];
        if c.steps.is_empty() {
            continue;
        }
        outln!("## {} {}", c.label(), c.title.trim());
        for call in labrun_exec::plan::plan_chapter(w, c, &region, &vars) {
            let kind = if call.read_only { "read" } else { "change" };
            outln!("- {} ({kind}) {}", call.step, call.title.as_deref().unwrap_or(""));
            for n in &call.notes {
                outln!("    # {n}");
            }
            outln!("    {}", call.cli);
        }
        outln!();
    }
    Ok(())
}

enum Mode {
    Run { force: bool },
    Check,
    Down,
}

/// Connects to the chosen target, refusing real AWS unless allowed.
async fn connect(t: &TargetedArgs, w: &Workshop, mutating: bool, ui: &Ui) -> Result<Arc<dyn Backend>, CliError> {
    let region = t.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
    match t.target {
        Target::Emulator => {
            let endpoint = t.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
            let progress = |m: &str| ui.line(&format!("emulator: {m}"));
            let opts = Options::managed(endpoint, &progress);
            let emu = tokio::task::block_in_place(|| emulator::resolve(&opts)).map_err(|e| CliError::Environment(e.to_string()))?;
            if let Some(a) = &t.emulator_account
                && !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(CliError::Invalid(format!("--emulator-account must be 12 digits, got `{a}`")));
            }
            let c = Connect::emulator(&emu.endpoint, &region.unwrap_or_else(|| w.region.clone()), t.emulator_account.as_deref());
            let b = AwsBackend::connect(c).await.map_err(|e| CliError::Environment(e.to_string()))?;
            Ok(Arc::new(b))
        }
        Target::Aws => {
            if t.endpoint.is_some() {
                return Err(CliError::Invalid("--target aws with --endpoint: refusing, as the two disagree".into()));
            }
            // AWS_ENDPOINT_URL and its per-service forms (AWS_ENDPOINT_URL_EC2, ...) would send
            // calls somewhere else while the header says "AWS".
            let mut redirects: Vec<String> = std::env::vars_os()
                .filter_map(|(k, _)| k.into_string().ok())
                .filter(|k| k == "AWS_ENDPOINT_URL" || k.starts_with("AWS_ENDPOINT_URL_"))
                .collect();
            if !redirects.is_empty() {
                redirects.sort();
                return Err(CliError::Environment(format!(
                    "refusing --target aws while {} {} set: calls would not go to AWS; unset {} or use the emulator target",
                    redirects.join(", "),
                    if redirects.len() == 1 { "is" } else { "are" },
                    if redirects.len() == 1 { "it" } else { "them" }
                )));
            }
            let c = Connect {
                kind: TargetKind::Aws,
                endpoint: None,
                region: region.or_else(|| Some(w.region.clone())),
                profile: t.profile.clone(),
                account: None,
                // Debug builds only, for the project's own tests of the account guard.
                identity_endpoint: if cfg!(debug_assertions) { std::env::var("LABRUN_TEST_IDENTITY_ENDPOINT").ok() } else { None },
            };
            let b = AwsBackend::connect(c).await.map_err(|e| CliError::Environment(e.to_string()))?;
            let account = b.target().account.clone();
            if mutating {
                let allowed: Vec<&String> = w.accounts.iter().chain(t.accounts.iter()).collect();
                if !allowed.iter().any(|a| **a == account) {
                    return Err(CliError::Environment(format!(
                        "refusing to change AWS account {account}: it is not allow-listed (add it to `accounts` in workshop.yaml or pass --account {account})"
                    )));
                }
                if !t.yes {
                    if !std::io::stdin().is_terminal() {
                        return Err(CliError::Environment(format!(
                            "about to change AWS account {account}: confirm on a terminal, or pass --yes"
                        )));
                    }
                    eprint!("labrun will create and change resources in AWS account {account} ({}). Continue? [y/N] ", b.target().region);
                    let _ = std::io::stderr().flush();
                    let mut answer = String::new();
                    let _ = std::io::stdin().lock().read_line(&mut answer);
                    if !matches!(answer.trim(), "y" | "Y" | "yes") {
                        return Err(CliError::Environment("not confirmed; nothing was changed".into()));
                    }
                }
            }
            Ok(Arc::new(b))
        }
    }
}

/// Ctrl-C or SIGTERM: cancel (waits and backoff stop at once, the run at the next safe point);
/// a second Ctrl-C quits at once.
fn stop_on_signals(cancel: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let first = async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                    Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => true,
                }
            }
            #[cfg(not(unix))]
            {
                tokio::signal::ctrl_c().await.is_ok()
            }
        };
        if first.await {
            cancel.cancel();
            eprintln!("\nlabrun: stopping at the next safe point, recording what was done (Ctrl-C again to quit now)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

fn run_id() -> String {
    let secs = labrun_exec::ledger::now_secs();
    format!("{secs:x}-{:04x}", rand::random::<u16>())
}

async fn targeted(t: TargetedArgs, mode: Mode) -> Result<(), CliError> {
    let reports = cli::reports(&t.report).map_err(CliError::Invalid)?;
    let sel = load(&t.path.path, DiagFormat::Human)?;
    let w = &sel.loaded.workshop;
    let vars = parse_vars(&t.vars, w, &sel)?;
    let mut ui = Ui::new(t.plain);
    ui.verbose = t.verbose;
    let ui = Arc::new(ui);
    let mutating = !matches!(mode, Mode::Check);
    let backend = connect(&t, w, mutating, &ui).await?;
    let target = backend.target().clone();
    let where_ = match &target.endpoint {
        Some(e) => format!("emulator {e}"),
        None => "AWS".to_string(),
    };
    ui.line(&format!("labrun · {} · {where_} · account {} · {}", w.id, target.account, target.region));
    // `check` changes nothing, so it leaves no ledger behind either.
    let ledger_dir = w.root.join(".labrun");
    let ledger = match mode {
        Mode::Check => None,
        _ => Some(Arc::new(Ledger::open(&ledger_dir, &target).map_err(|e| CliError::Environment(e.to_string()))?)),
    };
    let mut engine = Engine::new(backend, ledger.clone(), ui.clone(), run_id());
    engine.var_overrides = vars;
    engine.selection = sel.chapters.iter().map(|&i| w.chapters[i].label().to_string()).collect();
    stop_on_signals(engine.cancel.clone());
    let down_cmd = down_command(&t);
    // A teardown chapter (chapter 6) runs or is checked only when it is what was addressed:
    // building a whole workshop should not end by deleting it.
    let mut selection = sel.chapters.clone();
    if !matches!(mode, Mode::Down) && selection.len() > 1 {
        selection.retain(|&i| {
            let c = &w.chapters[i];
            if c.teardown {
                ui.line(&format!(
                    "── {} {} · left out: a teardown, run it with `labrun {}`",
                    c.label(),
                    c.title.trim(),
                    teardown_path(&t.path.path, c)
                ));
            }
            !c.teardown
        });
    }
    match mode {
        Mode::Down => {
            // The whole workshop selected: undo everything it recorded, whatever chapter.
            let whole = sel.chapters.len() == w.chapters.len();
            let chapters: Option<Vec<String>> = (!whole).then(|| sel.chapters.iter().map(|&i| w.chapters[i].label().to_string()).collect());
            let r = engine.down(&w.id, chapters.as_deref()).await;
            for s in &r.swept {
                ui.line(&format!("  ✔ swept by tag: {s}"));
            }
            ui.line(&format!("down: {} change(s) undone, {} swept by tag", r.undone, r.swept.len()));
            if let Some(l) = &ledger {
                for (file, other, n) in labrun_exec::ledger::others(&ledger_dir, &w.id, l.path()) {
                    let place = match other {
                        Some(TargetInfo { endpoint: Some(e), account, region, .. }) => format!("emulator {e}, account {account}, {region}"),
                        Some(TargetInfo { endpoint: None, account, region, .. }) => format!("AWS account {account}, {region}"),
                        None => file.display().to_string(),
                    };
                    ui.line(&format!(
                        "note: another ledger holds {n} change(s) of this workshop for {place} ({}); `labrun down` there undoes them",
                        file.display()
                    ));
                }
            }
            if r.interrupted {
                return Err(CliError::Failed(format!("interrupted; run `{down_cmd}` again to finish")));
            }
            if !r.errors.is_empty() {
                for e in &r.errors {
                    ui.line(&format!("  ✘ {e}"));
                }
                return Err(CliError::Failed(format!(
                    "{} resource(s) could not be removed; they stay in the ledger, so `{down_cmd}` can retry",
                    r.errors.len()
                )));
            }
            Ok(())
        }
        Mode::Run { force } => {
            let r = engine.run(w, &selection, force).await;
            finish(&ui, &r, &reports, &target, "run", &down_cmd)
        }
        Mode::Check => {
            let r = engine.check(w, &selection).await;
            finish(&ui, &r, &reports, &target, "check", &down_cmd)
        }
    }
}

/// The `labrun down` that undoes what this command built: the same path (its prerequisites
/// are recorded with it) and the same target options, so it opens the same ledger.
fn down_command(t: &TargetedArgs) -> String {
    let mut cmd = format!("labrun down {}", shell_word(&t.path.path.display().to_string()));
    if t.target == Target::Aws {
        cmd.push_str(" --target aws");
    }
    for (flag, value) in
        [("--endpoint", &t.endpoint), ("--region", &t.region), ("--profile", &t.profile), ("--emulator-account", &t.emulator_account)]
    {
        if let Some(v) = value {
            cmd.push_str(&format!(" {flag} {}", shell_word(v)));
        }
    }
    cmd
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(w: &str) -> String {
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// `labs/6` for a chapter numbered 6 under the addressed folder.
fn teardown_path(addressed: &Path, c: &labrun_lab::Chapter) -> String {
    match &c.number {
        Some(n) => addressed.join(n).display().to_string(),
        None => c.dir.display().to_string(),
    }
}

fn finish(
    ui: &Ui,
    r: &RunReport,
    reports: &[(report::Format, std::path::PathBuf)],
    target: &labrun_exec::TargetInfo,
    command: &str,
    down_cmd: &str,
) -> Result<(), CliError> {
    for (format, file) in reports {
        report::write_run(*format, file, r, target, command)
            .map_err(|e| CliError::Environment(format!("cannot write report {}: {e}", file.display())))?;
    }
    let count = |s: Status| r.steps().filter(|x| x.status == s).count();
    let (passed, failed, gaps, skipped) = (count(Status::Passed), count(Status::Failed), count(Status::Gap), count(Status::Skipped));
    ui.line(&format!(
        "{command}: {passed} passed, {failed} failed, {gaps} gap(s) (need real AWS), {skipped} skipped{}",
        if r.chapters.iter().any(|c| c.skipped.is_some()) {
            format!("; {} chapter(s) already in place", r.chapters.iter().filter(|c| c.skipped.is_some()).count())
        } else {
            String::new()
        }
    ));
    if r.interrupted {
        return Err(CliError::Failed(format!("interrupted; what was created is in the ledger: `{down_cmd}` removes it")));
    }
    if failed > 0 {
        let hint =
            if command == "run" { format!("; `{down_cmd}` removes what was created, prerequisites included") } else { String::new() };
        return Err(CliError::Failed(format!("{failed} step(s) failed{hint}")));
    }
    Ok(())
}

async fn test(a: cli::TestArgs) -> Result<(), CliError> {
    use futures::StreamExt;
    let reports = cli::reports(&a.report).map_err(CliError::Invalid)?;
    let shard = match &a.shard {
        None => None,
        Some(s) => {
            let parsed = s.split_once('/').and_then(|(k, n)| Some((k.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
            match parsed {
                Some((k, n)) if n > 0 && (1..=n).contains(&k) => Some((k, n)),
                _ => return Err(CliError::Invalid(format!("--shard takes K/N with 1 ≤ K ≤ N, got `{s}`"))),
            }
        }
    };
    if a.jobs == 0 {
        return Err(CliError::Invalid("--jobs must be at least 1".into()));
    }
    let sel = load(&a.path.path, DiagFormat::Human)?;
    let w = &sel.loaded.workshop;
    let endpoint = a.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    let progress = |m: &str| outln!("emulator: {m}");
    let opts = Options::managed(endpoint, &progress);
    let emu = tokio::task::block_in_place(|| emulator::resolve(&opts)).map_err(|e| CliError::Environment(e.to_string()))?;
    let chapters = labrun_harness::labtest::testable(w, &sel.chapters, shard);
    // The proxy lives as long as this command; dropping it stops it.
    let realism = match a.faults {
        None => None,
        Some(seed) => {
            let faults = match a.fault_profile {
                cli::FaultProfile::Realistic => labrun_realism::Faults::realistic(),
                cli::FaultProfile::Quick => labrun_realism::Faults::quick(),
            };
            let proxy = labrun_realism::start(&emu.endpoint, labrun_realism::Config { seed, faults, account_suffix: Some(6) })
                .map_err(|e| CliError::Environment(format!("cannot start the fault proxy: {e}")))?;
            outln!("faults: seed {seed}, proxy {} in front of {}", proxy.endpoint(), emu.endpoint);
            Some(proxy)
        }
    };
    outln!("testing {} chapter(s) on {} with {} job(s)", chapters.len(), emu.endpoint, a.jobs);
    let ledger_dir = std::env::temp_dir().join(format!("labrun-test-{}", run_id()));
    let topts = labrun_harness::labtest::TestOptions {
        endpoint: emu.endpoint.clone(),
        engine_endpoint: realism.as_ref().map(|r| r.endpoint().to_string()),
        pacing: labrun_harness::labtest::test_pacing(),
        region: a.region.clone().unwrap_or_else(|| w.region.clone()),
        // A new prefix every run; under --faults the proxy's dice read only the chapter's part.
        account_prefix: rand::random::<u32>() % 900_000 + 100_000,
        ledger_dir: ledger_dir.clone(),
    };
    let started = std::time::Instant::now();
    let quiet: Arc<dyn labrun_exec::Observer> = Arc::new(labrun_exec::Quiet);
    let mut results: Vec<labrun_harness::labtest::ChapterTest> = futures::stream::iter(chapters.iter().copied())
        .map(|i| {
            let (topts, quiet) = (&topts, quiet.clone());
            async move {
                let r = labrun_harness::labtest::test_chapter(w, i, topts, quiet).await;
                let gaps = if r.gaps.is_empty() { String::new() } else { format!(" · {} gap(s)", r.gaps.len()) };
                outln!(
                    "{} {:<8} {} ({:.1}s){gaps}",
                    if r.passed { "pass" } else { "FAIL" },
                    r.chapter,
                    r.title.trim(),
                    r.elapsed_ms as f64 / 1000.0
                );
                for f in &r.failures {
                    outln!("       {f}");
                }
                (i, r)
            }
        })
        .buffer_unordered(a.jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let order: Vec<String> = chapters.iter().map(|&i| w.chapters[i].label().to_string()).collect();
    results.sort_by_key(|r| order.iter().position(|o| *o == r.chapter));
    if results.iter().all(|r| r.passed) {
        let _ = std::fs::remove_dir_all(&ledger_dir);
    }
    outln!("\n{:<9} {:<6} {:>7}  gaps", "chapter", "result", "time");
    for r in &results {
        outln!("{:<9} {:<6} {:>6.1}s  {}", r.chapter, if r.passed { "pass" } else { "FAIL" }, r.elapsed_ms as f64 / 1000.0, r.gaps.len());
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    let gaps: usize = results.iter().map(|r| r.gaps.len()).sum();
    outln!(
        "\ntest: {} passed, {failed} failed ({gaps} gap(s) need real AWS) in {:.1}s",
        results.len() - failed,
        started.elapsed().as_secs_f64()
    );
    if let Some(r) = &realism {
        let st = r.stats();
        outln!(
            "faults injected: {} request(s), {} throttled, {} 5xx, {} reset, {} answer(s) lost after processing, {} not yet consistent, {} state(s) held back",
            st.requests,
            st.throttled,
            st.server_errors,
            st.resets,
            st.lost_responses,
            st.not_yet_consistent,
            st.rewritten_states
        );
    }
    for (format, file) in &reports {
        report::write_tests(*format, file, &results)
            .map_err(|e| CliError::Environment(format!("cannot write report {}: {e}", file.display())))?;
    }
    if failed > 0 {
        return Err(CliError::Failed(format!("{failed} chapter(s) failed; their ledgers are kept in {}", ledger_dir.display())));
    }
    Ok(())
}

fn emulator_cmd(action: EmulatorAction) -> Result<(), CliError> {
    let cache = emulator::default_cache_dir();
    match action {
        EmulatorAction::Up => {
            let progress = |m: &str| eprintln!("emulator: {m}");
            let opts = Options::managed(None, &progress);
            let e = emulator::up(&opts).map_err(|e| CliError::Environment(e.to_string()))?;
            print_emulator(&e);
            Ok(())
        }
        EmulatorAction::Down => match emulator::down(&cache, "default").map_err(|e| CliError::Environment(e.to_string()))? {
            Some(e) => {
                outln!("stopped the managed emulator at {} (pid {})", e.endpoint, e.pid.map_or("-".into(), |p| p.to_string()));
                Ok(())
            }
            None => {
                outln!("no managed emulator is running");
                Ok(())
            }
        },
        EmulatorAction::Status => {
            let given = std::env::var("AWS_ENDPOINT_URL").ok();
            if let Some(e) = given {
                outln!("source:   external (AWS_ENDPOINT_URL)\nendpoint: {e}\nanswers:  {}", emulator::healthy(&e).is_some());
                return Ok(());
            }
            if let Some(v) = emulator::healthy("http://127.0.0.1:4566") {
                outln!(
                    "source:   external (answering on the default port)\nendpoint: http://127.0.0.1:4566\nversion:  {}",
                    v.unwrap_or_default()
                );
                return Ok(());
            }
            match emulator::status(&cache, "default") {
                Some(e) => {
                    print_emulator(&e);
                    Ok(())
                }
                None => {
                    outln!("no emulator is running; `labrun emulator up` (or any run) starts one");
                    Err(CliError::Environment(String::new()))
                }
            }
        }
    }
}

fn print_emulator(e: &emulator::Emulator) {
    outln!(
        "source:   {}\nversion:  {}\nendpoint: {}\npid:      {}",
        serde_json::to_value(e.source).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        e.version.as_deref().unwrap_or("unknown"),
        e.endpoint,
        e.pid.map_or("-".into(), |p| p.to_string())
    );
    if let Some(root) = &e.root {
        outln!("files:    {}", root.display());
    }
}
