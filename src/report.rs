//! `--report json FILE` and `--report junit FILE`: machine-readable results for CI, each step
//! carrying the file:line it came from. JUnit XML is written by quick-junit (nextest's model
//! and writer): escaping, control characters and ANSI codes are its business.

use labrun_exec::{RunReport, Status, TargetInfo};
use labrun_harness::labtest::ChapterTest;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Junit,
}

/// A test case's place in the lab sources, as attributes JUnit consumers read (GitLab, Jenkins,
/// Buildkite, the GitHub test-report actions all look for `file` and `line` on `<testcase>`).
/// quick-junit writes them after `name`, `classname` and `time`.
fn set_location(case: &mut TestCase, file: &str, line: &str) {
    case.extra.insert("file".into(), file.into());
    case.extra.insert("line".into(), line.into());
}

fn seconds(ms: u128) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn write_junit(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut buf = Vec::new();
    report.serialize(&mut buf).map_err(std::io::Error::other)?;
    std::fs::write(path, buf)
}

/// One test suite per chapter, one test case per step (classname: the chapter's number).
fn run_junit(report: &RunReport) -> Report {
    let mut out = Report::new("labrun");
    let mut total = 0;
    for c in &report.chapters {
        let mut suite = TestSuite::new(format!("{} {}", c.number, c.title.trim()));
        let time: u128 = c.steps.iter().map(|s| s.elapsed_ms).sum();
        total += time;
        suite.set_time(seconds(time));
        for st in &c.steps {
            let status = match st.status {
                Status::Passed => TestCaseStatus::success(),
                Status::Failed => {
                    let detail: Vec<String> =
                        st.mismatches.iter().map(ToString::to_string).chain(st.hint.iter().map(|h| format!("hint: {h}"))).collect();
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(st.message.as_deref().unwrap_or("failed")).set_description(format!(
                        "{} at {}\n{}",
                        st.call,
                        st.location,
                        detail.join("\n")
                    ));
                    status
                }
                Status::Skipped | Status::Gap => {
                    let kind = if st.status == Status::Gap { "gap: " } else { "" };
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(format!("{kind}{}", st.message.as_deref().unwrap_or("")));
                    status
                }
            };
            let mut case = TestCase::new(st.id.as_str(), status);
            case.set_classname(c.number.as_str()).set_time(seconds(st.elapsed_ms));
            // A failed expectation points at its own key; anything else at the step.
            let at = st.mismatches.iter().find_map(|m| m.location.as_ref()).unwrap_or(&st.location);
            set_location(&mut case, &at.file.display().to_string(), &at.line.to_string());
            suite.add_test_case(case);
        }
        out.add_test_suite(suite);
    }
    out.set_time(seconds(total));
    out
}

/// One test suite, one test case per chapter tested.
fn tests_junit(tests: &[ChapterTest]) -> Report {
    let mut out = Report::new("labrun test");
    let mut suite = TestSuite::new("chapters");
    let time: u128 = tests.iter().map(|t| t.elapsed_ms).sum();
    suite.set_time(seconds(time));
    for t in tests {
        let status = if t.passed {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(t.failures.first().map_or("failed", String::as_str)).set_description(t.failures.join("\n"));
            status
        };
        let mut case = TestCase::new(format!("{} {}", t.chapter, t.title.trim()), status);
        case.set_classname("chapter").set_time(seconds(t.elapsed_ms));
        // `file:line:col`; a file name may hold colons, so split from the right.
        let (file, line) = t.location.rsplit_once(':').and_then(|(rest, _col)| rest.rsplit_once(':')).unwrap_or((&t.location, "0"));
        set_location(&mut case, file, line);
        if !t.gaps.is_empty() {
            case.set_system_out(format!("gaps (need real AWS): {}", t.gaps.join("; ")));
        }
        suite.add_test_case(case);
    }
    out.add_test_suite(suite);
    out.set_time(seconds(time));
    out
}

pub fn write_run(format: Format, path: &Path, report: &RunReport, target: &TargetInfo, command: &str) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json!({"command": command, "target": target, "report": report})).unwrap_or_default();
            s.push('\n');
            std::fs::write(path, s)
        }
        Format::Junit => write_junit(path, &run_junit(report)),
    }
}

pub fn write_tests(format: Format, path: &Path, tests: &[ChapterTest]) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json!({"command": "test", "chapters": tests})).unwrap_or_default();
            s.push('\n');
            std::fs::write(path, s)
        }
        Format::Junit => write_junit(path, &tests_junit(tests)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use labrun_exec::assert::Mismatch;
    use labrun_exec::{ChapterReport, Mode, StepReport};
    use labrun_lab::Location;

    fn step(id: &str, status: Status, message: Option<&str>, line: usize) -> StepReport {
        StepReport {
            chapter: "3.2.1".into(),
            id: id.into(),
            title: format!("Step {id}"),
            call: "ec2:DescribeVpcAttribute".into(),
            status,
            message: message.map(str::to_string),
            mismatches: Vec::new(),
            hint: None,
            location: Location { file: "labs/3-x/3.2.1-enablevpcdns/_index.md".into(), line, col: 3 },
            elapsed_ms: 1500,
            is_check: true,
        }
    }

    fn junit_of(write: impl FnOnce(&Path) -> std::io::Result<()>) -> (String, Report) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = Report::deserialize_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        (text, parsed)
    }

    fn attr<'a>(case: &'a TestCase, name: &str) -> &'a str {
        case.extra.get(name).map_or("", |v| v.as_str())
    }

    #[test]
    fn junit_of_a_run_has_a_case_per_step_with_its_place() {
        let mut failed = step("dns-hostnames-on", Status::Failed, Some("1 expectation(s) not met: <Value> & \"true\""), 31);
        failed.mismatches.push(Mismatch::new("EnableDnsHostnames.Value", "true", json!(false)));
        failed.hint = Some("VPC console → Actions → Edit VPC settings\u{1b}[1m <b>".into());
        let report = RunReport {
            chapters: vec![ChapterReport {
                number: "3.2.1".into(),
                title: " Enable DNS hostnames ".into(),
                mode: Mode::Run,
                steps: vec![
                    step("lab-vpc", Status::Passed, None, 12),
                    failed,
                    step("skipped", Status::Skipped, Some("not run in check mode"), 40),
                    step("gap", Status::Gap, Some("needs a real AWS account"), 50),
                ],
                skipped: None,
                prerequisite: false,
            }],
            interrupted: false,
        };
        let target =
            TargetInfo { kind: labrun_exec::TargetKind::Emulator, endpoint: None, account: "000000000000".into(), region: "r".into() };
        let (text, parsed) = junit_of(|p| write_run(Format::Junit, p, &report, &target, "run"));
        // What tests/cli reads (`emulator.rs`): the step's name, then its file and line.
        assert!(text.contains("name=\"dns-hostnames-on\"") && text.contains("3.2.1-enablevpcdns/_index.md\" line=\"31\""), "{text}");
        assert!(text.contains("&lt;Value&gt; &amp; &quot;true&quot;") && !text.contains("<Value>") && !text.contains('\u{1b}'), "{text}");
        assert_eq!(parsed.name.as_deref(), Some("labrun"));
        assert_eq!((parsed.tests, parsed.failures, parsed.skipped), (4, 1, 2));
        let suite = &parsed.test_suites[0];
        assert_eq!(suite.name.as_str(), "3.2.1 Enable DNS hostnames");
        assert_eq!(suite.time, Some(Duration::from_secs(6)));
        let cases = &suite.test_cases;
        assert_eq!(cases.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["lab-vpc", "dns-hostnames-on", "skipped", "gap"]);
        for (c, line) in cases.iter().zip(["12", "31", "40", "50"]) {
            assert_eq!(c.classname.as_deref(), Some("3.2.1"));
            assert_eq!((attr(c, "file"), attr(c, "line")), ("labs/3-x/3.2.1-enablevpcdns/_index.md", line));
            assert_eq!(c.time, Some(Duration::from_millis(1500)));
        }
        assert!(matches!(cases[0].status, TestCaseStatus::Success { .. }));
        let TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, message, description, .. } = &cases[1].status else {
            panic!("{:?}", cases[1].status)
        };
        assert_eq!(message.as_deref(), Some("1 expectation(s) not met: <Value> & \"true\""));
        assert_eq!(
            description.as_deref(),
            Some(
                "ec2:DescribeVpcAttribute at labs/3-x/3.2.1-enablevpcdns/_index.md:31:3\nEnableDnsHostnames.Value: expected true, found false\nhint: VPC console → Actions → Edit VPC settings <b>"
            )
        );
        let skip_message = |c: &TestCase| match &c.status {
            TestCaseStatus::Skipped { message, .. } => message.as_deref().map(str::to_string),
            other => panic!("{other:?}"),
        };
        assert_eq!(skip_message(&cases[2]).as_deref(), Some("not run in check mode"));
        assert_eq!(skip_message(&cases[3]).as_deref(), Some("gap: needs a real AWS account"));
    }

    #[test]
    fn junit_of_labrun_test_has_a_case_per_chapter_with_its_place() {
        let chapter = |n: &str, passed: bool, failures: &[&str], gaps: &[&str]| ChapterTest {
            chapter: n.into(),
            title: "Create VPC ".into(),
            account: "000000000001".into(),
            passed,
            failures: failures.iter().map(|s| s.to_string()).collect(),
            gaps: gaps.iter().map(|s| s.to_string()).collect(),
            leaked: Vec::new(),
            elapsed_ms: 2000,
            location: format!("labs/2-x/{n}-vpc/_index.md:9:1"),
        };
        let tests = [
            chapter("2.1", true, &[], &[]),
            chapter("2.2", false, &["after down: vpc vpc-1 <Lab VPC> still exists", "leaked: 1 & more"], &[]),
            chapter("3.2.3", true, &[], &["windows-session: ssm:DescribeSessions"]),
        ];
        let (text, parsed) = junit_of(|p| write_tests(Format::Junit, p, &tests));
        assert!(text.contains("<failure message=") && text.contains("vpc vpc-1 &lt;Lab VPC&gt;"), "{text}");
        assert_eq!(parsed.name.as_deref(), Some("labrun test"));
        assert_eq!((parsed.tests, parsed.failures), (3, 1));
        let cases = &parsed.test_suites[0].test_cases;
        assert_eq!(cases[1].name.as_str(), "2.2 Create VPC");
        assert_eq!(cases[1].classname.as_deref(), Some("chapter"));
        assert_eq!((attr(&cases[1], "file"), attr(&cases[1], "line")), ("labs/2-x/2.2-vpc/_index.md", "9"));
        let TestCaseStatus::NonSuccess { message, description, .. } = &cases[1].status else { panic!("{:?}", cases[1].status) };
        assert_eq!(message.as_deref(), Some("after down: vpc vpc-1 <Lab VPC> still exists"));
        assert_eq!(description.as_deref(), Some("after down: vpc vpc-1 <Lab VPC> still exists\nleaked: 1 & more"));
        assert_eq!(cases[2].system_out.as_deref(), Some("gaps (need real AWS): windows-session: ssm:DescribeSessions"));
        assert!(cases[0].system_out.is_none() && matches!(cases[0].status, TestCaseStatus::Success { .. }));
    }

    /// The command lines the kit for workshop repositories runs (kit/: the pre-commit hook, the
    /// VS Code tasks) are real labrun command lines; the hook's, run on a broken and a valid
    /// workshop, fails and passes. (The files' shapes are tested in labrun-lab's tests/kit.rs.)
    mod kit {
        use crate::cli::{self, Cli};
        use labrun_lab::yaml::{self, Node};
        use std::path::Path;

        fn repo_file(path: &str) -> String {
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        }

        fn parse(words: &[String]) -> Cli {
            let args = cli::with_implicit_run(words.iter().map(Into::into).collect());
            <Cli as clap::Parser>::try_parse_from(args)
                .unwrap_or_else(|e| panic!("`{}` is not a labrun command line: {e}", words.join(" ")))
        }

        fn hook_entry() -> Vec<String> {
            let manifest = yaml::parse(&repo_file(".pre-commit-hooks.yaml"), 0).unwrap();
            let Some(hooks) = manifest.to_json().as_array().cloned() else { panic!("the manifest is a list of hooks") };
            let hook = hooks.iter().find(|h| h["id"] == "labrun-validate").expect("a labrun-validate hook");
            hook["entry"].as_str().unwrap().split_whitespace().map(str::to_string).collect()
        }

        /// The `args` the example .pre-commit-config.yaml gives the hook.
        fn example_args() -> Vec<String> {
            let config = yaml::parse(&repo_file("kit/pre-commit/.pre-commit-config.yaml"), 0).unwrap();
            let hook = config.get("repos").map(Node::to_json).unwrap()[0]["hooks"][0].clone();
            hook["args"].as_array().into_iter().flatten().map(|a| a.as_str().unwrap().to_string()).collect()
        }

        #[test]
        fn the_pre_commit_hook_runs_labrun_validate() {
            let entry = hook_entry();
            assert_eq!(entry[0], "labrun");
            // What pre-commit runs: the entry, then the hook's args (no file names).
            let mut words = entry.clone();
            words.extend(example_args());
            assert!(matches!(parse(&words).command, cli::Command::Validate(_)), "{words:?}");
            // Run on a workshop: its folder in place of the example's.
            let run = |files: &[(&str, &str)]| {
                let dir = tempfile::tempdir().unwrap();
                for (path, text) in files {
                    let p = dir.path().join(path);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(p, text).unwrap();
                }
                let mut words = entry.clone();
                words.push(dir.path().display().to_string());
                crate::commands::run(parse(&words).command)
            };
            let page = |steps: &str| format!("---\ntitle: A\n---\n```labrun\n{steps}```\n");
            let broken = run(&[("1-a/_index.md", &page("- id: a\n  calll: sts:GetCallerIdentity\n"))]);
            assert!(matches!(broken, Err(crate::CliError::Invalid(_))), "{broken:?}");
            let valid = run(&[("1-a/_index.md", &page("- id: a\n  call: sts:GetCallerIdentity\n"))]);
            assert!(valid.is_ok(), "{valid:?}");
        }

        #[test]
        fn the_vscode_tasks_are_labrun_command_lines() {
            let tasks: serde_json::Value = serde_json::from_str(&repo_file("kit/vscode/tasks.json")).unwrap();
            let mut seen = 0;
            for t in tasks["tasks"].as_array().unwrap() {
                let lines: Vec<Vec<String>> = match t["type"].as_str() {
                    Some("process") => {
                        let mut words = vec![t["command"].as_str().unwrap().to_string()];
                        words.extend(t["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()));
                        vec![words]
                    }
                    // `labrun ... > file; labrun ... > file`: each command before its redirection.
                    _ => t["command"]
                        .as_str()
                        .unwrap()
                        .split(';')
                        .map(|c| c.split('>').next().unwrap().split_whitespace().map(str::to_string).collect())
                        .collect(),
                };
                for words in lines {
                    assert_eq!(words[0], "labrun", "{words:?}");
                    parse(&words);
                    seen += 1;
                }
            }
            assert_eq!(seen, 3);
        }
    }
}
