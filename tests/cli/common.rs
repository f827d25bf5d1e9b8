use labrun_aws::{AwsBackend, Connect};
use labrun_exec::Backend;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn labrun() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_labrun"));
    c.env_remove("AWS_ENDPOINT_URL").env_remove("AWS_PROFILE").env("NO_COLOR", "1").env("CI", "true");
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let Output { status, stdout, stderr } = cmd.output().expect("labrun runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into(),
        stderr: String::from_utf8_lossy(&stderr).into(),
    }
}

/// A private copy of the workshop, so ledgers and edits stay out of the source tree.
pub fn labs_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("labs"), &dir.path().join("labs"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// A fresh 12-digit account on the emulator for one test.
pub fn account() -> String {
    format!("{:012}", 100_000_000_000u64 + rand::random::<u64>() % 800_000_000_000)
}

pub fn endpoint() -> String {
    labrun_harness::emulator::for_tests().endpoint.clone()
}

/// `labrun <args> --endpoint E --emulator-account A --plain` in `dir`.
pub fn on_emulator(dir: &Path, account: &str, args: &[&str]) -> Run {
    let mut c = labrun();
    c.current_dir(dir).args(args).args(["--endpoint", &endpoint(), "--emulator-account", account, "--plain"]);
    run(&mut c)
}

/// A backend in the same account, for calls "behind labrun's back".
pub async fn direct(account: &str) -> Arc<dyn Backend> {
    let b = AwsBackend::connect(Connect::emulator(&endpoint(), "ap-southeast-1", Some(account))).await.unwrap();
    Arc::new(b)
}

pub async fn call(b: &Arc<dyn Backend>, op: &str, params: Value) -> Value {
    let o = labrun_lab::catalog::operation(op).unwrap();
    b.call(o, &params).await.unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// Ids of the steps that failed, from `--plain` output.
pub fn failed_steps(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("✘ FAIL  "))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}
