//! One function per command: load, connect, drive the engine, print, map to an exit code.

use crate::CliError;
use crate::cli::{self, Command, DiagFormat, EmulatorAction, Target, TargetedArgs, VarArgs};
use crate::report;
use crate::ui::{self, Ui};
use labrun_aws::{AwsBackend, Connect, TargetKind};
use labrun_exec::{Backend, DownReport, Engine, Ledger, RunReport, Status, TargetInfo};
use labrun_harness::emulator::{self, Options};
use labrun_lab::diag::{Diagnostic, Severity, render_plain};
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
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut <cli::Cli as clap::CommandFactory>::command(), "labrun", &mut buf);
            out!("{}", String::from_utf8_lossy(&buf));
            Ok(())
        }
        Command::Man { command } => man(command.as_deref()),
    }
}

/// `labrun man`: the roff page of labrun, or of one command (`labrun man run`).
fn man(command: Option<&str>) -> Result<(), CliError> {
    let mut cmd = <cli::Cli as clap::CommandFactory>::command();
    // Built, so that a command's page lists the global options and says `labrun run`.
    cmd.build();
    let page = match command {
        None => cmd,
        Some(name) => {
            let sub = cmd.find_subcommand(name).filter(|c| c.get_name() != "help").cloned().ok_or_else(|| {
                let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).filter(|n| *n != "help").collect();
                CliError::Invalid(format!("no command `{name}` (one of {})", names.join(", ")))
            })?;
            // The page is named labrun-run(1), as git's are; a process prints one page, so the
            // leaked name is a few bytes once.
            let title: &'static str = Box::leak(format!("labrun-{name}").into_boxed_str());
            sub.name(title).version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf).map_err(|e| CliError::Environment(format!("cannot render the man page: {e}")))?;
    out!("{}", String::from_utf8_lossy(&buf));
    Ok(())
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
    // `-q`: errors only.
    let quiet = ui::output().quiet;
    let kept: Vec<Diagnostic> = diags.iter().filter(|d| !quiet || d.is_error()).cloned().collect();
    let diags = &kept[..];
    match format {
        DiagFormat::Short => {
            for d in diags {
                eprintln!("{}", d.one_line());
            }
        }
        // Workflow commands are read from standard output.
        DiagFormat::Github => {
            for d in diags {
                outln!("{}", github_annotation(d));
            }
        }
        DiagFormat::Human => {
            // miette follows --color like everything else (its own default looks at the
            // terminal and NO_COLOR only).
            if ui::output().color_err {
                let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode());
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

/// One GitHub Actions workflow command: `::error file=PATH,line=L,col=C,title=CODE::MESSAGE`
/// (`::warning` for a warning), escaped as GitHub documents: `%`, CR and LF in the message;
/// those and `:` and `,` in the properties.
fn github_annotation(d: &Diagnostic) -> String {
    fn data(s: &str) -> String {
        s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
    }
    fn property(s: &str) -> String {
        data(s).replace(':', "%3A").replace(',', "%2C")
    }
    let command = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut props = Vec::new();
    if let Some(l) = d.location() {
        props.push(format!("file={}", property(&l.file.display().to_string())));
        props.push(format!("line={}", l.line));
        props.push(format!("col={}", l.col));
    }
    props.push(format!("title={}", property(d.code)));
    let help = d.help.as_ref().map(|h| format!(" (help: {h})")).unwrap_or_default();
    format!("::{command} {}::{}", props.join(","), data(&format!("{}{help}", d.message)))
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

fn parse_vars(args: &VarArgs, w: &Workshop, sel: &Selection) -> Result<Map<String, Value>, CliError> {
    let mut known: std::collections::HashSet<&String> = w.vars.keys().collect();
    for &i in &sel.chapters {
        known.extend(w.chapters[i].vars.keys());
    }
    for i in labrun_lab::prerequisites(w, &sel.chapters) {
        known.extend(w.chapters[i].vars.keys());
    }
    let did_you_mean = |k: &str| {
        let names: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
        labrun_lab::catalog::did_you_mean(k, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    };
    let mut out = Map::new();
    // Files in order, a later one winning; then --var over all of them. As with Terraform's
    // -var-file, a name the chapters do not use is a warning (one file may serve many
    // chapters), while a --var typed for this command must name a variable.
    for file in &args.var_files {
        for (k, v) in var_file(file)? {
            if known.contains(&k) {
                out.insert(k, v);
            } else {
                tracing::warn!("--var-file {}: `{k}` is not a variable of these chapters{}; ignored", file.display(), did_you_mean(&k));
            }
        }
    }
    for item in &args.vars {
        let (k, v) = item.split_once('=').ok_or_else(|| CliError::Invalid(format!("--var takes KEY=VALUE, got `{item}`")))?;
        if !known.contains(&k.to_string()) {
            return Err(CliError::Invalid(format!("--var {k}: no such variable in these chapters{}", did_you_mean(k))));
        }
        // Numbers, booleans and JSON lists pass as such; anything else is a string.
        let value = serde_json::from_str(v).ok().filter(|v: &Value| !v.is_string()).unwrap_or_else(|| Value::String(v.to_string()));
        out.insert(k.to_string(), value);
    }
    // Names only: a value may be a secret.
    tracing::debug!(names = ?out.keys().collect::<Vec<_>>(), "variables set on the command line");
    Ok(out)
}

/// A `--var-file`: a YAML (or JSON, which is YAML) mapping of variable names to values,
/// parsed like lab files (YAML 1.2 core, duplicate keys refused, the same size limits).
fn var_file(path: &Path) -> Result<Map<String, Value>, CliError> {
    let bad = |why: String| CliError::Invalid(format!("--var-file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => bad("no such file".into()),
        _ => bad(format!("cannot read it: {e}")),
    })?;
    let source = labrun_lab::SourceFile::new(path, text);
    let at = |offset: usize, why: &str| {
        let (line, col) = source.line_col(offset);
        CliError::Invalid(format!("--var-file {}:{line}:{col}: {why}", path.display()))
    };
    let root = labrun_lab::yaml::parse(&source.text, 0).map_err(|e| at(e.span.start, &e.message))?;
    let mut vars = Map::new();
    match &root.kind {
        labrun_lab::yaml::Kind::Null => {}
        labrun_lab::yaml::Kind::Map(entries) => {
            for (k, v) in entries {
                let name = k.as_str().ok_or_else(|| at(k.span.start, &format!("a variable name is text, found {}", k.type_name())))?;
                vars.insert(name.to_string(), v.to_json());
            }
        }
        _ => return Err(at(root.span.start, &format!("expected a mapping of variable names to values, found {}", root.type_name()))),
    }
    Ok(vars)
}

fn plan(a: cli::PlanArgs) -> Result<(), CliError> {
    let sel = load(&a.path.path, DiagFormat::Human)?;
    let w = &sel.loaded.workshop;
    let vars = parse_vars(&a.vars, w, &sel)?;
    // As `run` resolves it: --region or LABRUN_REGION, AWS_REGION, AWS_DEFAULT_REGION, the workshop's.
    let region = a
        .region
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| w.region.clone());
    tracing::debug!(%region, "plan");
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
                return Err(CliError::Invalid("--target aws with --endpoint (or LABRUN_ENDPOINT): refusing, as the two disagree".into()));
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
    let reports = cli::reports(&t.report.report).map_err(CliError::Invalid)?;
    let sel = load(&t.path.path, DiagFormat::Human)?;
    let w = &sel.loaded.workshop;
    let vars = parse_vars(&t.vars, w, &sel)?;
    // Names and places only: never a credential.
    tracing::debug!(
        target_kind = ?t.target,
        endpoint = ?t.endpoint,
        region = ?t.region,
        profile = ?t.profile,
        emulator_account = ?t.emulator_account,
        "settings"
    );
    let ui = Arc::new(Ui::new());
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
    if let Some(l) = &ledger {
        tracing::debug!(ledger = %l.path().display(), "ledger");
    }
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
                ui.line(&format!("  {} swept by tag: {s}", ui.paint(ui::status_style(Status::Passed), "✔")));
            }
            for (format, file) in &reports {
                write_down_report(*format, file, &r, &target)
                    .map_err(|e| CliError::Environment(format!("cannot write report {}: {e}", file.display())))?;
            }
            ui.summary(&format!("down: {} change(s) undone, {} swept by tag", r.undone, r.swept.len()));
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
                    ui.summary(&format!("  {} {e}", ui.paint(ui::status_style(Status::Failed), "✘")));
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

/// `labrun down --report`: the same envelope as a run's JSON report (`command`, `target`,
/// `report`); in JUnit, suite `down` with a case for the ledger replay (failed if interrupted),
/// one per resource swept by tag and one failed case per resource that could not be removed.
// Belongs beside write_run in report.rs (same writer, quick-junit); kept here while that file
// has another owner.
fn write_down_report(format: report::Format, path: &Path, r: &DownReport, target: &TargetInfo) -> std::io::Result<()> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let text = match format {
        report::Format::Json => {
            let mut s =
                serde_json::to_string_pretty(&serde_json::json!({"command": "down", "target": target, "report": r})).unwrap_or_default();
            s.push('\n');
            s
        }
        report::Format::Junit => {
            let failed = |message: &str| {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(message);
                status
            };
            let mut suite = TestSuite::new("down");
            let replay = if r.interrupted { failed("interrupted") } else { TestCaseStatus::success() };
            suite.add_test_case(TestCase::new(format!("ledger: {} change(s) undone", r.undone), replay));
            for swept in &r.swept {
                suite.add_test_case(TestCase::new(format!("swept by tag: {swept}"), TestCaseStatus::success()));
            }
            for (i, e) in r.errors.iter().enumerate() {
                suite.add_test_case(TestCase::new(format!("not removed {}", i + 1), failed(e)));
            }
            let mut report = Report::new("labrun");
            report.add_test_suite(suite);
            report.to_string().map_err(std::io::Error::other)?
        }
    };
    std::fs::write(path, text)
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
    ui.summary(&format!(
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
    let reports = cli::reports(&a.report.report).map_err(CliError::Invalid)?;
    let quiet = ui::output().quiet;
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
    let progress = |m: &str| {
        if !quiet {
            outln!("emulator: {m}");
        }
    };
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
            if !quiet {
                outln!("faults: seed {seed}, proxy {} in front of {}", proxy.endpoint(), emu.endpoint);
            }
            Some(proxy)
        }
    };
    if !quiet {
        outln!("testing {} chapter(s) on {} with {} job(s)", chapters.len(), emu.endpoint, a.jobs);
    }
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
    let silent: Arc<dyn labrun_exec::Observer> = Arc::new(labrun_exec::Quiet);
    let mut results: Vec<labrun_harness::labtest::ChapterTest> = futures::stream::iter(chapters.iter().copied())
        .map(|i| {
            let (topts, silent) = (&topts, silent.clone());
            async move {
                let r = labrun_harness::labtest::test_chapter(w, i, topts, silent).await;
                let gaps = if r.gaps.is_empty() { String::new() } else { format!(" · {} gap(s)", r.gaps.len()) };
                // `-q` keeps the failures.
                if quiet && r.passed {
                    return (i, r);
                }
                outln!("{} {:<8} {} ({:.1}s){gaps}", result_word(r.passed, 0), r.chapter, r.title.trim(), r.elapsed_ms as f64 / 1000.0);
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
    if !quiet {
        outln!("\n{:<9} {:<6} {:>7}  gaps", "chapter", "result", "time");
        for r in &results {
            outln!("{:<9} {} {:>6.1}s  {}", r.chapter, result_word(r.passed, 6), r.elapsed_ms as f64 / 1000.0, r.gaps.len());
        }
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    let gaps: usize = results.iter().map(|r| r.gaps.len()).sum();
    outln!(
        "{}test: {} passed, {failed} failed ({gaps} gap(s) need real AWS) in {:.1}s",
        if quiet { "" } else { "\n" },
        results.len() - failed,
        started.elapsed().as_secs_f64()
    );
    if let Some(r) = &realism
        && !quiet
    {
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

/// `pass` or `FAIL` for a chapter's result, padded to `width` (before it is painted, so that
/// columns stay aligned), coloured when standard output takes colour.
fn result_word(passed: bool, width: usize) -> String {
    let (status, word) = if passed { (Status::Passed, "pass") } else { (Status::Failed, "FAIL") };
    ui::paint(ui::output().color_out, ui::status_style(status), &format!("{word:<width$}"))
}

fn emulator_cmd(action: EmulatorAction) -> Result<(), CliError> {
    let cache = emulator::default_cache_dir();
    match action {
        EmulatorAction::Up => {
            let progress = |m: &str| {
                if !ui::output().quiet {
                    eprintln!("emulator: {m}");
                }
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use labrun_lab::yaml::Span;

    #[test]
    fn github_annotations_escape_data_and_properties() {
        let file = labrun_lab::SourceFile::new("labs/a,b:c.md", "x: 1\ny: 2\n");
        let d = Diagnostic::error("labrun::odd", "100% sure\r\nsecond line").at(&file, Span::new(7, 8), "here");
        assert_eq!(
            github_annotation(&d),
            "::error file=labs/a%2Cb%3Ac.md,line=2,col=3,title=labrun%3A%3Aodd::100%25 sure%0D%0Asecond line"
        );
        let w = Diagnostic::error("labrun::w", "no place").with_help("do this").warning();
        assert_eq!(github_annotation(&w), "::warning title=labrun%3A%3Aw::no place (help: do this)");
    }
}
