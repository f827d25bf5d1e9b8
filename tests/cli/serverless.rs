//! The second example workshop, `examples/serverless-notes/` (DynamoDB, Lambda, API Gateway),
//! called through operations taken from the service models: it validates clean, and `labrun
//! test` gives exactly the outcome the emulator allows.
//!
//! What the test emulator can run decides that outcome:
//!
//! - With DynamoDB (LocalStack in a container, or `LABRUN_TEST_ENDPOINT` at one that has it),
//!   every chapter passes, and the steps that need Lambda's runtime are gaps: the function
//!   becoming Active, an invocation, the note it writes, a request through the API.
//! - LocalStack on the host has no DynamoDB (left out of its `SERVICES`: it cannot load there,
//!   see docs/architecture.md), and labrun reports a service the emulator lacks as a failure
//!   ("not supported by this target"), not as a gap. Chapter 2 then fails on its first call and
//!   every other chapter on its prerequisite 2: the example fails there, it never passes.

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
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

/// Whether the emulator says it does not run DynamoDB: LocalStack's health answer lists each
/// service; one it was not started with is `disabled`. Anything else (another emulator, no
/// health endpoint) is taken to run it.
fn emulator_lacks_dynamodb(endpoint: &str) -> bool {
    let Some(host) = endpoint.strip_prefix("http://").map(|h| h.trim_end_matches('/')) else { return false };
    let Ok(mut s) = std::net::TcpStream::connect(host) else { return false };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    if write!(s, "GET /_localstack/health HTTP/1.0\r\nHost: {host}\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str::<Value>(body).is_ok_and(|v| matches!(v["services"]["dynamodb"].as_str(), Some("disabled") | None))
        && body.contains("\"services\"")
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

    if emulator_lacks_dynamodb(&endpoint) {
        assert_eq!(r.code, 1, "{}", r.all());
        let unsupported = "dynamodb:CreateTable is not supported by this target: Service 'dynamodb' is not enabled";
        for c in chapters {
            let (label, failures) = (c["chapter"].as_str().unwrap_or(""), text(&c["failures"]));
            assert_eq!(c["passed"], false, "{label} passed without DynamoDB: {}", r.all());
            assert!(text(&c["gaps"]).is_empty(), "{label}: {}", r.all());
            let expected = if label == "2" {
                format!("run: step create-table failed at serverless-notes/2-notes-table/_index.md:18:3: {unsupported}")
            } else {
                format!("prerequisite 2 failed (create-table: {unsupported}")
            };
            assert!(failures.first().is_some_and(|f| f.starts_with(&expected)), "{label}: {failures:?}");
            // Nothing else went wrong: no leak, no failing cleanup (the table was never made).
            assert_eq!(failures.len(), 1, "{label}: {failures:?}");
        }
        assert!(r.stdout.contains("test: 0 passed, 7 failed (0 gap(s) need real AWS)"), "{}", r.stdout);
        return;
    }

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
