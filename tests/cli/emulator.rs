//! The CLI against a real LocalStack: run, check and down; a change behind labrun's back; a
//! killed run cleaned up by `down`; the account guard; and `labrun test` catching bad chapters.

use crate::common::*;
use labrun_harness::inventory;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_check_and_down_of_a_chapter() {
    let labs = labs_copy();
    let acct = account();
    let b = direct(&acct).await;
    let before = inventory::take(b.as_ref(), &[]).await.unwrap();

    let r = on_emulator(labs.path(), &acct, &["check", "labs/3.2.1"]);
    assert_eq!(r.code, 1, "nothing is built yet: {}", r.all());
    assert!(!labs.path().join("labs/.labrun").exists(), "check writes no ledger");
    let r = on_emulator(labs.path(), &acct, &["run", "labs/3.2.1", "--report", "junit", "run.xml", "--report", "json", "run.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("── 2.1.1 Create VPC · building prerequisite"), "{}", r.stdout);
    assert!(r.stdout.contains("✔ pass  enable-dns-hostnames"), "{}", r.stdout);
    let junit = std::fs::read_to_string(labs.path().join("run.xml")).unwrap();
    assert!(junit.contains("name=\"dns-hostnames-on\"") && junit.contains("3.2.1-enablevpcdns/_index.md\" line=\""), "{junit}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(labs.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(report["target"]["account"], json!(acct));

    let r = on_emulator(labs.path(), &acct, &["check", "labs/3.2.1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // Running again finds the chapter in place and changes nothing.
    let r = on_emulator(labs.path(), &acct, &["run", "labs/3.2.1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("3.2.1 Enable DNS hostnames · already in place"), "{}", r.stdout);

    let r = on_emulator(labs.path(), &acct, &["down", "labs/"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = on_emulator(labs.path(), &acct, &["check", "labs/3.2.1"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let after = inventory::take(b.as_ref(), &[]).await.unwrap();
    assert_eq!(inventory::leaked(&before, &after), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_behind_labruns_back_fails_the_check_with_what_to_fix() {
    let labs = labs_copy();
    let acct = account();
    let r = on_emulator(labs.path(), &acct, &["run", "labs/3.2.1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let b = direct(&acct).await;
    let vpcs = call(&b, "ec2:DescribeVpcs", json!({"Filters": [{"Name": "tag:Name", "Values": ["Lab VPC"]}]})).await;
    let vpc = vpcs["Vpcs"][0]["VpcId"].clone();
    call(&b, "ec2:ModifyVpcAttribute", json!({"VpcId": vpc, "EnableDnsHostnames": {"Value": false}})).await;

    let r = on_emulator(labs.path(), &acct, &["check", "labs/3.2.1", "--report", "json", "c.json", "--report", "junit", "c.xml"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(failed_steps(&r.stdout), ["dns-hostnames-on"]);
    assert!(r.stdout.contains("EnableDnsHostnames.Value: expected true, found false"), "{}", r.stdout);
    assert!(r.stdout.contains("hint: VPC console → Your VPCs → Lab VPC → Actions → Edit VPC settings"), "{}", r.stdout);
    assert!(r.stdout.contains("3.2.1-enablevpcdns/_index.md:28:3"), "{}", r.stdout);
    // The failing key is drawn in its file, as `validate` draws a problem: line 32, column 13.
    assert!(r.stdout.contains("3.2.1-enablevpcdns/_index.md:32:13]"), "{}", r.stdout);
    assert!(r.stdout.contains(r#"expect: { "EnableDnsHostnames.Value": true }"#), "{}", r.stdout);
    assert!(r.stdout.contains("╰── expected true"), "{}", r.stdout);
    // The reports carry that line too.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(labs.path().join("c.json")).unwrap()).unwrap();
    let step = report["report"]["chapters"][0]["steps"].as_array().unwrap().iter().find(|s| s["id"] == "dns-hostnames-on").unwrap().clone();
    assert_eq!(step["mismatches"][0]["location"]["line"], json!(32), "{step}");
    let junit = std::fs::read_to_string(labs.path().join("c.xml")).unwrap();
    let case = junit.lines().find(|l| l.contains("name=\"dns-hostnames-on\"")).unwrap_or_default();
    assert!(case.contains("line=\"32\""), "{junit}");
    on_emulator(labs.path(), &acct, &["down", "labs/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_followed_by_down_leaves_nothing_behind() {
    let labs = labs_copy();
    let acct = account();
    let b = direct(&acct).await;
    let before = inventory::take(b.as_ref(), &[]).await.unwrap();
    let mut child = labrun()
        .current_dir(labs.path())
        .args(["run", "labs/3.2", "--plain", "--endpoint", &endpoint(), "--emulator-account", &acct])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a good part of the lab is in the ledger, as a crash would.
    let ledger_dir = labs.path().join("labs/.labrun");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines = std::fs::read_dir(&ledger_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().lines().count())
            .unwrap_or(0);
        if lines >= 12 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let midway = inventory::take(b.as_ref(), &[]).await.unwrap();
    assert!(!inventory::leaked(&before, &midway).is_empty(), "the run was killed after creating something");

    let r = on_emulator(labs.path(), &acct, &["down", "labs/"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after = inventory::take(b.as_ref(), &[]).await.unwrap();
    assert_eq!(inventory::leaked(&before, &after), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_aws_refuses_an_account_that_is_not_allow_listed() {
    let labs = labs_copy();
    let acct = account();
    // STS answers from the emulator (a debug-build-only hook), so the guard sees a real caller
    // identity; AWS_ENDPOINT_URL_STS itself is refused with --target aws.
    let mut c = labrun();
    c.current_dir(labs.path())
        .env("LABRUN_TEST_IDENTITY_ENDPOINT", endpoint())
        .env("AWS_ACCESS_KEY_ID", &acct)
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "ap-southeast-1")
        .args(["run", "labs/2.1.1", "--target", "aws", "--plain"]);
    let r = run(&mut c);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains(&format!("refusing to change AWS account {acct}: it is not allow-listed")), "{}", r.stderr);
    assert!(!r.all().contains("AWS_SECRET") && !r.all().contains("test\n"), "no credentials in output");
    // Allow-listed but not confirmed (no terminal, no --yes): still refused.
    let r = run(c.args(["--account", &acct]));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("confirm on a terminal, or pass --yes"), "{}", r.stderr);
}

fn fixture(chapters: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workshop.yaml"), "workshop: fixture\nregion: ap-southeast-1\n").unwrap();
    for (path, steps) in chapters {
        std::fs::create_dir_all(dir.path().join(path)).unwrap();
        std::fs::write(dir.path().join(path).join("lab.yaml"), steps).unwrap();
    }
    dir
}

const CREATE: &str = "  call: ec2:CreateVpc\n  with: { CidrBlock: 10.0.0.0/16, TagSpecifications: [ { ResourceType: vpc, Tags: [ { Key: Name, Value: Twin } ] } ] }\n";
const FIND_ONE: &str = "- id: find\n  call: ec2:DescribeVpcs\n  with: { Filters: [ { Name: \"tag:Name\", Values: [ Twin ] } ] }\n  expect: { \"length(Vpcs)\": 1 }\n";

fn test_cmd(dir: &std::path::Path, jobs: &str) -> Run {
    let mut c = labrun();
    c.current_dir(dir).args(["test", ".", "--jobs", jobs, "--endpoint", &endpoint(), "--report", "junit", "junit.xml"]);
    run(&mut c)
}

#[test]
fn labrun_test_names_a_leaked_resource() {
    let dir = fixture(&[("1-leaky", &format!("- id: make\n{CREATE}  cleanup: none\n{FIND_ONE}"))]);
    let r = test_cmd(dir.path(), "1");
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("FAIL 1 "), "{}", r.stdout);
    assert!(r.stdout.contains("leaked: ") && r.stdout.contains("vpc vpc-"), "{}", r.stdout);
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<failure message=") && junit.contains("vpc vpc-"), "{junit}");
}

#[test]
fn labrun_test_names_a_leaked_resource_of_a_modelled_service() {
    // Inventories beyond EC2, IAM, S3 and SSM come from the models: a DynamoDB table here.
    let table = "- id: table\n  call: dynamodb:CreateTable\n  with: { TableName: leaky-notes, BillingMode: PAY_PER_REQUEST, \
                 AttributeDefinitions: [ { AttributeName: id, AttributeType: S } ], KeySchema: [ { AttributeName: id, KeyType: HASH } ] }\n  \
                 cleanup: none\n- id: seen\n  call: dynamodb:DescribeTable\n  with: { TableName: leaky-notes }\n  \
                 expect: { Table.TableStatus: ACTIVE }\n";
    let dir = fixture(&[("1-table", table)]);
    let r = test_cmd(dir.path(), "1");
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("leaked: dynamodb Table leaky-notes"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labrun_test_undoes_the_prerequisites_built_before_one_failed() {
    // 1 builds a VPC; 2 fails (a CIDR EC2 refuses); 3 needs 2. Testing 3 fails on prerequisite
    // 2, and the VPC 1 made in that test's account is removed, not left there.
    let dir = fixture(&[
        ("1-vpc", &format!("- id: make\n{CREATE}{FIND_ONE}")),
        ("2-bad", "requires: [\"1\"]\nsteps:\n  - id: wide\n    call: ec2:CreateVpc\n    with: { CidrBlock: 10.0.0.0/8 }\n"),
        ("3-uses", "requires: [\"2\"]\nsteps:\n  - id: any\n    call: ec2:DescribeVpcs\n"),
    ]);
    let mut c = labrun();
    c.current_dir(dir.path()).args(["test", "./3-uses", "--jobs", "1", "--endpoint", &endpoint(), "--report", "json", "t.json"]);
    let r = run(&mut c);
    assert_eq!(r.code, 1, "{}", r.all());
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("t.json")).unwrap()).unwrap();
    let three = report["chapters"].as_array().unwrap().iter().find(|c| c["chapter"] == "3").expect("chapter 3 tested").clone();
    let failures: Vec<&str> = three["failures"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
    assert_eq!(failures.len(), 1, "only the prerequisite's failure, nothing left behind: {failures:?}");
    assert!(failures[0].starts_with("prerequisite 2 failed (wide: ec2:CreateVpc failed"), "{failures:?}");
    let account = three["account"].as_str().unwrap().to_string();
    let vpcs = inventory::take(direct(&account).await.as_ref(), &[]).await.unwrap()["vpc"].clone();
    let tagged = direct(&account).await;
    let op = labrun_lab::catalog::operation("ec2:DescribeVpcs").unwrap();
    let twins = tagged.call(op, &json!({"Filters": [{"Name": "tag:Name", "Values": ["Twin"]}]})).await.unwrap();
    assert_eq!(twins["Vpcs"], json!([]), "the prerequisite's VPC is gone (VPCs left: {vpcs:?})");
}

#[test]
fn labrun_test_fails_a_chapter_whose_checks_pass_before_it_runs() {
    let vacuous =
        format!("- id: make\n{CREATE}- id: any\n  call: ec2:DescribeVpcs\n  expect: {{ \"length(Vpcs)\": {{ greater_than: 0 }} }}\n");
    let dir = fixture(&[("1-vacuous", &vacuous)]);
    let r = test_cmd(dir.path(), "1");
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("its checks pass before the chapter ran"), "{}", r.stdout);
}

#[test]
fn chapters_tested_in_parallel_do_not_see_each_other() {
    // Both create a VPC named Twin and expect exactly one: sharing an account would break one.
    let ok = format!("- id: make\n{CREATE}{FIND_ONE}");
    let dir = fixture(&[("1-one", &ok), ("2-two", &ok), ("3-three", &ok)]);
    let r = test_cmd(dir.path(), "3");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("test: 3 passed, 0 failed"), "{}", r.stdout);
}

#[test]
fn the_test_emulator_comes_from_a_container_or_says_why_not() {
    let e = labrun_harness::emulator::for_tests();
    if std::env::var_os("LABRUN_TEST_ENDPOINT").is_some() {
        return;
    }
    match e.source {
        labrun_harness::Source::Container => assert!(e.container.is_some()),
        labrun_harness::Source::Host => {
            let log = labrun_harness::emulator::for_tests_log().join("\n");
            assert!(log.contains("no container: ") && log.contains("running LocalStack on the host instead"), "{log}");
            assert!(e.pid.is_some() && e.root.is_some());
        }
        labrun_harness::Source::External => panic!("the test emulator is never an external one without LABRUN_TEST_ENDPOINT"),
    }
}

#[test]
fn emulator_up_status_and_down_manage_only_their_own_process() {
    // Share the installed LocalStack with the tests, but keep this managed emulator's state apart.
    let installed = labrun_harness::emulator::for_tests().root.clone();
    let cache = tempfile::tempdir().unwrap();
    let real = labrun_harness::default_cache_dir().join(format!("localstack-{}", labrun_harness::emulator::LOCALSTACK_VERSION));
    if installed.is_none() && !real.exists() {
        return; // an external test endpoint and nothing installed here: nothing to manage
    }
    std::os::unix::fs::symlink(&real, cache.path().join(format!("localstack-{}", labrun_harness::emulator::LOCALSTACK_VERSION))).unwrap();
    let emulator = |args: &[&str]| {
        let mut c = labrun();
        c.env("LABRUN_CACHE_DIR", cache.path()).arg("emulator").args(args);
        run(&mut c)
    };
    let r = emulator(&["status"]);
    if !r.stdout.contains("answering on the default port") {
        assert_eq!(r.code, 3, "{}", r.all());
        assert!(r.stdout.contains("no emulator is running"), "{}", r.stdout);
    }
    let r = emulator(&["up"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let pid: u32 = r.stdout.lines().find_map(|l| l.strip_prefix("pid:")).unwrap().trim().parse().unwrap();
    assert!(r.stdout.contains("source:   host") && r.stdout.contains("version:  4.13.1"), "{}", r.stdout);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let again = emulator(&["up"]);
    assert!(again.stdout.contains(&format!("pid:      {pid}")), "up reuses the running one: {}", again.stdout);
    let r = emulator(&["down"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains(&format!("(pid {pid})")), "{}", r.stdout);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z")
    );
    let r = emulator(&["down"]);
    assert!(r.stdout.contains("no managed emulator is running"), "{}", r.stdout);
    // The tests' own emulator is untouched.
    assert!(labrun_harness::emulator::healthy(&endpoint()).is_some());
}

/// Runs a chapter that creates a VPC and then polls forever every `interval`; once the VPC
/// is in the ledger, sends `signal`. Returns the fixture, account, output and how long labrun
/// took to stop after the signal.
fn interrupted_run(signal: &str, interval: &str) -> (tempfile::TempDir, String, std::process::Output, Duration) {
    let dir = fixture(&[(
        "1-slow",
        &format!(
            "- id: make\n{CREATE}- id: never\n  call: ec2:DescribeVpcs\n  until: {{ \"length(Vpcs)\": 42 }}\n  timeout: 2h\n  interval: {interval}\n"
        ),
    )]);
    let acct = account();
    let child = labrun()
        .current_dir(dir.path())
        .args(["run", ".", "--plain", "--endpoint", &endpoint(), "--emulator-account", &acct])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the create's entry (not only the ledger's header) is written.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let recorded = std::fs::read_dir(dir.path().join(".labrun"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .is_some_and(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"undo_call\"")));
        if recorded {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let sent_at = Instant::now();
    assert!(std::process::Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    (dir, acct, out, sent_at.elapsed())
}

/// Ctrl-C (SIGINT) and SIGTERM (a CI runner cancelling the job) during a long wait: labrun
/// stops at once, keeps what it made in the ledger and says how to clean up.
#[test]
fn ctrl_c_and_sigterm_stop_a_long_wait_at_once_and_say_how_to_clean_up() {
    for signal in ["-INT", "-TERM"] {
        let (dir, acct, out, waited) = interrupted_run(signal, "1h");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // The poll would sleep an hour; a few seconds is "at once" on a loaded CI machine.
        assert!(waited < Duration::from_secs(20), "{signal}: took {waited:?} to stop\n{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(1), "{signal}\n{stdout}\n{stderr}");
        assert!(stderr.contains("stopping at the next safe point"), "{stderr}");
        assert!(stdout.contains("interrupted while waiting"), "{stdout}");
        let hint = format!(
            "interrupted; what was created is in the ledger: `labrun down . --endpoint {} --emulator-account {acct}` removes it",
            endpoint()
        );
        assert!(stderr.contains(&hint), "{stderr}");
        let r = on_emulator(dir.path(), &acct, &["down", "."]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(r.stdout.contains("ec2:DeleteVpc"), "{}", r.stdout);
    }
}

#[test]
fn shards_split_the_chapters() {
    let ok = format!("- id: make\n{CREATE}{FIND_ONE}");
    let dir = fixture(&[("1-one", &ok), ("2-two", &ok), ("3-three", &ok)]);
    for (shard, count) in [("1/2", 2), ("2/2", 1)] {
        let mut c = labrun();
        c.current_dir(dir.path()).args(["test", ".", "--shard", shard, "--endpoint", &endpoint()]);
        let r = run(&mut c);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(r.stdout.contains(&format!("testing {count} chapter(s)")), "{shard}: {}", r.stdout);
    }
}

#[test]
fn terminating_a_watched_emulator_stops_localstack_too() {
    if std::env::var_os("LABRUN_TEST_ENDPOINT").is_some() {
        return;
    }
    let _installed = labrun_harness::emulator::for_tests();
    let quiet = |_: &str| {};
    let opts = labrun_harness::Options {
        endpoint: None,
        cache_dir: labrun_harness::default_cache_dir(),
        allow_container: false,
        progress: &quiet,
        watch_pid: Some(std::process::id()),
        instance: "watch-test",
    };
    let e = labrun_harness::emulator::up(&opts).unwrap();
    assert!(labrun_harness::emulator::healthy(&e.endpoint).is_some());
    let pid = e.pid.unwrap().to_string();
    assert!(std::process::Command::new("kill").arg(&pid).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while labrun_harness::emulator::healthy(&e.endpoint).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(labrun_harness::emulator::healthy(&e.endpoint).is_none(), "LocalStack outlived its watcher");
}

/// `labrun down labs/2.1.3` after `labrun labs/2.1.3` removes the VPC that run built as its
/// prerequisite (chapter 2.1.1), not only the subnet: the hint after a run really cleans up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_of_a_chapter_also_removes_the_prerequisites_its_run_built() {
    let labs = labs_copy();
    let acct = account();
    let b = direct(&acct).await;
    let before = inventory::take(b.as_ref(), &[]).await.unwrap();
    let r = on_emulator(labs.path(), &acct, &["run", "labs/2.1.3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("2.1.1 Create VPC · building prerequisite"), "{}", r.stdout);
    let r = on_emulator(labs.path(), &acct, &["down", "labs/2.1.3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after = inventory::take(b.as_ref(), &[]).await.unwrap();
    assert_eq!(inventory::leaked(&before, &after), Vec::<String>::new(), "{}", r.stdout);
}

/// Two labrun processes at once on one workshop, one calling the emulator `localhost`, the
/// other `127.0.0.1`: one ledger, nothing lost, and one `down` removes both chapters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_and_two_spellings_of_one_emulator_share_one_ledger() {
    let labs = labs_copy();
    let acct = account();
    let b = direct(&acct).await;
    let before = inventory::take(b.as_ref(), &[]).await.unwrap();
    let ep = endpoint();
    let localhost = ep.replace("127.0.0.1", "localhost");
    let spawn = |chapter: &str, endpoint: &str| {
        labrun()
            .current_dir(labs.path())
            .args(["run", chapter, "--plain", "--endpoint", endpoint, "--emulator-account", &acct])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, c) = (spawn("labs/2.2", &localhost), spawn("labs/4.2", &ep));
    for child in [a, c] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    let ledgers: Vec<_> = std::fs::read_dir(labs.path().join("labs/.labrun")).unwrap().filter_map(Result::ok).collect();
    assert_eq!(ledgers.len(), 1, "one ledger for one emulator: {ledgers:?}");
    let r = on_emulator(labs.path(), &acct, &["down", "labs/"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after = inventory::take(b.as_ref(), &[]).await.unwrap();
    assert_eq!(inventory::leaked(&before, &after), Vec::<String>::new(), "{}", r.stdout);
}

/// `down` against another account (or endpoint, or region) than the run used finds nothing
/// in its own ledger, and says where the workshop's changes are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_elsewhere_points_at_the_ledger_that_holds_the_changes() {
    let labs = labs_copy();
    let (acct, other) = (account(), account());
    let r = on_emulator(labs.path(), &acct, &["run", "labs/2.1.1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = on_emulator(labs.path(), &other, &["down", "labs/2.1.1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("down: 0 change(s) undone"), "{}", r.stdout);
    let note =
        format!("note: another ledger holds 1 change(s) of this workshop for emulator {}, account {acct}, ap-southeast-1", endpoint());
    assert!(r.stdout.contains(&note), "{}", r.stdout);
    let r = on_emulator(labs.path(), &acct, &["down", "labs/2.1.1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.stdout.contains("note: another ledger"), "the other ledger is now empty: {}", r.stdout);
}
