//! The kit for workshop repositories: the VS Code task's problem matcher reads what
//! `labrun validate --format short` prints, the YAML settings point at the schemas labrun
//! writes, and the pre-commit hook runs on the files labrun reads. (That the hook's and the
//! task's commands are real labrun command lines, and run, is tested beside the CLI, in
//! src/report.rs.)

use labrun_lab::diag::{Diagnostic, Severity, SourceFile};
use labrun_lab::yaml::{self, Kind, Node, Span};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not plain JSON: {e}"))
}

fn tasks() -> Vec<Value> {
    read_json("kit/vscode/tasks.json")["tasks"].as_array().unwrap().clone()
}

fn task(label: &str) -> Value {
    tasks().into_iter().find(|t| t["label"] == label).unwrap_or_else(|| panic!("no task `{label}`"))
}

/// A workshop with problems in a page, a lab.yaml and workshop.yaml, and a path with a space
/// and a non-ASCII character.
fn broken_workshop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("workshop.yaml", "workshop: x\nregoin: us-east-1\n"),
        (
            "1-a/_index.md",
            "---\ntitle: \"A\"\n---\nProse.\n\n```labrun\n- id: a\n  calll: ec2:DescribeVpcs\n- id: b\n  call: ec2:DescribeVpcs\n  with: { VpcIds: vpc-1 }\n```\n",
        ),
        ("2-b/lab.yaml", "titel: B\nsteps:\n  - id: c\n    call: ec2:DescribeVpcs\n    expect: { \"length(Vpcs)\": { lenght: 1 } }\n"),
        ("3-c tạo/_index.md", "---\ntitle: C\nlabrun:\n  requires: [\"9\"]\n---\n"),
    ];
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// The problem matcher's regexp, compiled with regex-lite (the pattern keeps to what both it
/// and JavaScript, VS Code's engine, read the same way).
fn matcher() -> (regex_lite::Regex, Value) {
    let t = task("labrun: validate");
    let m = &t["problemMatcher"];
    assert_eq!(m["owner"], "labrun");
    assert_eq!(m["fileLocation"][0], "autoDetect", "paths are relative to the folder labrun runs in, or absolute");
    let pattern = m["pattern"].clone();
    let re = pattern["regexp"].as_str().unwrap();
    // Nothing JavaScript reads differently or not at all: named groups, inline flags, \A \z,
    // possessive or atomic groups, Unicode classes.
    for js_unsafe in ["(?P<", "(?<", "(?i", "(?m", "(?s", "(?x", "(?u", "\\A", "\\z", "\\Z", "(?>", "++", "*+", "\\p{", "\\h"] {
        assert!(!re.contains(js_unsafe), "`{js_unsafe}` in {re}");
    }
    (regex_lite::Regex::new(re).unwrap(), pattern)
}

fn group<'a>(caps: &regex_lite::Captures<'a>, pattern: &Value, name: &str) -> &'a str {
    let i = pattern[name].as_u64().unwrap_or_else(|| panic!("the matcher has no `{name}` group")) as usize;
    caps.get(i).map_or("", |m| m.as_str())
}

/// Each line `labrun validate --format short` prints for a diagnostic with a place
/// (`Diagnostic::one_line`, which the CLI prints as is) gives the problem matcher the file,
/// line, column, severity, code and message.
#[test]
fn the_problem_matcher_reads_validate_short_output() {
    let (re, pattern) = matcher();
    let dir = broken_workshop();
    let loaded = labrun_lab::load(dir.path()).unwrap();
    let mut placed: Vec<Diagnostic> = loaded.diagnostics.iter().filter(|d| d.location().is_some()).cloned().collect();
    assert!(placed.len() >= 6, "{:#?}", loaded.diagnostics);
    // No warning of today's has a place (the symlink ones name folders); one as they would be.
    let source = SourceFile::new(dir.path().join("1-a/_index.md"), std::fs::read_to_string(dir.path().join("1-a/_index.md")).unwrap());
    placed
        .push(Diagnostic::error("labrun::some-warning", "a warning").at(&source, Span::new(40, 41), "here").with_help("a help").warning());
    let mut severities = std::collections::HashSet::new();
    for d in &placed {
        let line = d.one_line();
        let caps = re.captures(&line).unwrap_or_else(|| panic!("the matcher misses: {line}"));
        let loc = d.location().unwrap();
        assert_eq!(group(&caps, &pattern, "file"), loc.file.display().to_string(), "{line}");
        assert_eq!(group(&caps, &pattern, "line"), loc.line.to_string(), "{line}");
        assert_eq!(group(&caps, &pattern, "column"), loc.col.to_string(), "{line}");
        let severity = group(&caps, &pattern, "severity");
        assert_eq!(severity, if d.severity == Severity::Error { "error" } else { "warning" }, "{line}");
        severities.insert(severity.to_string());
        assert_eq!(group(&caps, &pattern, "code"), d.code, "{line}");
        let message = group(&caps, &pattern, "message");
        assert!(message.starts_with(&d.message), "{line}");
        if let Some(help) = &d.help {
            assert!(message.ends_with(&format!("(help: {help})")), "{line}");
        }
    }
    assert_eq!(severities.len(), 2, "{severities:?}");
    // A Windows path, a message holding `file:1:2: error[x]: ...` itself, and the summary line
    // (no place: not a problem in a file).
    let caps = re.captures(r"C:\w\labs\1-a\_index.md:7:3: error[labrun::unknown-field]: unknown step field `calll`").unwrap();
    assert_eq!(group(&caps, &pattern, "file"), r"C:\w\labs\1-a\_index.md");
    let caps = re.captures("a.md:1:2: warning[labrun::x]: see b.md:3:4: error[labrun::y]: z").unwrap();
    assert_eq!((group(&caps, &pattern, "file"), group(&caps, &pattern, "message")), ("a.md", "see b.md:3:4: error[labrun::y]: z"));
    assert!(re.captures("labrun: 4 error(s) in the lab sources; nothing was run").is_none());
    assert!(re.captures("error[labrun::too-deep]: `x` is nested more than 32 folders deep").is_none());
}

#[test]
fn the_validate_task_runs_labrun_validate_short() {
    let t = task("labrun: validate");
    assert_eq!(t["command"], "labrun");
    let args: Vec<&str> = t["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args[0], "validate");
    assert!(args.windows(2).any(|w| w == ["--format", "short"]), "{args:?}");
}

/// settings.json points the YAML extension's `yaml.schemas` at the files the schema task
/// writes, for lab.yaml and workshop.yaml.
#[test]
fn yaml_settings_point_at_the_schemas_labrun_writes() {
    let settings = read_json("kit/vscode/settings.json");
    let schemas = settings["yaml.schemas"].as_object().unwrap();
    let write = task("labrun: write editor schemas");
    let command = write["command"].as_str().unwrap();
    let mut globs = Vec::new();
    for (file, patterns) in schemas {
        let file = file.trim_start_matches("./");
        let written = if file.ends_with("workshop-schema.json") { "labrun schema workshop > " } else { "labrun schema > " };
        assert!(command.contains(&format!("{written}{file}")), "`{file}` is not what `{command}` writes");
        globs.extend(patterns.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()));
    }
    globs.sort();
    assert_eq!(globs, ["**/lab.yaml", "**/workshop.yaml"]);
    // The committed copies are what those commands print.
    assert_eq!(std::fs::read_to_string(repo().join("docs/lab-schema.json")).unwrap(), labrun_lab::schema::schema_text());
    assert_eq!(std::fs::read_to_string(repo().join("docs/workshop-schema.json")).unwrap(), labrun_lab::schema::workshop_schema_text());
}

fn parse_yaml(path: &str) -> Node {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml::parse(&text, 0).unwrap_or_else(|e| panic!("{path}: {}", e.message))
}

fn items(node: &Node) -> &[Node] {
    match &node.kind {
        Kind::Seq(items) => items,
        _ => panic!("expected a list, found {}", node.type_name()),
    }
}

fn string<'a>(node: &'a Node, key: &str) -> &'a str {
    node.get(key).and_then(Node::as_str).unwrap_or_else(|| panic!("no string `{key}`"))
}

/// `.pre-commit-hooks.yaml` (pre-commit's manifest): a `labrun-validate` hook with the keys
/// pre-commit requires, validating the whole workshop once, on the files labrun reads.
#[test]
fn the_pre_commit_hook_is_well_formed() {
    let manifest = parse_yaml(".pre-commit-hooks.yaml");
    let hooks = items(&manifest);
    let hook = hooks.iter().find(|h| h.get("id").and_then(Node::as_str) == Some("labrun-validate")).expect("a labrun-validate hook");
    for key in ["id", "name", "entry", "language"] {
        string(hook, key);
    }
    const KEYS: &[&str] = &[
        "id",
        "name",
        "entry",
        "language",
        "files",
        "exclude",
        "types",
        "types_or",
        "exclude_types",
        "always_run",
        "fail_fast",
        "verbose",
        "pass_filenames",
        "require_serial",
        "description",
        "language_version",
        "minimum_pre_commit_version",
        "args",
        "stages",
        "additional_dependencies",
        "log_file",
    ];
    for (k, _) in hook.as_map().unwrap() {
        assert!(KEYS.contains(&k.key_text().as_str()), "pre-commit has no hook key `{}`", k.key_text());
    }
    assert_eq!(string(hook, "entry"), "labrun validate --format short");
    assert!(["system", "rust"].contains(&string(hook, "language")));
    assert_eq!(hook.get("pass_filenames").map(|n| &n.kind), Some(&Kind::Bool(false)), "labrun validates a whole workshop");
    // pre-commit matches `files` with Python's re.search; this pattern reads the same in both.
    let files = regex_lite::Regex::new(string(hook, "files")).unwrap();
    for path in
        ["labs/3-x/3.2-y/_index.md", "labs/3-x/_index.vi.md", "_index.md", "labs/2-b/lab.yaml", "labs/workshop.yaml", "workshop.yaml"]
    {
        assert!(files.is_match(path), "{path}");
    }
    for path in ["README.md", "labs/3-x/notes.md", "labs/mylab.yaml", "labs/lab.yml", "docs/_index.md.bak", "labs/_index/x.png"] {
        assert!(!files.is_match(path), "{path}");
    }
}

/// The example config uses the hook by its id, from a repository at a revision.
#[test]
fn the_pre_commit_example_uses_the_hook() {
    let config = parse_yaml("kit/pre-commit/.pre-commit-config.yaml");
    let manifest = parse_yaml(".pre-commit-hooks.yaml");
    let ids: Vec<&str> = items(&manifest).iter().map(|h| string(h, "id")).collect();
    let repos = items(config.get("repos").unwrap());
    let mut used = 0;
    for r in repos {
        string(r, "repo");
        string(r, "rev");
        for h in items(r.get("hooks").unwrap()) {
            assert!(ids.contains(&string(h, "id")), "{}", string(h, "id"));
            used += 1;
        }
    }
    assert!(used > 0);
}
