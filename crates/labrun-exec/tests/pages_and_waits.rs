//! Paged reads and `wait:` through the engine, against a scripted in-memory cloud: VPCs served
//! in pages of one (EC2's `NextToken`), and `DescribeInstances` answers given in order.

mod common;

use labrun_exec::{Backend, CallError, Engine, ErrorKind, Mode, Quiet, Reporting, Role, Status, TargetInfo, TargetKind};
use labrun_lab::catalog::Operation;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Scripted {
    target: TargetInfo,
    calls: Mutex<Vec<(String, Value)>>,
    /// DescribeVpcs: one VPC per page; page n carries `NextToken: tn` while more remain.
    vpcs: Vec<&'static str>,
    /// The token the last page gives (a service that repeats itself), if any.
    last_token: Option<&'static str>,
    /// DescribeInstances answers in order; the last one repeats.
    instances: Mutex<VecDeque<Result<Value, CallError>>>,
}

impl Scripted {
    fn new(vpcs: Vec<&'static str>, instances: Vec<Result<Value, CallError>>) -> Arc<Self> {
        Arc::new(Scripted {
            target: TargetInfo {
                kind: TargetKind::Emulator,
                endpoint: Some("http://127.0.0.1:9".into()),
                account: "111111111111".into(),
                region: "ap-southeast-1".into(),
            },
            calls: Mutex::new(Vec::new()),
            vpcs,
            last_token: None,
            instances: Mutex::new(instances.into()),
        })
    }
    fn calls_of(&self, name: &str) -> Vec<Value> {
        self.calls.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, p)| p.clone()).collect()
    }
}

#[async_trait::async_trait]
impl Backend for Scripted {
    fn target(&self) -> &TargetInfo {
        &self.target
    }
    async fn call(&self, op: &'static Operation, p: &Value) -> Result<Value, CallError> {
        self.calls.lock().unwrap().push((op.name.to_string(), p.clone()));
        match op.name {
            "ec2:DescribeVpcs" => {
                let n: usize = match p.get("NextToken").and_then(Value::as_str) {
                    None => 0,
                    Some(t) => t.strip_prefix('t').and_then(|n| n.parse().ok()).unwrap_or(usize::MAX),
                };
                let Some(id) = self.vpcs.get(n) else {
                    return Err(CallError::new(ErrorKind::Client, "InvalidNextToken", "no such page"));
                };
                let mut page = json!({"Vpcs": [{"VpcId": id, "State": "available"}]});
                if n + 1 < self.vpcs.len() {
                    page["NextToken"] = json!(format!("t{}", n + 1));
                } else if let Some(t) = self.last_token {
                    page["NextToken"] = json!(t);
                }
                Ok(page)
            }
            "ec2:DescribeInstances" => {
                let mut script = self.instances.lock().unwrap();
                if script.len() > 1 { script.pop_front().unwrap() } else { script.front().cloned().unwrap() }
            }
            other => Err(CallError::new(ErrorKind::NotCallable, "NotInFake", other.to_string())),
        }
    }
}

fn instances(state: &str) -> Result<Value, CallError> {
    Ok(json!({"Reservations": [{"Instances": [{"InstanceId": "i-1", "State": {"Name": state}}]}]}))
}

fn chapter(yaml: &str) -> (tempfile::TempDir, labrun_lab::Workshop) {
    common::chapter_in("workshop: t\n", yaml)
}

fn engine(cloud: &Arc<Scripted>) -> Engine {
    let mut e = Engine::new(cloud.clone(), None, Arc::new(Quiet), "run-1".into());
    e.pacing = common::fast_pacing(3);
    e
}

async fn run(cloud: &Arc<Scripted>, yaml: &str, mode: Mode) -> labrun_exec::StepReport {
    let (_dir, w) = chapter(yaml);
    let r = engine(cloud).chapter(&w, &w.chapters[0], mode, Role::Addressed, Reporting::Observed).await;
    r.steps.last().unwrap().clone()
}

const ALL_VPCS: &str =
    "- id: vpcs\n  call: ec2:DescribeVpcs\n  expect: { \"Vpcs[].VpcId\": [vpc-1, vpc-2, vpc-3], \"NextToken\": { exists: false } }\n";

#[tokio::test]
async fn a_paged_read_returns_every_pages_items() {
    let cloud = Scripted::new(vec!["vpc-1", "vpc-2", "vpc-3"], vec![]);
    let step = run(&cloud, ALL_VPCS, Mode::Run).await;
    assert_eq!(step.status, Status::Passed, "{step:?}");
    let tokens: Vec<Value> = cloud.calls_of("ec2:DescribeVpcs").iter().map(|p| p.get("NextToken").cloned().unwrap_or_default()).collect();
    assert_eq!(tokens, [json!(null), json!("t1"), json!("t2")]);
}

#[tokio::test]
async fn pages_first_makes_one_request_and_keeps_the_token() {
    let cloud = Scripted::new(vec!["vpc-1", "vpc-2", "vpc-3"], vec![]);
    let step = run(
        &cloud,
        "- id: vpcs\n  call: ec2:DescribeVpcs\n  pages: first\n  expect: { \"Vpcs[].VpcId\": [vpc-1], NextToken: t1 }\n",
        Mode::Run,
    )
    .await;
    assert_eq!(step.status, Status::Passed, "{step:?}");
    assert_eq!(cloud.calls_of("ec2:DescribeVpcs").len(), 1);
}

#[tokio::test]
async fn a_service_repeating_its_token_fails_the_read_instead_of_looping() {
    let mut cloud = Scripted::new(vec!["vpc-1", "vpc-2"], vec![]);
    Arc::get_mut(&mut cloud).unwrap().last_token = Some("t1");
    let step = run(&cloud, ALL_VPCS, Mode::Check).await;
    assert_eq!(step.status, Status::Failed);
    let msg = step.message.unwrap_or_default();
    assert!(msg.contains("page 2 gave the next-page token \"t1\", which an earlier page already gave"), "{msg}");
    assert_eq!(cloud.calls_of("ec2:DescribeVpcs").len(), 2);
}

const WAIT_RUNNING: &str = "- id: running\n  call: ec2:DescribeInstances\n  with: { InstanceIds: [ i-1 ] }\n  wait: InstanceRunning\n  interval: 100ms\n  outputs: { id: \"Reservations[0].Instances[0].InstanceId\" }\n";

#[tokio::test]
async fn a_wait_succeeds_after_polls_including_the_waiters_not_found() {
    let not_yet = Err(CallError::new(ErrorKind::NotFound, "InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"));
    let cloud = Scripted::new(vec![], vec![not_yet, instances("pending"), instances("pending"), instances("running")]);
    let step = run(&cloud, WAIT_RUNNING, Mode::Run).await;
    assert_eq!(step.status, Status::Passed, "{step:?}");
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 4, "NotFound is the waiter's retry, not a second try of the same poll");
    assert!(step.elapsed_ms >= 300, "three waits of the step's interval: {}ms", step.elapsed_ms);
}

#[tokio::test]
async fn a_wait_stops_at_once_on_a_failure_state_with_its_reason() {
    let cloud = Scripted::new(vec![], vec![instances("pending"), instances("terminated"), instances("running")]);
    let step = run(&cloud, WAIT_RUNNING, Mode::Run).await;
    assert_eq!(step.status, Status::Failed);
    assert_eq!(
        step.message.as_deref(),
        Some(r#"waiter `InstanceRunning` reached a failure state: some `Reservations[].Instances[].State.Name` is "terminated""#)
    );
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 2);
}

#[tokio::test]
async fn an_error_no_acceptor_names_ends_the_wait() {
    let denied = Err(CallError::new(ErrorKind::Client, "UnauthorizedOperation", "You are not authorized"));
    let cloud = Scripted::new(vec![], vec![denied, instances("running")]);
    let step = run(&cloud, WAIT_RUNNING, Mode::Run).await;
    assert_eq!(step.status, Status::Failed);
    assert_eq!(
        step.message.as_deref(),
        Some("waiter `InstanceRunning` reached a failure state: unexpected error UnauthorizedOperation: You are not authorized")
    );
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 1);
}

#[tokio::test]
async fn a_wait_times_out_with_what_it_last_saw() {
    let cloud = Scripted::new(vec![], vec![instances("pending")]);
    let step = run(&cloud, &WAIT_RUNNING.replace("interval:", "timeout: 300ms\n  interval:"), Mode::Run).await;
    assert_eq!(step.status, Status::Failed);
    assert_eq!(
        step.message.as_deref(),
        Some(r#"timed out after 300ms waiting for: waiter `InstanceRunning` (`Reservations[].Instances[].State.Name` is ["pending"])"#)
    );
    let polls = cloud.calls_of("ec2:DescribeInstances").len();
    assert!((2..=4).contains(&polls), "{polls} polls in 300ms at 100ms");
}

#[tokio::test]
async fn wait_and_until_must_both_hold() {
    let with_ip =
        Ok(json!({"Reservations": [{"Instances": [{"InstanceId": "i-1", "State": {"Name": "running"}, "PublicIpAddress": "1.2.3.4"}]}]}));
    let cloud = Scripted::new(vec![], vec![instances("pending"), instances("running"), with_ip]);
    let yaml = format!("{WAIT_RUNNING}  until: {{ \"Reservations[0].Instances[0].PublicIpAddress\": {{ exists: true }} }}\n");
    let step = run(&cloud, &yaml, Mode::Run).await;
    assert_eq!(step.status, Status::Passed, "{step:?}");
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 3, "running without an address is not enough");
}

#[tokio::test]
async fn check_mode_looks_once() {
    let cloud = Scripted::new(vec![], vec![instances("pending"), instances("running")]);
    let step = run(&cloud, WAIT_RUNNING, Mode::Check).await;
    assert_eq!(step.status, Status::Failed);
    let msg = step.message.unwrap_or_default();
    assert!(
        msg.starts_with("waiter `InstanceRunning` is not satisfied: `Reservations[].Instances[].State.Name` is [\"pending\"]"),
        "{msg}"
    );
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 1);
}

#[tokio::test]
async fn a_wait_polls_at_the_models_pace_and_a_cancel_ends_it() {
    // No `interval`: InstanceRunning's 15 s delay, not the engine's 5 ms poll interval. No
    // `timeout`: 15 s × 40 attempts. A cancel ends the wait at once.
    let cloud = Scripted::new(vec![], vec![instances("pending")]);
    let (_dir, w) = chapter(&WAIT_RUNNING.replace("  interval: 100ms\n", ""));
    let e = engine(&cloud);
    let cancel = e.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(r.steps[0].message.as_deref(), Some("interrupted while waiting"));
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 1);
}

#[tokio::test]
async fn while_building_not_found_is_still_eventual_consistency_for_a_waiter_that_does_not_name_it() {
    // InstanceStopped has no acceptor for InvalidInstanceID.NotFound: botocore would stop; a
    // run gives a describe right after the create its time, within the waiter's timeout.
    let not_yet = || Err(CallError::new(ErrorKind::NotFound, "InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"));
    let yaml = WAIT_RUNNING.replace("InstanceRunning", "InstanceStopped");
    let cloud = Scripted::new(vec![], vec![not_yet(), instances("stopped")]);
    let step = run(&cloud, &yaml, Mode::Run).await;
    assert_eq!(step.status, Status::Passed, "{step:?}");
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 2);
    // Checking, the answer stands.
    let cloud = Scripted::new(vec![], vec![not_yet(), instances("stopped")]);
    let step = run(&cloud, &yaml, Mode::Check).await;
    assert_eq!(step.status, Status::Failed);
    let msg = step.message.unwrap_or_default();
    assert!(msg.contains("reached a failure state: unexpected error InvalidInstanceID.NotFound"), "{msg}");
    assert_eq!(cloud.calls_of("ec2:DescribeInstances").len(), 1);
}
