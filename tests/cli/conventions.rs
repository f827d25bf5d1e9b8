//! Output conventions end to end without an emulator: a stand-in for AWS on a loopback port
//! answers just enough (the LocalStack health check, STS GetCallerIdentity, EC2 DescribeVpcs
//! with no VPCs) for `check` to draw its step lines and for `--target aws` to reach the
//! account guard.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Starts the stand-in; it serves at most 100 requests, one per connection, and goes away with
/// the test process.
fn fake_aws() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100).flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    endpoint
}

fn answer(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (mut head, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body);
    let (status, reply) = if head.starts_with("GET") {
        (200, r#"{"version": "fake"}"#.to_string())
    } else if body.contains("Action=GetCallerIdentity") {
        (
            200,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
             <Arn>arn:aws:iam::123456789012:user/learner</Arn><UserId>AIDAFAKE</UserId><Account>123456789012</Account>\
             </GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
                .to_string(),
        )
    } else if body.contains("Action=DescribeVpcs") {
        (200, "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>1</requestId><vpcSet/></DescribeVpcsResponse>".to_string())
    } else if head.to_ascii_lowercase().contains("x-amz-target:") {
        // JSON protocols (SSM): an error they can read, so nothing is retried.
        (400, r#"{"__type": "InvalidAction", "message": "not faked"}"#.to_string())
    } else {
        (
            400,
            "<Response><Errors><Error><Code>InvalidAction</Code><Message>not faked</Message></Error></Errors><RequestID>1</RequestID></Response>"
                .to_string(),
        )
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// `labrun check labs/2.1.1` against an account with no VPC: create-vpc is skipped, lab-vpc fails.
fn check_empty_account(extra: &[&str], env: &[(&str, &str)]) -> Run {
    let endpoint = fake_aws();
    let mut c = labrun();
    c.current_dir(repo()).args(["check", "labs/2.1.1", "--endpoint", &endpoint]).args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

#[test]
fn step_marks_are_coloured_only_when_colour_is_on() {
    let r = check_empty_account(&["--color", "always"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    // Red, bold for a failure; dim for a skip.
    assert!(r.stdout.contains("\x1b[1m\x1b[31m✘ FAIL \x1b[0m lab-vpc"), "{:?}", r.stdout);
    assert!(r.stdout.contains("\x1b[2m– skip \x1b[0m create-vpc"), "{:?}", r.stdout);
    let r = check_empty_account(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(!r.all().contains("\x1b["), "{:?}", r.all());
    assert!(r.stdout.contains("  ✘ FAIL  lab-vpc Lab VPC exists with the lab's CIDR block"), "{}", r.stdout);
}

#[test]
fn quiet_shows_failures_and_the_summary_only() {
    let r = check_empty_account(&["-q"], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("  ✘ FAIL  lab-vpc "), "{}", r.stdout);
    assert!(lines.last().unwrap().starts_with("check: 0 passed, 1 failed, 0 gap(s) (need real AWS), 1 skipped"), "{}", r.stdout);
    for chatter in ["labrun ·", "── 2.1.1", "– skip", "emulator:"] {
        assert!(!r.stdout.contains(chatter), "-q printed `{chatter}`:\n{}", r.stdout);
    }
    // Without -q, the header and the skipped step are there.
    let r = check_empty_account(&[], &[]);
    assert!(
        r.stdout.contains("labrun · fcj-000058 · emulator http://127.0.0.1:") && r.stdout.contains("– skip  create-vpc"),
        "{}",
        r.stdout
    );
}

#[test]
fn debug_output_shows_sdk_events_and_no_secret() {
    let endpoint = fake_aws();
    let home = tempfile::tempdir().unwrap();
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRET01";
    let token = "FwoGZXIvYXdzEFAKESESSIONTOKEN0123456789";
    let labs = labs_copy();
    let mut c = labrun();
    c.current_dir(labs.path())
        .env("HOME", home.path())
        .env("LABRUN_TEST_IDENTITY_ENDPOINT", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIAFAKEACCESSKEY01")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_REGION", "ap-southeast-1")
        .args(["-vv", "run", "labs/2.1.1", "--target", "aws", "--var", "vpc_cidr=10.9.0.0/16"]);
    let r = run(&mut c);
    // The guard refuses the (fake) account: the SDK signed and sent a real request first.
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("refusing to change AWS account 123456789012"), "{}", r.stderr);
    // -vv shows the SDK's own events and labrun's debug events ...
    assert!(r.stderr.contains("aws_smithy_runtime") || r.stderr.contains("aws_config"), "no SDK events:\n{}", r.stderr);
    assert!(r.stderr.contains("DEBUG labrun::commands: settings"), "{}", r.stderr);
    // ... and never a secret key, a session token or the value of a variable.
    for needle in [secret, token, "10.9.0.0/16"] {
        assert!(!r.all().contains(needle), "`{needle}` was printed:\n{}", r.all());
    }
}

#[test]
fn down_writes_reports_in_the_same_envelope_as_run() {
    let endpoint = fake_aws();
    let labs = labs_copy();
    let r = run(labrun().current_dir(labs.path()).args([
        "down",
        "labs/2.1.1",
        "--endpoint",
        &endpoint,
        "--report",
        "json",
        "down.json",
        "--report",
        "junit",
        "down.xml",
    ]));
    // Nothing in the ledger; the stand-in refuses every listing of the sweep, so: exit 1.
    assert_eq!(r.code, 1, "{}", r.all());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(labs.path().join("down.json")).unwrap()).unwrap();
    assert_eq!(json["command"], "down");
    assert_eq!(json["target"]["endpoint"], endpoint.as_str());
    assert_eq!(json["report"]["undone"], 0);
    assert!(json["report"]["errors"][0].as_str().unwrap().contains("could not list"), "{json}");
    let xml = std::fs::read_to_string(labs.path().join("down.xml")).unwrap();
    assert!(xml.contains("<testsuite name=\"down\"") && xml.contains("<testcase name=\"ledger: 0 change(s) undone\"/>"), "{xml}");
    assert!(xml.contains("<failure message=\"ec2: could not list"), "{xml}");
}
