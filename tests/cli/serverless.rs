//! The second example workshop, `examples/serverless-notes/` (DynamoDB, Lambda, API Gateway),
//! called through operations taken from the service models: it validates clean, and `labrun
//! test` gives exactly the outcome the emulator allows.
//!
//! Every chapter passes on the emulator labrun manages (LocalStack on the host serves DynamoDB
//! through moto; in a container, through its own provider). The steps that need Lambda's
//! runtime are gaps: the function becoming Active, an invocation, the note it writes, a request
//! through the API. Never passes.

use crate::common::*;
use serde_json::Value;
use std::path::Path;

/// A private copy of the example, so ledgers and reports stay out of the source tree.
fn example_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                copy(&path, &to.join(entry.file_name()));
            } else {
                std::fs::copy(&path, to.join(entry.file_name())).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&repo().join("examples/serverless-notes"), &dir.path().join("serverless-notes"));
    dir
}

#[test]
fn the_serverless_example_validates_clean() {
    let r = run(labrun().current_dir(repo()).args(["validate", "examples/serverless-notes", "--format", "short"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("examples/serverless-notes valid: 11 chapter(s), 56 step(s)"), "{}", r.stdout);
    assert!(r.stderr.trim().is_empty(), "warnings: {}", r.stderr);
}

#[test]
fn labrun_test_gives_the_serverless_example_the_outcome_its_emulator_allows() {
    let dir = example_copy();
    let endpoint = endpoint();
    let mut c = labrun();
    // A failed `labrun test` keeps its ledgers under the temporary directory: keep them in ours.
    c.current_dir(dir.path()).env("TMPDIR", dir.path());
    c.args(["test", "serverless-notes", "--jobs", "2", "--endpoint", &endpoint, "--report", "json", "test.json"]);
    let r = run(&mut c);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("test.json")).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}", r.all()));
    let chapters = report["chapters"].as_array().unwrap_or_else(|| panic!("{report}"));
    let text = |v: &Value| v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>();
    // Every chapter with steps is tested, in order: the table, the role, the function, the API
    // in three parts and the teardown. Chapters 1, 3 and 4 only hold prose.
    let labels: Vec<&str> = chapters.iter().map(|c| c["chapter"].as_str().unwrap_or("")).collect();
    assert_eq!(labels, ["2", "3.1", "3.2", "4.1", "4.2", "4.3", "5"], "{}", r.all());

    let passed: Vec<(&str, bool)> =
        chapters.iter().map(|c| (c["chapter"].as_str().unwrap_or(""), c["passed"].as_bool().unwrap_or(false))).collect();
    assert_eq!(passed, ["2", "3.1", "3.2", "4.1", "4.2", "4.3", "5"].map(|c| (c, true)), "{}", r.all());
    // What an emulator without a Lambda runtime cannot do is a gap, never a pass.
    let gaps: Vec<String> = chapters
        .iter()
        .flat_map(|c| {
            let label = c["chapter"].as_str().unwrap_or("").to_string();
            text(&c["gaps"]).into_iter().map(move |g| format!("{label} {g}"))
        })
        .collect();
    let why = "(needs a real AWS account: the step is marked `requires: [real-aws]`)";
    let expected: Vec<String> =
        ["3.2 function-active", "3.2 invoke", "3.2 note-written", "4.3 post-a-note"].iter().map(|g| format!("{g} {why}")).collect();
    assert_eq!(gaps, expected, "{}", r.all());
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("test: 7 passed, 0 failed (4 gap(s) need real AWS)"), "{}", r.stdout);
}
