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

fn main() -> ExitCode {
    let args = cli::with_implicit_run(std::env::args_os().collect());
    let parsed = match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
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
