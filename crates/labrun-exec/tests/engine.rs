//! The engine against an in-memory fake cloud: ordering, templating, retries, polling and its
//! timeout, the ledger and `down`, crash resume, check mode's read-only promise, restores,
//! gaps and secret masking. No AWS, no emulator.

use labrun_exec::{Backend, CallError, Engine, ErrorKind, Ledger, Mode, Pacing, Quiet, Status, TargetInfo, TargetKind};
use labrun_lab::catalog::Operation;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A tiny cloud: VPCs with a DNS-hostnames attribute, access keys, and knobs for failures.
struct Fake {
    target: TargetInfo,
    vpcs: Mutex<BTreeMap<String, (Value, bool)>>,
    calls: Mutex<Vec<(String, Value)>>,
    next: AtomicU32,
    /// Throttle this many calls before answering.
    throttle: AtomicU32,
    /// DescribeVpcs reports `pending` this many times before `available`.
    pending_polls: AtomicU32,
    /// DeleteVpc fails with a client error this many times.
    refuse_deletes: AtomicU32,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Fake {
            target: TargetInfo {
                kind: TargetKind::Emulator,
                endpoint: Some("http://fake".into()),
                account: "111111111111".into(),
                region: "ap-southeast-1".into(),
            },
            vpcs: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
            next: AtomicU32::new(1),
            throttle: AtomicU32::new(0),
            pending_polls: AtomicU32::new(0),
            refuse_deletes: AtomicU32::new(0),
        })
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(n, _)| n.clone()).collect()
    }
    fn params_of(&self, name: &str) -> Vec<Value> {
        self.calls.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, p)| p.clone()).collect()
    }
}

fn take(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

#[async_trait::async_trait]
impl Backend for Fake {
    fn target(&self) -> &TargetInfo {
        &self.target
    }
    async fn call(&self, op: &'static Operation, p: &Value) -> Result<Value, CallError> {
        self.calls.lock().unwrap().push((op.name.to_string(), p.clone()));
        if take(&self.throttle) {
            return Err(CallError::new(ErrorKind::Transient, "Throttling", "slow down"));
        }
        let mut vpcs = self.vpcs.lock().unwrap();
        match op.name {
            "ec2:CreateVpc" => {
                let id = format!("vpc-{}", self.next.fetch_add(1, Ordering::SeqCst));
                let name = p["TagSpecifications"][0]["Tags"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["Key"] == "Name"))
                    .map(|t| t["Value"].clone())
                    .unwrap_or(Value::Null);
                let tags = p["TagSpecifications"][0]["Tags"].clone();
                vpcs.insert(id.clone(), (json!({"VpcId": id, "CidrBlock": p["CidrBlock"], "Name": name, "Tags": tags}), false));
                Ok(json!({"Vpc": {"VpcId": id, "State": "pending"}}))
            }
            "ec2:DescribeVpcs" => {
                let state = if take(&self.pending_polls) { "pending" } else { "available" };
                let want = p["Filters"][0]["Values"][0].clone();
                let list: Vec<Value> = vpcs
                    .values()
                    .filter(|(v, _)| want.is_null() || v["Name"] == want)
                    .map(|(v, _)| {
                        let mut v = v.clone();
                        v["State"] = json!(state);
                        v
                    })
                    .collect();
                Ok(json!({"Vpcs": list}))
            }
            "ec2:DeleteVpc" => {
                if take(&self.refuse_deletes) {
                    return Err(CallError::new(ErrorKind::Client, "UnauthorizedOperation", "not now"));
                }
                let id = p["VpcId"].as_str().unwrap_or_default();
                match vpcs.remove(id) {
                    Some(_) => Ok(json!({})),
                    None => Err(CallError::new(ErrorKind::NotFound, "InvalidVpcID.NotFound", format!("{id} does not exist"))),
                }
            }
            "ec2:ModifyVpcAttribute" => {
                let id = p["VpcId"].as_str().unwrap_or_default();
                let on = p["EnableDnsHostnames"]["Value"].as_bool().unwrap_or(false);
                vpcs.get_mut(id).map(|v| v.1 = on).ok_or_else(|| CallError::new(ErrorKind::NotFound, "InvalidVpcID.NotFound", "no vpc"))?;
                Ok(json!({}))
            }
            "ec2:DescribeVpcAttribute" => {
                let id = p["VpcId"].as_str().unwrap_or_default();
                let on = vpcs.get(id).map(|v| v.1).ok_or_else(|| CallError::new(ErrorKind::NotFound, "InvalidVpcID.NotFound", "no vpc"))?;
                Ok(json!({"VpcId": id, "EnableDnsHostnames": {"Value": on}}))
            }
            "iam:CreateAccessKey" => Ok(
                json!({"AccessKey": {"UserName": p["UserName"], "AccessKeyId": "AKIAFAKE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"}}),
            ),
            "iam:DeleteAccessKey" | "ec2:DescribeTags" => Ok(json!({"Tags": []})),
            "ec2:CreateSubnet" => Err(CallError::new(ErrorKind::Client, "InvalidParameterValue", "CIDR outside the VPC")),
            "ec2:DescribeInstanceInformation" => Err(CallError::new(ErrorKind::Unsupported, "InternalFailure", "not implemented")),
            other => Err(CallError::new(ErrorKind::Unsupported, "NotInFake", other.to_string())),
        }
    }
}

fn chapter(yaml: &str) -> (tempfile::TempDir, labrun_lab::Workshop) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("workshop.yaml"), "workshop: t\nvars: { cidr: 10.1.0.0/16, names: [a, b, c] }\n").unwrap();
    std::fs::create_dir_all(dir.path().join("1-x")).unwrap();
    std::fs::write(dir.path().join("1-x/lab.yaml"), yaml).unwrap();
    let loaded = labrun_lab::load(dir.path()).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{}", labrun_lab::diag::render_plain(&loaded.diagnostics));
    (dir, loaded.workshop)
}

fn engine(fake: &Arc<Fake>, ledger_dir: &std::path::Path) -> Engine {
    let ledger = Arc::new(Ledger::open(ledger_dir, "fake").unwrap());
    let mut e = Engine::new(fake.clone(), Some(ledger), Arc::new(Quiet), "run-1".into());
    e.pacing = Pacing {
        poll_interval: Duration::from_millis(5),
        poll_max_interval: Duration::from_millis(10),
        default_timeout: Duration::from_millis(300),
        retry_max_delay: Duration::from_millis(5),
        dependency_patience: Duration::from_millis(50),
    };
    e
}

const CREATE_AND_FIND: &str = r#"
- id: create
  call: ec2:CreateVpc
  with: { CidrBlock: "{{ vars.cidr }}", TagSpecifications: [ { ResourceType: vpc, Tags: [ { Key: Name, Value: Lab VPC } ] } ] }
  outputs: { id: Vpc.VpcId }
- id: find
  call: ec2:DescribeVpcs
  with: { Filters: [ { Name: "tag:Name", Values: [ Lab VPC ] } ] }
  until: { "Vpcs[0].State": available }
  expect: { "length(Vpcs)": 1, "Vpcs[0].VpcId": "{{ steps.create.id }}", "Vpcs[0].CidrBlock": "{{ vars.cidr }}" }
"#;

#[tokio::test]
async fn steps_run_in_order_with_rendered_parameters_tags_and_outputs() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls(), ["ec2:CreateVpc", "ec2:DescribeVpcs"]);
    let create = &fake.params_of("ec2:CreateVpc")[0];
    assert_eq!(create["CidrBlock"], "10.1.0.0/16");
    let keys: Vec<&str> = create["TagSpecifications"][0]["Tags"].as_array().unwrap().iter().filter_map(|t| t["Key"].as_str()).collect();
    assert_eq!(keys, ["Name", "labrun:workshop", "labrun:chapter", "labrun:run"]);
}

#[tokio::test]
async fn a_failed_expectation_says_what_was_expected_and_found_with_the_hint() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        &format!("{CREATE_AND_FIND}  hint: Create it in the VPC console.\n")
            .replace("\"{{ vars.cidr }}\" }\n  hint", "\"10.9.0.0/16\" }\n  hint"),
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    let find = &r.steps[1];
    assert_eq!(find.status, Status::Failed);
    assert_eq!(find.mismatches.len(), 1);
    assert_eq!(find.mismatches[0].to_string(), r#"Vpcs[0].CidrBlock: expected "10.9.0.0/16", found "10.1.0.0/16""#);
    assert_eq!(find.hint.as_deref(), Some("Create it in the VPC console."));
    assert!(find.location.to_string().ends_with("1-x/lab.yaml:6:3"), "{}", find.location);
}

#[tokio::test]
async fn transient_errors_are_retried_and_client_errors_are_not() {
    let fake = Fake::new();
    fake.throttle.store(2, Ordering::SeqCst);
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls().iter().filter(|c| *c == "ec2:CreateVpc").count(), 3, "two throttled attempts, then success");

    let fake = Fake::new();
    let (dir, w) = chapter("- id: s\n  call: ec2:CreateSubnet\n  with: { VpcId: vpc-1, CidrBlock: 10.9.0.0/24 }\n");
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    assert_eq!(r.steps[0].status, Status::Failed);
    assert!(r.steps[0].message.as_deref().unwrap().contains("CIDR outside the VPC (InvalidParameterValue)"));
    assert_eq!(fake.calls().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn until_polls_until_true_and_times_out_otherwise() {
    let fake = Fake::new();
    fake.pending_polls.store(3, Ordering::SeqCst);
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls().iter().filter(|c| *c == "ec2:DescribeVpcs").count(), 4);

    let fake = Fake::new();
    fake.pending_polls.store(u32::MAX, Ordering::SeqCst);
    let (dir, w) = chapter(&CREATE_AND_FIND.replace("until:", "timeout: 100ms\n  until:"));
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    let msg = r.steps[1].message.clone().unwrap_or_default();
    assert_eq!(r.steps[1].status, Status::Failed);
    assert!(msg.starts_with("timed out after 100ms waiting for: Vpcs[0].State: expected \"available\", found \"pending\""), "{msg}");
}

#[tokio::test]
async fn check_mode_never_calls_a_mutating_operation() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, false, false).await;
    assert_eq!(fake.calls(), ["ec2:DescribeVpcs"]);
    assert_eq!(r.steps[0].status, Status::Skipped);
    // Nothing exists yet: the check runs once (no polling in check mode) and says what is missing.
    assert_eq!(r.steps[1].status, Status::Failed, "{:?}", r.steps[1]);
    assert_eq!(r.steps[1].mismatches[0].to_string(), r#"Vpcs[0].State: expected "available", found null"#);
}

#[tokio::test]
async fn a_step_using_outputs_of_a_step_that_did_not_pass_is_skipped_with_the_reason() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        r#"
- id: find
  call: ec2:DescribeVpcs
  expect: { "length(Vpcs)": 1 }
  outputs: { id: "Vpcs[0].VpcId" }
- id: attr
  call: ec2:DescribeVpcAttribute
  with: { VpcId: "{{ steps.find.id }}", Attribute: enableDnsHostnames }
"#,
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, false, false).await;
    assert_eq!(r.steps[1].status, Status::Skipped);
    assert_eq!(r.steps[1].message.as_deref(), Some("not run: it uses step `find`, which did not pass"));
    assert_eq!(fake.calls(), ["ec2:DescribeVpcs"]);
}

#[tokio::test]
async fn down_replays_the_ledger_newest_first_and_is_idempotent() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    assert!(!e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await.failed());
    // A second run makes a second VPC (the test's lab has no idempotence guard).
    e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    let deleted_before = fake.vpcs.lock().unwrap().len();
    assert_eq!(deleted_before, 2);
    let d = e.down("t", None).await;
    assert_eq!((d.undone, d.errors.len()), (2, 0), "{d:?}");
    let deletes: Vec<String> = fake.params_of("ec2:DeleteVpc").iter().map(|p| p["VpcId"].as_str().unwrap().to_string()).collect();
    assert_eq!(deletes, ["vpc-2", "vpc-1"], "newest first");
    assert!(fake.vpcs.lock().unwrap().is_empty());
    // Again: nothing left to do, nothing fails.
    let again = e.down("t", None).await;
    assert_eq!((again.undone, again.errors.len()), (0, 0));
}

#[tokio::test]
async fn a_resource_already_gone_counts_as_undone() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    fake.vpcs.lock().unwrap().clear(); // deleted by hand in the console
    let d = e.down("t", None).await;
    assert_eq!((d.undone, d.errors.len()), (1, 0), "{d:?}");
}

#[tokio::test]
async fn a_crashed_run_and_an_interrupted_down_both_resume_from_the_ledger() {
    let fake = Fake::new();
    let (dir, w) = chapter(&format!("{CREATE_AND_FIND}- id: second\n  call: ec2:CreateVpc\n  with: {{ CidrBlock: 10.2.0.0/16 }}\n"));
    {
        // The process dies after the run: only the ledger file survives.
        let e = engine(&fake, dir.path());
        e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    }
    assert_eq!(fake.vpcs.lock().unwrap().len(), 2);
    // The first `down` is refused once for the newest entry and stops short of finishing it.
    fake.refuse_deletes.store(1, Ordering::SeqCst);
    let e = engine(&fake, dir.path());
    let first = e.down("t", None).await;
    assert_eq!((first.undone, first.errors.len()), (1, 1), "{first:?}");
    assert_eq!(fake.vpcs.lock().unwrap().len(), 1);
    // A new process resumes: only what is left is undone.
    let e = engine(&fake, dir.path());
    let second = e.down("t", None).await;
    assert_eq!((second.undone, second.errors.len()), (1, 0), "{second:?}");
    assert!(fake.vpcs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn cancelling_stops_at_a_safe_point_with_everything_recorded() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: a\n  call: ec2:CreateVpc\n  with: { CidrBlock: 10.1.0.0/16 }\n- id: b\n  call: ec2:CreateVpc\n  with: { CidrBlock: 10.2.0.0/16 }\n",
    );
    let e = engine(&fake, dir.path());
    e.cancel.store(true, Ordering::SeqCst);
    let r = e.run(&w, &[0], false).await;
    assert!(r.interrupted);
    assert!(fake.calls().is_empty());
    e.cancel.store(false, Ordering::SeqCst);
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    assert!(!r.failed());
    let ledger = Ledger::open(dir.path(), "fake").unwrap();
    assert_eq!(ledger.outstanding().unwrap().len(), 2, "each change is in the ledger before the next step");
}

#[tokio::test]
async fn restore_puts_the_previous_value_back() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: vpc\n  call: ec2:DescribeVpcs\n  outputs: { id: \"Vpcs[0].VpcId\" }\n- id: dns\n  call: ec2:ModifyVpcAttribute\n  with: { VpcId: \"{{ steps.vpc.id }}\", EnableDnsHostnames: { Value: true } }\n  cleanup: restore\n",
    );
    fake.vpcs.lock().unwrap().insert("vpc-9".into(), (json!({"VpcId": "vpc-9"}), false));
    let e = engine(&fake, dir.path());
    assert!(!e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await.failed());
    assert!(fake.vpcs.lock().unwrap()["vpc-9"].1);
    let d = e.down("t", None).await;
    assert_eq!(d.undone, 1, "{d:?}");
    assert!(!fake.vpcs.lock().unwrap()["vpc-9"].1, "DNS hostnames are off again");
    assert_eq!(fake.calls()[1], "ec2:DescribeVpcAttribute", "the old value is read before the change");
}

#[tokio::test]
async fn for_each_runs_every_item_and_collects_outputs() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: many\n  call: ec2:CreateVpc\n  for_each: \"{{ vars.names }}\"\n  with: { CidrBlock: 10.1.0.0/16, TagSpecifications: [ { ResourceType: vpc, Tags: [ { Key: Name, Value: \"{{ item }}\" } ] } ] }\n  outputs: { id: Vpc.VpcId }\n- id: count\n  call: ec2:DescribeVpcs\n  when: \"steps.many.id | length == 3\"\n  expect: { \"length(Vpcs)\": 3 }\n- id: never\n  call: ec2:DescribeVpcs\n  when: \"steps.many.id | length == 4\"\n",
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    assert_eq!(r.steps.iter().map(|s| s.status).collect::<Vec<_>>(), [Status::Passed, Status::Passed, Status::Skipped], "{r:#?}");
    let mut names: Vec<String> = fake
        .params_of("ec2:CreateVpc")
        .iter()
        .map(|p| p["TagSpecifications"][0]["Tags"][0]["Value"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
}

#[tokio::test]
async fn steps_needing_real_aws_are_gaps_on_an_emulator_and_never_called() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: online\n  call: ssm:DescribeInstanceInformation\n- id: declared\n  call: ec2:DescribeVpcs\n  requires: [ real-aws ]\n",
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, false, false).await;
    assert_eq!(r.steps.iter().map(|s| s.status).collect::<Vec<_>>(), [Status::Gap, Status::Gap]);
    assert!(fake.calls().is_empty());
    assert!(!r.checks_pass(), "gaps are never passes");
}

#[tokio::test]
async fn secrets_are_masked_before_outputs_reports_and_the_ledger() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: key\n  call: iam:CreateAccessKey\n  with: { UserName: u }\n  outputs: { secret: AccessKey.SecretAccessKey, id: AccessKey.AccessKeyId }\n- id: show\n  call: ec2:DescribeVpcs\n  expect: { \"length(Vpcs)\": 99 }\n",
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, false, false).await;
    let everything =
        format!("{}{}", serde_json::to_string(&r).unwrap(), std::fs::read_to_string(dir.path().join("ledger-fake.jsonl")).unwrap());
    assert!(!everything.contains("SECRET"), "{everything}");
    assert!(everything.contains("AKIAFAKE"), "the key id itself is not secret and is needed to delete it");
}
