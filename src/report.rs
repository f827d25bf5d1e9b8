//! `--report json FILE` and `--report junit FILE`: machine-readable results for CI, each step
//! carrying the file:line it came from.

use labrun_exec::{RunReport, Status, TargetInfo};
use labrun_harness::labtest::ChapterTest;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Junit,
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

pub fn write_run(format: Format, path: &Path, report: &RunReport, target: &TargetInfo, command: &str) -> std::io::Result<()> {
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json!({"command": command, "target": target, "report": report})).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Junit => {
            let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"labrun\">\n");
            for c in &report.chapters {
                let failures = c.steps.iter().filter(|s| s.status == Status::Failed).count();
                let skipped = c.steps.iter().filter(|s| matches!(s.status, Status::Skipped | Status::Gap)).count();
                let time: u128 = c.steps.iter().map(|s| s.elapsed_ms).sum();
                let _ = writeln!(
                    s,
                    "  <testsuite name=\"{} {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
                    xml(&c.number),
                    xml(c.title.trim()),
                    c.steps.len(),
                    time as f64 / 1000.0
                );
                for st in &c.steps {
                    let _ = write!(
                        s,
                        "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                        xml(&c.number),
                        xml(&st.id),
                        xml(&st.location.file.display().to_string()),
                        st.location.line,
                        st.elapsed_ms as f64 / 1000.0
                    );
                    match st.status {
                        Status::Passed => s.push_str("/>\n"),
                        Status::Failed => {
                            let detail: Vec<String> =
                                st.mismatches.iter().map(ToString::to_string).chain(st.hint.iter().map(|h| format!("hint: {h}"))).collect();
                            let _ = write!(
                                s,
                                ">\n      <failure message=\"{}\">{} at {}\n{}</failure>\n    </testcase>\n",
                                xml(st.message.as_deref().unwrap_or("failed")),
                                xml(&st.call),
                                xml(&st.location.to_string()),
                                xml(&detail.join("\n"))
                            );
                        }
                        Status::Skipped | Status::Gap => {
                            let kind = if st.status == Status::Gap { "gap: " } else { "" };
                            let _ = write!(
                                s,
                                ">\n      <skipped message=\"{kind}{}\"/>\n    </testcase>\n",
                                xml(st.message.as_deref().unwrap_or(""))
                            );
                        }
                    }
                }
                s.push_str("  </testsuite>\n");
            }
            s.push_str("</testsuites>\n");
            s
        }
    };
    std::fs::write(path, text)
}

pub fn write_tests(format: Format, path: &Path, tests: &[ChapterTest]) -> std::io::Result<()> {
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json!({"command": "test", "chapters": tests})).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Junit => {
            let failures = tests.iter().filter(|t| !t.passed).count();
            let time: u128 = tests.iter().map(|t| t.elapsed_ms).sum();
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"labrun test\">\n  <testsuite name=\"chapters\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
                tests.len(),
                time as f64 / 1000.0
            );
            for t in tests {
                let (file, line) = t.location.rsplit_once(':').and_then(|(rest, _col)| rest.rsplit_once(':')).unwrap_or((&t.location, "0"));
                let _ = write!(
                    s,
                    "    <testcase classname=\"chapter\" name=\"{} {}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                    xml(&t.chapter),
                    xml(t.title.trim()),
                    xml(file),
                    xml(line),
                    t.elapsed_ms as f64 / 1000.0
                );
                if t.passed && t.gaps.is_empty() {
                    s.push_str("/>\n");
                    continue;
                }
                s.push_str(">\n");
                if !t.passed {
                    let _ = writeln!(
                        s,
                        "      <failure message=\"{}\">{}</failure>",
                        xml(t.failures.first().map_or("failed", String::as_str)),
                        xml(&t.failures.join("\n"))
                    );
                }
                if !t.gaps.is_empty() {
                    let _ = writeln!(s, "      <system-out>gaps (need real AWS): {}</system-out>", xml(&t.gaps.join("; ")));
                }
                s.push_str("    </testcase>\n");
            }
            s.push_str("  </testsuite>\n</testsuites>\n");
            s
        }
    };
    std::fs::write(path, text)
}
