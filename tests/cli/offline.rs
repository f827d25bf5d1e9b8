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
