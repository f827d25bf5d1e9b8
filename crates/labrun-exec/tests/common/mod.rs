//! What the engine's test binaries share: a one-chapter workshop written to a temp folder, and
//! a pacing fast enough for an in-memory cloud.

use labrun_exec::Pacing;
use std::time::Duration;

/// A workshop (`workshop_yaml`) with one chapter `1-x` whose `lab.yaml` is `lab_yaml`; it must
/// load without diagnostics.
pub fn chapter_in(workshop_yaml: &str, lab_yaml: &str) -> (tempfile::TempDir, labrun_lab::Workshop) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workshop.yaml"), workshop_yaml).unwrap();
    std::fs::create_dir_all(dir.path().join("1-x")).unwrap();
    std::fs::write(dir.path().join("1-x/lab.yaml"), lab_yaml).unwrap();
    let loaded = labrun_lab::load(dir.path()).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{}", labrun_lab::diag::render_plain(&loaded.diagnostics));
    (dir, loaded.workshop)
}

/// Milliseconds where real AWS needs seconds; `attempts` bounds transient retries.
pub fn fast_pacing(attempts: u32) -> Pacing {
    Pacing {
        poll_interval: Duration::from_millis(5),
        poll_max_interval: Duration::from_millis(10),
        default_timeout: Duration::from_millis(300),
        retry_base: Duration::from_millis(1),
        retry_max_delay: Duration::from_millis(5),
        consistency_patience: Duration::from_millis(200),
        dependency_patience: Duration::from_millis(50),
        attempts,
    }
}
