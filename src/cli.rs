//! Command-line arguments.

use crate::report::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "labrun",
    version,
    about = "Run, check and clean up cloud workshops written as Hugo pages",
    long_about = "labrun turns workshop chapters (Hugo pages with ```labrun blocks, or lab.yaml) into executable, \
                  verifiable labs. `labrun labs/3.2` builds chapter 3.2 on the emulator; `labrun check labs/3.2` \
                  checks work done by hand; `labrun down labs/3.2` removes what labrun created.",
    after_help = "Exit codes: 0 passed, 1 a step or check failed, 2 the lab or the command line is wrong, 3 the environment failed.\n\
                  A bare path runs it: `labrun labs/3.2` is `labrun run labs/3.2`."
)]
pub struct Cli {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Output options, the same on every command (`labrun test --plain`, `labrun validate -q`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Colour: `auto` colours a terminal unless NO_COLOR is set or CLICOLOR=0 (CLICOLOR_FORCE=1
    /// forces it); `always` and `never` override all of them
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, env = "LABRUN_COLOR")]
    pub color: ColorWhen,
    /// Only errors and the final summary
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on standard error: -v retries and polls as they happen, -vv debug events
    /// including the AWS SDK's (RUST_LOG, if set, chooses instead; at most debug level)
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Plain lines instead of progress spinners (also when CI is set or output is not a terminal)
    #[arg(long, global = true)]
    pub plain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a chapter and its sub-chapters, prerequisites first
    Run(RunArgs),
    /// Read-only: check what exists against a chapter's expectations (learner mode)
    Check(TargetedArgs),
    /// Undo what labrun created for these chapters, newest first, then sweep by tag
    Down(TargetedArgs),
    /// Print every call with its rendered parameters and the AWS CLI equivalent; calls nothing
    Plan(PlanArgs),
    /// Static checks of lab sources, with file:line:col diagnostics; calls nothing
    Validate(ValidateArgs),
    /// Show the chapter tree: numbers, titles (EN/VI), step counts
    List(PathArg),
    /// Test chapters on the emulator: checks fail → run → checks pass → down → checks fail → no leaks
    Test(TestArgs),
    /// Manage the LocalStack emulator labrun uses
    Emulator {
        #[command(subcommand)]
        action: EmulatorAction,
    },
    /// Print the JSON Schema of a lab block, for editors
    #[command(long_about = "Print the JSON Schema of a lab block, for editors (yaml-language-server, VS Code).\n\n\
        Without an argument: the curated operations with their parameters, and any other operation of the \
        embedded AWS service models accepted by name (the committed docs/lab-schema.json). With a service \
        (`labrun schema lambda`): every operation of that service with its parameters. With an operation \
        (`labrun schema lambda:CreateFunction`): that one. A schema of every operation of every service \
        would be about 7 MB, so it is asked for one service at a time.")]
    Schema(SchemaArgs),
    /// Print a shell completion script: `labrun completions bash > ~/.local/share/bash-completion/completions/labrun`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `labrun man | man -l -`
    Man {
        /// A command's own page instead (`labrun man run`)
        command: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// A service (`lambda`, `ec2`) or one operation (`lambda:CreateFunction`)
    #[arg(value_name = "SERVICE|SERVICE:ACTION")]
    pub selector: Option<String>,
}

#[derive(Debug, Args)]
pub struct PathArg {
    /// Workshop or chapter: a directory (labs/, labs/3-x/3.2-y) or a chapter number under one (labs/3.2)
    #[arg(default_value = "labs")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// `human`: with source snippets; `short`: one line per problem; `github`: GitHub Actions
    /// annotations (`::error file=…,line=…,col=…,title=CODE::MESSAGE`) on standard output
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    pub format: DiagFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    Human,
    Short,
    Github,
}

/// Variables: `--var` and `--var-file`, wherever a chapter is rendered.
#[derive(Debug, Args)]
pub struct VarArgs {
    /// Override a variable: --var key=value (repeatable; wins over --var-file)
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Variables from a YAML or JSON mapping (repeatable; a later file wins over an earlier one)
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

/// `--report`, the same on every command that produces results (run, check, down, test).
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write a report: --report json FILE or --report junit FILE (repeatable; FILE is
    /// overwritten, relative to the working directory)
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"], action = clap::ArgAction::Append)]
    pub report: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub path: PathArg,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Region used in rendered calls (default: AWS_REGION, then the workshop's)
    #[arg(long, env = "LABRUN_REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// LocalStack (given, found, or started by labrun)
    Emulator,
    /// A real AWS account: needs an allow-listed account and confirmation
    Aws,
}

#[derive(Debug, Args)]
pub struct TargetedArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// Where calls go
    #[arg(long, value_enum, default_value_t = Target::Emulator, env = "LABRUN_TARGET")]
    pub target: Target,
    /// Emulator endpoint URL (default: AWS_ENDPOINT_URL, then 127.0.0.1:4566, then a LocalStack labrun starts)
    #[arg(long, env = "LABRUN_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Region (default: AWS_REGION, the profile's, then the workshop's)
    #[arg(long, env = "LABRUN_REGION")]
    pub region: Option<String>,
    /// AWS profile for --target aws (default: AWS_PROFILE)
    #[arg(long, env = "LABRUN_PROFILE")]
    pub profile: Option<String>,
    /// Allow this AWS account id for --target aws, in addition to workshop.yaml's `accounts` (repeatable)
    #[arg(long = "account", value_name = "ID")]
    pub accounts: Vec<String>,
    /// Emulator account: a 12-digit id used as the access key (LocalStack isolates by it)
    #[arg(long, value_name = "ID")]
    pub emulator_account: Option<String>,
    /// Do not ask for confirmation before changing a real AWS account
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub vars: VarArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub t: TargetedArgs,
    /// Run selected chapters even when their checks already pass
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub path: PathArg,
    /// Chapters tested at once
    #[arg(long, short, default_value_t = 2, env = "LABRUN_JOBS")]
    pub jobs: usize,
    /// Test only shard K of N (1-based), e.g. --shard 1/2, to split chapters across CI machines
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Emulator endpoint URL (default as for `run`)
    #[arg(long, env = "LABRUN_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Region (default: AWS_REGION, then the workshop's)
    #[arg(long, env = "LABRUN_REGION")]
    pub region: Option<String>,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Test under real-AWS conditions: a proxy between labrun and the emulator injects
    /// throttling, 5xx, latency, resets, lost answers and eventual consistency, reproducibly
    /// from SEED (a number)
    #[arg(long, value_name = "SEED")]
    pub faults: Option<u64>,
    /// How hard --faults pushes: `realistic` (latency 20–150 ms, consistency windows of seconds)
    /// or `quick` (the same faults with short delays, for CI)
    #[arg(long, value_enum, default_value_t = FaultProfile::Realistic, requires = "faults")]
    pub fault_profile: FaultProfile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FaultProfile {
    Realistic,
    Quick,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorAction {
    /// Start the managed LocalStack (installing it on first use) and print its endpoint
    Up,
    /// Stop the LocalStack labrun started (never one it did not start)
    Down,
    /// Show the emulator labrun would use: source, version, endpoint, process id
    Status,
}

pub const SUBCOMMANDS: &[&str] =
    &["run", "check", "down", "plan", "validate", "list", "test", "emulator", "schema", "completions", "man", "help"];

/// Global options that take a value as the next word (`--color never`).
const GLOBAL_WITH_VALUE: &[&str] = &["--color"];

/// `labrun labs/3.2` means `labrun run labs/3.2`; so does `labrun -q --color never labs/3.2`
/// (global output options may come first).
pub fn with_implicit_run(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while let Some(word) = args.get(i).and_then(|a| a.to_str()) {
        if GLOBAL_WITH_VALUE.contains(&word) {
            i += 2;
        } else if word.starts_with('-') {
            i += 1;
        } else {
            if !SUBCOMMANDS.contains(&word) {
                args.insert(i, "run".into());
            }
            break;
        }
    }
    args
}

/// The `--color` choice before clap has parsed anything, so that clap's own help and errors
/// follow it too (the last `--color` wins, as clap does; else LABRUN_COLOR).
pub fn color_from_args(args: &[std::ffi::OsString]) -> ColorWhen {
    let mut value = std::env::var("LABRUN_COLOR").ok();
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        } else if word == "--color" {
            value = words.next().map(str::to_string);
        } else if let Some(v) = word.strip_prefix("--color=") {
            value = Some(v.to_string());
        }
    }
    value.and_then(|v| ColorWhen::from_str(&v, true).ok()).unwrap_or(ColorWhen::Auto)
}

/// Parses `--report FORMAT FILE` pairs.
pub fn reports(values: &[String]) -> Result<Vec<(Format, PathBuf)>, String> {
    values
        .chunks(2)
        .map(|pair| {
            let format =
                Format::from_str(&pair[0], true).map_err(|_| format!("unknown report format `{}` (use json or junit)", pair[0]))?;
            Ok((format, PathBuf::from(pair.get(1).cloned().unwrap_or_default())))
        })
        .collect()
}
