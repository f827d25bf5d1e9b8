//! Commands that call nothing: validate, list, plan, schema, and argument errors.

use crate::common::*;

#[test]
fn version_and_help() {
    let r = run(labrun().arg("--version"));
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("labrun "), "{}", r.stdout);
    let r = run(labrun().arg("--help"));
    assert_eq!(r.code, 0);
    for word in ["run", "check", "down", "plan", "validate", "list", "test", "emulator", "schema", "Exit codes"] {
        assert!(r.stdout.contains(word), "help lacks {word}");
    }
}

#[test]
fn validate_the_workshop() {
    let r = run(labrun().current_dir(repo()).args(["validate", "labs/"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("labs/ valid: 27 chapter(s)"), "{}", r.stdout);
}

#[test]
fn validate_reports_every_problem_with_file_line_col_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("1-a")).unwrap();
    std::fs::write(
        dir.path().join("1-a/_index.md"),
        "---\ntitle: A\n---\n```labrun\n- id: a\n  call: ec2:CreateVcp\n- id: b\n  call: ec2:DescribeVpcs\n  timeout: 5 minutes\n```\n",
    )
    .unwrap();
    let r = run(labrun().current_dir(dir.path()).args(["validate", ".", "--format", "short"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("1-a/_index.md:6:9: error[labrun::unknown-operation]"), "{}", r.stderr);
    assert!(r.stderr.contains("1-a/_index.md:9:12: error[labrun::bad-duration]"), "{}", r.stderr);
    // The graphical form shows the source line too.
    let r = run(labrun().current_dir(dir.path()).args(["validate", "."]));
    assert!(r.stderr.contains("call: ec2:CreateVcp") && r.stderr.contains("did you mean `ec2:CreateVpc`?"), "{}", r.stderr);
}

#[test]
fn list_shows_numbers_titles_in_both_languages_and_step_counts() {
    let r = run(labrun().current_dir(repo()).args(["list", "labs/3.2"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("3.2 ") && lines[0].contains("Connect to Private instance / Tạo kết nối đến máy chủ EC2 Private"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("3.2.1    Enable DNS hostnames / Kích hoạt DNS hostnames  (4 steps)"), "{}", r.stdout);
    assert_eq!(lines.len(), 7, "3.2 and its six sub-chapters:\n{}", r.stdout);
}

#[test]
fn plan_renders_calls_as_aws_cli_commands_with_placeholders() {
    let r = run(labrun().current_dir(repo()).args(["plan", "labs/3.2.2.1", "--region", "us-east-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("# prerequisites, run first where their checks fail: 2, 2.1, 2.1.1"), "{}", r.stdout);
    assert!(
        r.stdout.contains("aws ec2 create-vpc-endpoint --vpc-id '<steps.lab-vpc.id>' --service-name com.amazonaws.us-east-1.ssm --vpc-endpoint-type Interface"),
        "{}",
        r.stdout
    );
    let r = run(labrun().current_dir(repo()).args(["plan", "labs/2.1.1", "--var", "vpc_cidr=10.20.0.0/16"]));
    assert!(r.stdout.contains("aws ec2 create-vpc --cidr-block 10.20.0.0/16"), "{}", r.stdout);
}

#[test]
fn schema_matches_the_committed_copy() {
    let r = run(labrun().arg("schema"));
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, std::fs::read_to_string(repo().join("docs/lab-schema.json")).unwrap());
}

#[test]
fn schema_of_one_service_or_operation() {
    let r = run(labrun().args(["schema", "lambda"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"lambda:CreateFunction\"") && r.stdout.contains("\"FunctionName\""));
    let r = run(labrun().args(["schema", "dynamodb:Query"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"KeyConditionExpression\"") && !r.stdout.contains("\"dynamodb:Scan\""));
    let r = run(labrun().args(["schema", "lamda"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `lambda`?"), "{}", r.stderr);
}

#[test]
fn wrong_arguments_exit_2_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["plan", "labs/3.9"], "no chapter numbered 3.9"),
        (&["plan", "labs/2.1.1", "--var", "vpc_cdir=1"], "did you mean `vpc_cidr`?"),
        (&["plan", "labs/2.1.1", "--var", "novalue"], "--var takes KEY=VALUE"),
        (&["check", "labs/2.1.1", "--report", "xml", "out.xml"], "unknown report format `xml`"),
        (&["test", "labs/", "--shard", "3/2"], "--shard takes K/N"),
        (&["validate", "nowhere/"], "nowhere/: no such file or directory"),
        (&["frobnicate", "--x"], "unexpected argument"),
    ];
    for (args, needle) in cases {
        let r = run(labrun().current_dir(repo()).args(*args));
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        assert!(r.all().contains(needle), "{args:?}: expected `{needle}` in {}", r.all());
    }
}

#[test]
fn an_unreachable_endpoint_is_an_environment_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = run(labrun().current_dir(repo()).args(["check", "labs/2.1.1", "--endpoint", &format!("http://127.0.0.1:{port}")]));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("does not answer"), "{}", r.stderr);
}

#[test]
fn real_aws_with_an_emulator_endpoint_set_is_refused() {
    let r = run(labrun().current_dir(repo()).env("AWS_ENDPOINT_URL", "http://127.0.0.1:1").args(["run", "labs/2.1.1", "--target", "aws"]));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("refusing --target aws while AWS_ENDPOINT_URL is set"), "{}", r.stderr);
    // A per-service variable would send only EC2 elsewhere while the header says "AWS".
    let r = run(labrun().current_dir(repo()).env("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:1").args([
        "check",
        "labs/2.1.1",
        "--target",
        "aws",
    ]));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("AWS_ENDPOINT_URL_EC2 is set: calls would not go to AWS"), "{}", r.stderr);
    let r = run(labrun().current_dir(repo()).args(["run", "labs/2.1.1", "--target", "aws", "--endpoint", "http://127.0.0.1:1"]));
    assert_eq!(r.code, 2, "{}", r.all());
}

/// `labrun list labs/ | head -1`: the reader goes away; labrun ends quietly, no panic.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::Read;
    let mut child = labrun()
        .current_dir(repo())
        .args(["list", "labs/"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_bare_path_means_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(labrun().current_dir(dir.path()).args(["labs/3.2"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("labs/3.2: no such file or directory"), "{}", r.stderr);
}

/// Sources built to exhaust memory, the stack or time: each is refused at its place, exit 2.
#[test]
fn hostile_sources_are_refused_at_their_place_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // Billion laughs: nine levels of nine aliases.
    let mut bomb = "---\ntitle: A\n---\n```labrun\n- id: a\n  call: ec2:DescribeVpcs\n  with:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        bomb += &format!("    {name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", "));
    }
    write("1-a/_index.md", &(bomb + "```\n"));
    // Two thousand nested parentheses overflow the jmespath crate's parser on any usual stack.
    write(
        "2-b/lab.yaml",
        &format!("- id: a\n  call: ec2:DescribeVpcs\n  outputs: {{ id: \"{}Vpcs{}\" }}\n", "(".repeat(2000), ")".repeat(2000)),
    );
    write("3-c/_index.md", "---\ntitle: C\n---\n```labrun\n- id: a\n  call: ec2:DescribeVpcs\n  timeout: 999999h\n  interval: 0s\n```\n");
    let r = run(labrun().current_dir(dir.path()).args(["validate", ".", "--format", "short"]));
    assert_eq!(r.code, 2, "{}", r.all());
    for needle in [
        "1-a/_index.md:13:12: error[labrun::yaml-too-large]",
        "2-b/lab.yaml:3:18: error[labrun::jmespath-too-complex]: JMESPath expression nests 2000 levels deep; labrun allows at most 50",
        "3-c/_index.md:7:12: error[labrun::out-of-range]: `timeout: 999999h` is longer than labrun allows (24h)",
        "3-c/_index.md:8:13: error[labrun::out-of-range]: `interval: 0s` is shorter than labrun allows (100ms)",
    ] {
        assert!(r.stderr.contains(needle), "expected `{needle}` in:\n{}", r.stderr);
    }
    // Any command that loads labs refuses them the same way (here with source snippets).
    let r = run(labrun().current_dir(dir.path()).args(["plan", "."]));
    assert_eq!(r.code, 2, "{}", r.all());
    for needle in ["[1-a/_index.md:13:12]", "[2-b/lab.yaml:3:18]", "[3-c/_index.md:7:12]", "this alias crosses the limit"] {
        assert!(r.stderr.contains(needle), "plan: expected `{needle}` in:\n{}", r.stderr);
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_walked_once_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("1-a/1.1-b")).unwrap();
    std::fs::write(dir.path().join("1-a/_index.md"), "---\ntitle: A\n---\n").unwrap();
    std::fs::write(dir.path().join("1-a/1.1-b/_index.md"), "---\ntitle: B\n---\n").unwrap();
    std::os::unix::fs::symlink("../..", dir.path().join("1-a/1.1-b/loop")).unwrap();
    let r = run(labrun().current_dir(dir.path()).args(["validate", ".", "--format", "short"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("valid: 2 chapter(s), 0 step(s), 1 warning(s)"), "{}", r.stdout);
    assert!(r.stderr.contains("warning[labrun::symlink-loop]: `1-a/1.1-b/loop` links back to"), "{}", r.stderr);
}

// ── Command-line conventions: global output options, colour, completions, man, var files,
// LABRUN_* settings, GitHub annotations.

/// A workshop with two mistakes, for the diagnostics formats.
fn invalid_workshop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("1-a")).unwrap();
    std::fs::write(
        dir.path().join("1-a/_index.md"),
        "---\ntitle: A\n---\n```labrun\n- id: a\n  call: ec2:CreateVcp\n- id: b\n  call: ec2:DescribeVpcs\n  timeout: 5 minutes\n```\n",
    )
    .unwrap();
    dir
}

#[test]
fn output_options_are_accepted_by_every_command() {
    for args in [
        &["test", "--plain", "--help"][..],
        &["validate", "-q", "labs/"],
        &["list", "--color", "never", "labs/2"],
        &["plan", "-v", "labs/2.1.1"],
        &["--plain", "-q", "list", "labs/2"],
        &["schema", "--quiet", "ec2:CreateVpc"],
    ] {
        let r = run(labrun().current_dir(repo()).args(args));
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
    }
    // Output options may also come before a bare path (the implicit `run`).
    let dir = tempfile::tempdir().unwrap();
    let r = run(labrun().current_dir(dir.path()).args(["-q", "--color", "never", "labs/3.2"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("labs/3.2: no such file or directory"), "{}", r.stderr);
    let r = run(labrun().current_dir(repo()).args(["list", "-q", "-v"]));
    assert_eq!(r.code, 2, "-q and -v together: {}", r.all());
}

#[test]
fn color_follows_the_flag_then_clicolor_force_then_no_color() {
    let dir = invalid_workshop();
    let validate = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = labrun();
        c.current_dir(dir.path()).arg("validate").arg(".").args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let r = run(&mut c);
        assert_eq!(r.code, 2, "{}", r.all());
        r.stderr.contains("\x1b[")
    };
    // labrun() sets NO_COLOR=1; output here is a pipe, not a terminal.
    assert!(!validate(&[], &[]), "NO_COLOR and a pipe: no colour");
    assert!(validate(&["--color", "always"], &[]), "--color always wins over NO_COLOR");
    assert!(validate(&[], &[("CLICOLOR_FORCE", "1")]), "CLICOLOR_FORCE forces colour, over NO_COLOR");
    assert!(!validate(&[], &[("CLICOLOR_FORCE", "0")]), "CLICOLOR_FORCE=0 forces nothing");
    assert!(!validate(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]), "--color never wins over CLICOLOR_FORCE");
    assert!(validate(&[], &[("LABRUN_COLOR", "always")]), "LABRUN_COLOR is --color");
    assert!(!validate(&["--color", "auto"], &[("NO_COLOR", ""), ("CLICOLOR", "1")]), "auto on a pipe: no colour");
    // clap's own help follows it too.
    let r = run(labrun().args(["--color", "always", "--help"]));
    assert!(r.stdout.contains("\x1b["), "{}", r.stdout);
    let r = run(labrun().env("CLICOLOR_FORCE", "1").args(["--color", "never", "--help"]));
    assert!(!r.stdout.contains("\x1b["), "{}", r.stdout);
}

#[test]
fn quiet_validate_prints_errors_and_the_summary_only() {
    let r = run(labrun().current_dir(repo()).args(["-q", "validate", "labs/"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout, "labs/ valid: 27 chapter(s), 161 step(s)\n");
    assert_eq!(r.stderr, "");
    let r = run(labrun().current_dir(invalid_workshop().path()).args(["validate", ".", "-q", "--format", "short"]));
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().filter(|l| l.contains(": error[")).count(), 2, "{}", r.stderr);
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = run(labrun().args(["completions", shell]));
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains("labrun") && r.stdout.contains("var-file"), "{shell}:\n{}", r.stdout);
    }
    let r = run(labrun().args(["completions", "tcsh"]));
    assert_eq!(r.code, 2, "{}", r.all());
    let r = run(labrun().arg("man"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(".TH labrun 1") && r.stdout.contains("completions"), "{}", r.stdout);
    let r = run(labrun().args(["man", "run"]));
    assert!(r.stdout.contains(".TH labrun-run 1") && r.stdout.contains("var\\-file"), "{}", r.stdout);
    let r = run(labrun().args(["man", "rn"]));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no command `rn`"), "{}", r.stderr);
}

#[test]
fn var_files_in_order_then_var() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.json");
    std::fs::write(&a, "# shared by every chapter\nvpc_cidr: 10.30.0.0/16\nsomething_else: 1\n").unwrap();
    std::fs::write(&b, r#"{"vpc_cidr": "10.40.0.0/16"}"#).unwrap();
    let plan = |args: &[&str]| {
        let r = run(labrun().current_dir(repo()).args(["plan", "labs/2.1.1"]).args(args));
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        r
    };
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let r = plan(&["--var-file", a]);
    assert!(r.stdout.contains("create-vpc --cidr-block 10.30.0.0/16"), "{}", r.stdout);
    // A name the chapters do not use is a warning, as with Terraform's -var-file.
    assert!(r.stderr.contains("labrun: warning: --var-file") && r.stderr.contains("`something_else` is not a variable"), "{}", r.stderr);
    assert!(plan(&["--var-file", a, "--var-file", b]).stdout.contains("--cidr-block 10.40.0.0/16"), "the later file wins");
    assert!(plan(&["--var-file", b, "--var-file", a]).stdout.contains("--cidr-block 10.30.0.0/16"), "the later file wins");
    let r = plan(&["--var", "vpc_cidr=10.50.0.0/16", "--var-file", b]);
    assert!(r.stdout.contains("--cidr-block 10.50.0.0/16"), "--var wins over files: {}", r.stdout);
    assert!(!plan(&["-q", "--var-file", a]).stderr.contains("warning"), "-q keeps errors only");
}

#[test]
fn a_bad_var_file_is_exit_2_with_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases = [
        (write("syntax.yaml", "vpc_cidr: [10.0.0.0/16\n"), "syntax.yaml:2:1: YAML syntax error"),
        (write("list.yaml", "- vpc_cidr\n"), "list.yaml:1:1: expected a mapping of variable names to values, found a list"),
        (write("twice.yaml", "vpc_cidr: a\nvpc_cidr: b\n"), "twice.yaml:2:1:"),
        (dir.path().join("missing.yaml").to_str().unwrap().to_string(), "missing.yaml: no such file"),
    ];
    for (file, needle) in &cases {
        let r = run(labrun().current_dir(repo()).args(["plan", "labs/2.1.1", "--var-file", file]));
        assert_eq!(r.code, 2, "{file}: {}", r.all());
        assert!(r.stderr.contains("labrun: --var-file ") && r.stderr.contains(needle), "{file}: expected `{needle}` in {}", r.stderr);
    }
    // run, check and down take it too, and refuse a bad file before connecting anywhere.
    let r = run(labrun().current_dir(repo()).args(["check", "labs/2.1.1", "--endpoint", "http://127.0.0.1:1", "--var-file", &cases[1].0]));
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn labrun_environment_settings_show_in_help_and_apply() {
    // Help wraps its lines: compare with the words joined by single spaces.
    let help = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = labrun();
        c.args(args).arg("--help").envs(env.iter().copied());
        run(&mut c).stdout.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let text = help(&[], &["run"]);
    for var in ["LABRUN_ENDPOINT", "LABRUN_REGION", "LABRUN_PROFILE", "LABRUN_COLOR", "LABRUN_TARGET"] {
        assert!(text.contains(&format!("[env: {var}=]")), "run --help lacks {var}:\n{text}");
    }
    let text = help(&[], &["test"]);
    assert!(text.contains("[env: LABRUN_JOBS=]") && text.contains("[env: LABRUN_REGION=]"), "{text}");
    let text = help(&[("LABRUN_REGION", "eu-west-3")], &["plan"]);
    assert!(text.contains("[env: LABRUN_REGION=eu-west-3]"), "{text}");
    // plan renders with it, and --region still wins.
    let r = run(labrun().current_dir(repo()).env("LABRUN_REGION", "eu-west-3").args(["plan", "labs/3.2.2.1"]));
    assert!(r.stdout.contains("--service-name com.amazonaws.eu-west-3.ssm") && r.stdout.contains("--region eu-west-3"), "{}", r.stdout);
    let r = run(labrun().current_dir(repo()).env("LABRUN_REGION", "eu-west-3").args(["plan", "labs/3.2.2.1", "--region", "us-east-2"]));
    assert!(r.stdout.contains("com.amazonaws.us-east-2.ssm"), "{}", r.stdout);
    // LABRUN_ENDPOINT is --endpoint; LABRUN_JOBS is --jobs (checked before any emulator).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = run(labrun().current_dir(repo()).env("LABRUN_ENDPOINT", format!("http://127.0.0.1:{port}")).args(["check", "labs/2.1.1"]));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}")) && r.stderr.contains("does not answer"), "{}", r.stderr);
    let r = run(labrun().current_dir(repo()).env("LABRUN_JOBS", "0").args(["test", "labs/2.1.1"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--jobs must be at least 1"), "{}", r.stderr);
}

#[test]
fn validate_format_github_writes_workflow_annotations() {
    let dir = invalid_workshop();
    let r = run(labrun().current_dir(dir.path()).args(["validate", ".", "--format", "github"]));
    assert_eq!(r.code, 2, "{}", r.all());
    let annotations: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), 2, "{}", r.stdout);
    assert!(
        annotations[0]
            .starts_with("::error file=1-a/_index.md,line=6,col=9,title=labrun%3A%3Aunknown-operation::unknown operation `ec2:CreateVcp`"),
        "{}",
        annotations[0]
    );
    assert!(annotations[1].starts_with("::error file=1-a/_index.md,line=9,col=12,title=labrun%3A%3Abad-duration::"), "{}", annotations[1]);
    assert!(r.stderr.contains("2 error(s) in the lab sources"), "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn validate_format_github_warns_and_escapes_properties() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("1-a/1.1-b")).unwrap();
    std::fs::write(dir.path().join("1-a/_index.md"), "---\ntitle: A\n---\n").unwrap();
    std::fs::write(dir.path().join("1-a/1.1-b/_index.md"), "---\ntitle: B\n---\n").unwrap();
    std::os::unix::fs::symlink("../..", dir.path().join("1-a/1.1-b/loop")).unwrap();
    // A comma in a path is escaped in the `file` property.
    std::fs::create_dir_all(dir.path().join("2-c,d")).unwrap();
    std::fs::write(
        dir.path().join("2-c,d/_index.md"),
        "---\ntitle: C\n---\n```labrun\n- id: a\n  call: ec2:DescribeVpcs\n  timeout: 5 minutes\n```\n",
    )
    .unwrap();
    let r = run(labrun().current_dir(dir.path()).args(["validate", ".", "--format", "github"]));
    assert_eq!(r.code, 2, "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("::warning title=labrun%3A%3Asymlink-loop::`1-a/1.1-b/loop` links back to")),
        "{}",
        r.stdout
    );
    assert!(
        lines.iter().any(|l| l.starts_with("::error file=2-c%2Cd/_index.md,line=7,col=12,title=labrun%3A%3Abad-duration::")),
        "{}",
        r.stdout
    );
}
