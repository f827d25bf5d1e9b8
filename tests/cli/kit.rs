//! The kit for workshop repositories: the workflow (`kit/workflows/labrun.yml`), the GitHub
//! Action (`action.yml`), `docker-compose.yml`, the release packaging and `install.sh`.
//!
//! The workflow's commands are read out of its YAML and run here on the seed workshop, and the
//! LocalStack it and docker-compose.yml start must be the one labrun pins, so none of them can
//! drift from labrun. (What needs GitHub itself, the runner and its service containers, cannot
//! run here; .ci/run lints those files with jactionlint.)

use crate::common::{endpoint, labrun, labs_copy, repo, run};
use labrun_harness::emulator::LOCALSTACK_IMAGE;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A YAML file of the repository as JSON, parsed by labrun's own YAML reader.
fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    labrun_lab::yaml::parse(&text, 0).unwrap_or_else(|e| panic!("{rel}: {}", e.message)).to_json()
}

/// labrun-harness's SERVICES (private to the crate), read from its source.
fn harness_services() -> String {
    let src = std::fs::read_to_string(repo().join("crates/labrun-harness/src/emulator.rs")).unwrap();
    let line = src.lines().find(|l| l.starts_with("const SERVICES: &str = \"")).expect("SERVICES in emulator.rs");
    let value = line.trim_start_matches("const SERVICES: &str = \"").trim_end_matches("\";");
    assert!(!value.is_empty() && !value.contains('"'), "{line}");
    value.to_string()
}

const WORKFLOW: &str = "kit/workflows/labrun.yml";
const HEALTH: &str = "curl -fsS http://localhost:4566/_localstack/health";

#[test]
fn the_workflows_localstack_is_the_one_labrun_pins() {
    let wf = yaml(WORKFLOW);
    let ls = &wf["jobs"]["test"]["services"]["localstack"];
    assert_eq!(ls["image"], LOCALSTACK_IMAGE);
    assert_eq!(ls["env"]["SERVICES"], harness_services().as_str());
    assert_eq!(ls["ports"], serde_json::json!(["127.0.0.1:4566:4566"]), "loopback only");
    let options = ls["options"].as_str().unwrap();
    assert!(options.contains(&format!("--health-cmd \"{HEALTH}\"")), "{options}");
}

#[test]
fn docker_compose_starts_the_localstack_labrun_pins() {
    let dc = yaml("docker-compose.yml");
    let ls = &dc["services"]["localstack"];
    assert_eq!(ls["image"], LOCALSTACK_IMAGE);
    assert_eq!(ls["environment"]["SERVICES"], harness_services().as_str());
    assert_eq!(ls["ports"], serde_json::json!(["127.0.0.1:4566:4566"]), "loopback only");
    let test: Vec<&str> = ls["healthcheck"]["test"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(test[0], "CMD");
    assert_eq!(test[1..].join(" "), HEALTH);
    // The README says `--wait`, which needs the health check.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("docker compose up -d --wait"));
    assert!(!readme.contains("docker compose up -d`") && !readme.contains("docker compose up -d &&"));
}

/// Every `uses:` of a workflow's or the action's steps.
fn uses(steps: &[&Value]) -> Vec<String> {
    steps.iter().flat_map(|s| s.as_array().unwrap()).filter_map(|s| s["uses"].as_str()).map(str::to_string).collect()
}

#[test]
fn the_workflow_installs_this_release_with_the_action() {
    let version = env!("CARGO_PKG_VERSION");
    let wf = yaml(WORKFLOW);
    let jobs = wf["jobs"].as_object().unwrap();
    for (name, job) in jobs {
        let u = uses(&[&job["steps"]]);
        assert!(u.contains(&format!("OWNER/labrun@v{version}")), "{name}: {u:?}");
    }
    // The action installs, by default, the release it belongs to (`uses: ...@vX.Y.Z`).
    let action = yaml("action.yml");
    assert_eq!(action["inputs"]["version"]["default"], version);
    assert_eq!(action["inputs"]["repository"]["default"], repository());
    assert_eq!(action["runs"]["using"], "composite");
    let steps = action["runs"]["steps"].as_array().unwrap();
    for s in steps {
        assert!(s.get("uses").is_some() || s.get("shell").is_some(), "a composite run step needs `shell`: {s}");
    }
    let cache = steps.iter().find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/cache@"))).expect("actions/cache");
    assert!(cache["with"]["key"].as_str().unwrap().contains("${{ inputs.version }}"), "{cache}");
    let download = steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains("install.sh"))).expect("runs install.sh");
    assert_eq!(download["if"], "steps.cache.outputs.cache-hit != 'true'");
    assert_eq!(download["env"]["LABRUN_INSTALL_DIR"], cache["with"]["path"]);
    // The action checks `labrun --version` says exactly this.
    let r = run(labrun().arg("--version"));
    assert_eq!(r.stdout.trim(), format!("labrun {version}"));
    // Third-party actions are pinned to a major version.
    let release = yaml(".github/workflows/release.yml");
    let mut all = uses(&jobs.values().map(|j| &j["steps"]).collect::<Vec<_>>());
    all.extend(uses(&[&action["runs"]["steps"]]));
    all.extend(uses(&release["jobs"].as_object().unwrap().values().map(|j| &j["steps"]).collect::<Vec<_>>()));
    for u in all.iter().filter(|u| !u.starts_with("OWNER/labrun@") && !u.starts_with("dtolnay/rust-toolchain@")) {
        let major = u.split_once("@v").map(|(_, v)| v).unwrap_or("");
        assert!(!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()), "{u}: pin a major version (@vN)");
    }
}

/// The `run:` of the one step of `job` whose command starts with `prefix`.
fn run_line(wf: &Value, job: &str, prefix: &str) -> String {
    let steps = wf["jobs"][job]["steps"].as_array().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).filter(|r| r.starts_with(prefix)).collect();
    assert_eq!(runs.len(), 1, "{job}: one `{prefix}` step: {runs:?}");
    assert!(!runs[0].trim().contains('\n'), "one command: {}", runs[0]);
    runs[0].trim().to_string()
}

/// The words of a workflow's command as bash would pass them: `${{ expr }}` from `exprs`,
/// `$NAME` from the workflow's `env`, double quotes removed. Anything else is refused, so a
/// change to the workflow that this cannot follow fails here rather than going untested.
fn words(wf: &Value, command: &str, exprs: &[(&str, String)]) -> Vec<String> {
    let mut line = command.to_string();
    for (expr, value) in exprs {
        line = line.replace(&format!("${{{{ {expr} }}}}"), value);
    }
    assert!(!line.contains("${{"), "an expression this test does not know: {line}");
    line.split_whitespace()
        .map(|w| {
            let w = w.trim_matches('"');
            assert!(!w.contains(['\'', '"', '\\', '`', '*', '?', ';', '|', '&']), "{w}");
            match w.strip_prefix('$') {
                Some(name) => wf["env"][name].as_str().unwrap_or_else(|| panic!("${name} is not in the workflow's env")).to_string(),
                None => w.to_string(),
            }
        })
        .collect()
}

#[test]
fn the_workflows_validate_passes_the_seed_workshop_and_annotates_a_broken_chapter() {
    let wf = yaml(WORKFLOW);
    let args = words(&wf, &run_line(&wf, "validate", "labrun validate"), &[]);
    assert_eq!(args[..4], ["labrun", "validate", "--format", "github"], "{args:?}");
    assert_eq!(args.len(), 5, "{args:?}");
    let labs = labs_copy();
    let r = run(labrun().current_dir(labs.path()).args(&args[1..]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stdout.contains("::error"), "{}", r.stdout);

    // A misspelt operation: an error annotation at its line, with a file GitHub can place.
    let rel = "labs/3-Accessibilitytoinstances/3.2-Private-instance/3.2.1-enablevpcdns/_index.md";
    let page = labs.path().join(rel);
    let text = std::fs::read_to_string(&page).unwrap();
    let line = 1 + text.lines().position(|l| l.contains("call: ec2:ModifyVpcAttribute")).expect("the step is there");
    std::fs::write(&page, text.replacen("call: ec2:ModifyVpcAttribute", "call: ec2:ModifyVpcAtribute", 1)).unwrap();
    let r = run(labrun().current_dir(labs.path()).args(&args[1..]));
    assert_eq!(r.code, 2, "{}", r.all());
    let errors: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("::error ")).collect();
    assert!(!errors.is_empty(), "{}", r.all());
    for e in &errors {
        let (props, message) = e["::error ".len()..].split_once("::").unwrap_or_else(|| panic!("{e}"));
        assert!(!message.is_empty(), "{e}");
        let props: Vec<(&str, &str)> = props.split(',').map(|p| p.split_once('=').unwrap_or_else(|| panic!("{e}"))).collect();
        let keys: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["file", "line", "col", "title"], "{e}");
        assert!(props[1].1.parse::<u32>().unwrap() > 0 && props[2].1.parse::<u32>().unwrap() > 0, "{e}");
        assert!(props[3].1.starts_with("labrun%3A%3A"), "the code, `:` escaped: {e}");
    }
    let at = format!("::error file={rel},line={line},");
    assert!(errors.iter().any(|e| e.starts_with(&at) && e.contains("ModifyVpcAtribute")), "expected {at}…\n{}", r.stdout);
}

/// Test-case names of a JUnit file (`labrun test`: one per chapter, "NUMBER TITLE").
fn testcases(junit: &str) -> Vec<String> {
    junit.split("<testcase name=\"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_string()).collect()
}

#[test]
fn the_workflows_test_matrix_passes_every_chapter_of_the_seed_workshop_once() {
    let wf = yaml(WORKFLOW);
    let shards: Vec<String> = wf["jobs"]["test"]["strategy"]["matrix"]["shard"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    assert!(!shards.is_empty());
    let command = run_line(&wf, "test", "labrun test");
    let labs = labs_copy();
    let expected: Vec<String> = {
        let sel = labrun_lab::select(&labs.path().join(&wf["env"]["LABS"].as_str().unwrap())).unwrap();
        let w = &sel.loaded.workshop;
        labrun_harness::labtest::testable(w, &sel.chapters, None).iter().map(|&i| w.chapters[i].label().to_string()).collect()
    };
    let mut seen = Vec::new();
    for shard in &shards {
        let exprs = [("matrix.shard", shard.clone()), ("strategy.job-total", shards.len().to_string())];
        let mut args = words(&wf, &command, &exprs);
        assert_eq!(args[0], "labrun");
        // The service container answers on 4566 there; here, the tests' shared LocalStack.
        let e = args.iter().position(|a| a == "--endpoint").expect("--endpoint");
        assert_eq!(args[e + 1], "http://127.0.0.1:4566");
        args[e + 1] = endpoint();
        let j = args.iter().position(|a| a == "--report").expect("--report");
        assert_eq!(args[j + 1..j + 3], ["junit", "labrun-junit.xml"]);
        assert!(args.windows(2).any(|w| w[0] == "--shard" && w[1] == format!("{shard}/{}", shards.len())), "{args:?}");

        let r = run(labrun().current_dir(labs.path()).args(&args[1..]));
        assert_eq!(r.code, 0, "shard {shard}: {}", r.all());
        let junit = std::fs::read_to_string(labs.path().join("labrun-junit.xml")).unwrap();
        let cases = testcases(&junit);
        assert!(!cases.is_empty(), "shard {shard}: {junit}");
        assert!(!junit.contains("<failure") && !junit.contains("<error"), "shard {shard}: {junit}");
        seen.extend(cases);
        std::fs::remove_file(labs.path().join("labrun-junit.xml")).unwrap();
    }
    // Together the shards test each chapter exactly once.
    let mut labels: Vec<String> = seen.iter().map(|c| c.split(' ').next().unwrap().to_string()).collect();
    labels.sort();
    let mut expected = expected;
    expected.sort();
    assert_eq!(labels, expected, "{seen:#?}");
}

/// `repository` of the workspace's Cargo.toml: the one place it names the repository.
fn repository() -> String {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let line = manifest.lines().find(|l| l.starts_with("repository = \"")).expect("repository in Cargo.toml");
    line.trim_start_matches("repository = \"").trim_end_matches('"').to_string()
}

/// cargo-binstall's template `key` for `target`, rendered as binstall does.
fn binstall(key: &str, target: &str, version: &str) -> String {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let section = |name: &str| {
        let start = manifest.find(&format!("\n{name}\n"))?;
        let body = &manifest[start + name.len() + 2..];
        Some(body[..body.find("\n[").unwrap_or(body.len())].to_string())
    };
    let value = |body: Option<String>| {
        body?.lines().find_map(|l| l.strip_prefix(&format!("{key} = \"")).map(|v| v.trim_end_matches('"').to_string()))
    };
    let template = value(section(&format!("[package.metadata.binstall.overrides.{target}]")))
        .or_else(|| value(section("[package.metadata.binstall]")))
        .unwrap_or_else(|| panic!("{key} in [package.metadata.binstall]"));
    let exe = if target.contains("windows") { ".exe" } else { "" };
    template
        .replace("{ repo }", &repository())
        .replace("{ name }", "labrun")
        .replace("{ bin }", "labrun")
        .replace("{ version }", version)
        .replace("{ target }", target)
        .replace("{ binary-ext }", exe)
}

fn sh(script: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg(repo().join(script)).args(args);
    c
}

#[test]
fn install_sh_installs_what_the_release_packs_and_refuses_a_bad_checksum() {
    let version = env!("CARGO_PKG_VERSION");
    let targets = [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
        "x86_64-pc-windows-msvc",
    ];
    // The release workflow builds exactly these, and binstall's names are the packager's.
    let release = std::fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    for t in targets {
        assert!(release.contains(&format!("target: {t},")), "release.yml builds {t}");
        let ext = if t.contains("windows") { "zip" } else { "tar.gz" };
        let exe = if t.contains("windows") { ".exe" } else { "" };
        let name = format!("labrun-{version}-{t}");
        assert_eq!(binstall("pkg-url", t, version), format!("{}/releases/download/v{version}/{name}.{ext}", repository()));
        assert_eq!(binstall("bin-dir", t, version), format!("{name}/labrun{exe}"));
    }
    assert!(
        std::fs::read_to_string(repo().join("install.sh"))
            .unwrap()
            .contains(&format!("LABRUN_REPO=\"${{LABRUN_REPO:-{}}}\"", repository())),
        "install.sh names the repository Cargo.toml does"
    );

    // A release of a stand-in binary, served from a directory as the releases page would be.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("labrun");
    std::fs::write(&fake, format!("#!/bin/sh\necho 'labrun {version}'\n")).unwrap();
    let target = "x86_64-unknown-linux-gnu";
    let releases = dir.path().join(format!("releases/download/v{version}"));
    let r = run(&mut sh(".github/scripts/package-release.sh", &[version, target, fake.to_str().unwrap(), releases.to_str().unwrap()]));
    assert_eq!(r.code, 0, "{}", r.all());
    let archive = releases.join(format!("labrun-{version}-{target}.tar.gz"));
    let sum = std::fs::read_to_string(releases.join(format!("labrun-{version}-{target}.tar.gz.sha256"))).unwrap();
    assert!(sum.ends_with(&format!("  labrun-{version}-{target}.tar.gz\n")), "sha256sum's format: {sum}");

    let install = |bin: &Path| {
        let mut c = sh("install.sh", &[]);
        c.env("LABRUN_REPO", format!("file://{}", dir.path().display()))
            .env("LABRUN_VERSION", format!("v{version}"))
            .env("LABRUN_TARGET", target)
            .env("LABRUN_INSTALL_DIR", bin);
        run(&mut c)
    };
    let bin = dir.path().join("bin");
    let r = install(&bin);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("sha256 verified"), "{}", r.stderr);
    let installed = bin.join("labrun");
    let r = run(&mut Command::new(&installed).arg("--version"));
    assert_eq!(r.stdout.trim(), format!("labrun {version}"));

    // A different archive under the same name: refused, nothing installed.
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.push(0);
    std::fs::write(&archive, bytes).unwrap();
    let other = dir.path().join("other-bin");
    let r = install(&other);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    assert!(!other.join("labrun").exists());
}
