//! labrun: executable, verifiable cloud workshops. The CLI owns output and exit codes; the
//! crates under crates/ do the work and never print.

/// `println!` that ends the process quietly when standard output is a closed pipe
/// (`labrun list labs/ | head -1`) instead of panicking.
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($t)*)))
    };
}
/// `print!` with the same closed-pipe rule as `outln!`.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::write_out(format_args!($($t)*))
    };
}

mod cli;
mod commands;
mod report;
mod ui;

use std::process::ExitCode;

/// Everything that ends a command early, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A step or check failed (details already printed).
    #[error("{0}")]
    Failed(String),
    /// The lab definition or the command line is wrong.
    #[error("{0}")]
    Invalid(String),
    /// No emulator, no credentials, a refused account, network.
    #[error("{0}")]
    Environment(String),
}

impl CliError {
    fn code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Invalid(_) => 2,
            CliError::Environment(_) => 3,
        }
    }
}

/// Writes to standard output; a reader that went away (a closed pipe) ends labrun with exit
/// code 0, as it would have for a reader that read everything.
pub fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `-q`, default, `-v`, `-vv` as `tracing` filters, unless RUST_LOG says otherwise.
fn log_directives(out: &ui::Output) -> &'static str {
    match (out.quiet, out.verbose) {
        (true, _) => "error",
        (false, 0) => "error,labrun=warn",
        (false, 1) => "warn,labrun=info",
        // The SDK's own events: endpoint and credential-provider resolution, each attempt.
        _ => "warn,labrun=debug,aws_config=debug,aws_runtime=debug,aws_smithy_runtime=debug,aws_smithy_runtime_api=debug",
    }
}

/// Events go to standard error; labrun's own output stays on standard output.
fn init_logging(out: &ui::Output) -> Result<(), String> {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::prelude::*;
    let rust_log = std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty());
    let filter = match &rust_log {
        Some(d) => EnvFilter::builder().parse(d).map_err(|e| format!("RUST_LOG=`{d}`: {e}"))?,
        None => EnvFilter::new(log_directives(out)),
    };
    let detailed = rust_log.is_some() || out.verbose >= 2;
    let fmt = tracing_subscriber::fmt::layer().with_writer(ui::LogWriter).with_ansi(out.color_err);
    let fmt = if detailed { fmt.with_timer(tracing_subscriber::fmt::time::uptime()).boxed() } else { fmt.event_format(Brief).boxed() };
    // Never past debug, whatever RUST_LOG asks: at trace the SDK logs whole requests and
    // responses (session tokens in headers, secrets in bodies), which labrun's masking never sees.
    tracing_subscriber::registry().with(fmt).with(filter).with(LevelFilter::DEBUG).try_init().map_err(|e| e.to_string())
}

/// Events as a person reads them at the default level and with -v: `labrun: warning: …`,
/// `labrun: error: …`, and progress (`… step waiting (poll 2): …`) as it is.
struct Brief;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Brief
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use anstyle::AnsiColor;
        let level = *event.metadata().level();
        let word = match level {
            tracing::Level::ERROR => Some(("error", AnsiColor::Red)),
            tracing::Level::WARN => Some(("warning", AnsiColor::Yellow)),
            _ => None,
        };
        if let Some((word, colour)) = word {
            write!(writer, "labrun: {}: ", ui::paint(writer.has_ansi_escapes(), colour.on_default().bold(), word))?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn main() -> ExitCode {
    let args = cli::with_implicit_run(std::env::args_os().collect());
    // Before parsing, so that clap's help and usage errors follow --color / LABRUN_COLOR too.
    ui::clap_color(cli::color_from_args(&args));
    let parsed = match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let out = ui::Output::decide(&parsed.output);
    out.install(parsed.output.color);
    if let Err(e) = init_logging(&out) {
        eprintln!("labrun: {e}");
        return ExitCode::from(2);
    }
    match commands::run(parsed.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = e.to_string();
            if !text.is_empty() {
                eprintln!("labrun: {text}");
            }
            ExitCode::from(e.code())
        }
    }
}
