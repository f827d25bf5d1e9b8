//! The engine against an in-memory fake cloud: ordering, templating, retries, polling and its
//! timeout, the ledger and `down`, crash resume, check mode's read-only promise, restores,
//! gaps and secret masking. No AWS, no emulator.

mod common;

use labrun_exec::{Backend, CallError, Engine, ErrorKind, Ledger, Mode, Pending, Quiet, Reporting, Role, Status, TargetInfo, TargetKind};
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
    /// API Gateway REST APIs, an operation taken from its model (tags as a map).
    apis: Mutex<Vec<Value>>,
    calls: Mutex<Vec<(String, Value)>>,
    next: AtomicU32,
    /// Throttle this many calls before answering.
    throttle: AtomicU32,
    /// DescribeVpcs reports `pending` this many times before `available`.
    pending_polls: AtomicU32,
    /// DeleteVpc fails with a client error this many times.
    refuse_deletes: AtomicU32,
    /// Mutating calls take effect and then lose their answer, this many times.
    lose_after: AtomicU32,
    /// Mutating calls are cut before they take effect (a reset), this many times.
    reset_before: AtomicU32,
    /// NotFound for DescribeVpcs by id, this many times (eventual consistency).
    not_yet: AtomicU32,
    /// Calls in flight now, and the most seen at once.
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
    /// Each call takes this long (ms), so concurrency can be observed.
    delay_ms: AtomicU32,
}

impl Fake {
    fn new() -> Arc<Self> {
        Self::on(TargetKind::Emulator)
    }
    fn on(kind: TargetKind) -> Arc<Self> {
        Arc::new(Fake {
            target: TargetInfo {
                kind,
                endpoint: (kind == TargetKind::Emulator).then(|| "http://127.0.0.1:9".into()),
                account: "111111111111".into(),
                region: "ap-southeast-1".into(),
            },
            vpcs: Mutex::new(BTreeMap::new()),
            apis: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            next: AtomicU32::new(1),
            throttle: AtomicU32::new(0),
            pending_polls: AtomicU32::new(0),
            refuse_deletes: AtomicU32::new(0),
            lose_after: AtomicU32::new(0),
            reset_before: AtomicU32::new(0),
            not_yet: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            max_in_flight: AtomicU32::new(0),
            delay_ms: AtomicU32::new(0),
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
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay.into())).await;
        }
        let result = self.answer(op, p);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !op.read_only && result.is_ok() && take(&self.lose_after) {
            return Err(CallError::new(ErrorKind::Lost, "ResponseLost", "connection closed before the answer"));
        }
        result
    }
}

fn has_tags(v: &Value, filters: &Value) -> bool {
    filters.as_array().into_iter().flatten().all(|f| {
        let Some(key) = f["Name"].as_str().and_then(|n| n.strip_prefix("tag:")) else { return true };
        let values = f["Values"].as_array().cloned().unwrap_or_default();
        v["Tags"].as_array().is_some_and(|tags| tags.iter().any(|t| t["Key"] == key && values.contains(&t["Value"])))
    })
}

impl Fake {
    fn answer(&self, op: &'static Operation, p: &Value) -> Result<Value, CallError> {
        if take(&self.throttle) {
            return Err(CallError::new(ErrorKind::Transient, "Throttling", "slow down"));
        }
        if !op.read_only && take(&self.reset_before) {
            return Err(CallError::new(ErrorKind::Lost, "ResponseLost", "connection reset"));
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
                if p["VpcIds"].is_array() && take(&self.not_yet) {
                    return Err(CallError::new(ErrorKind::NotFound, "InvalidVpcID.NotFound", "not yet"));
                }
                let state = if take(&self.pending_polls) { "pending" } else { "available" };
                let ids = p["VpcIds"].as_array().cloned();
                let list: Vec<Value> = vpcs
                    .values()
                    .filter(|(v, _)| has_tags(v, &p["Filters"]) && ids.as_ref().is_none_or(|i| i.contains(&v["VpcId"])))
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
            "ec2:RunInstances" => {
                // Honours ClientToken as EC2 does: the same token returns the first result.
                let token = p["ClientToken"].as_str().unwrap_or_default().to_string();
                let id = format!("i-{}", token.len());
                Ok(json!({"Instances": [{"InstanceId": id, "ClientToken": token}]}))
            }
            "ec2:TerminateInstances" | "ec2:RebootInstances" => Ok(json!({})),
            // The sweep's listings: nothing of those kinds in this cloud.
            "iam:ListInstanceProfiles" => Ok(json!({"InstanceProfiles": []})),
            "iam:ListRoles" => Ok(json!({"Roles": []})),
            "iam:ListUsers" => Ok(json!({"Users": []})),
            "ssm:ListDocuments" => Ok(json!({"DocumentIdentifiers": []})),
            "ssm:DescribeParameters" => Ok(json!({"Parameters": []})),
            "s3:ListBuckets" => Ok(json!({"Buckets": []})),
            "ec2:DescribeInstanceInformation" => Err(CallError::new(ErrorKind::Unsupported, "InternalFailure", "not implemented")),
            "apigateway:CreateRestApi" => {
                let api = json!({"id": format!("api{}", self.next.fetch_add(1, Ordering::SeqCst)), "name": p["name"], "tags": p["tags"]});
                self.apis.lock().unwrap().push(api.clone());
                Ok(api)
            }
            "apigateway:GetRestApis" => Ok(json!({"items": *self.apis.lock().unwrap()})),
            "apigateway:DeleteRestApi" => {
                let mut apis = self.apis.lock().unwrap();
                let n = apis.len();
                apis.retain(|a| a["id"] != p["restApiId"]);
                if apis.len() == n { Err(CallError::new(ErrorKind::NotFound, "NotFoundException", "no such API")) } else { Ok(json!({})) }
            }
            "sns:CreateTopic" => Ok(json!({"TopicArn": "arn:aws:sns:ap-southeast-1:111111111111:alerts"})),
            // LocalStack's answer for a service it was not started with.
            "kinesis:CreateStream" => Err(CallError::new(
                ErrorKind::Unsupported,
                "InternalFailure",
                "Service 'kinesis' is not enabled. Please check your 'SERVICES' configuration variable.",
            )),
            other => Err(CallError::new(ErrorKind::NotCallable, "NotInFake", other.to_string())),
        }
    }
}

fn chapter(yaml: &str) -> (tempfile::TempDir, labrun_lab::Workshop) {
    common::chapter_in("workshop: t\nvars: { cidr: 10.1.0.0/16, names: [a, b, c] }\n", yaml)
}

fn engine(fake: &Arc<Fake>, ledger_dir: &std::path::Path) -> Engine {
    let ledger = Arc::new(Ledger::open(ledger_dir, fake.target()).unwrap());
    let mut e = Engine::new(fake.clone(), Some(ledger), Arc::new(Quiet), "run-1".into());
    e.pacing = common::fast_pacing(5);
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
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls(), ["ec2:CreateVpc", "ec2:DescribeVpcs"]);
    let create = &fake.params_of("ec2:CreateVpc")[0];
    assert_eq!(create["CidrBlock"], "10.1.0.0/16");
    let keys: Vec<&str> = create["TagSpecifications"][0]["Tags"].as_array().unwrap().iter().filter_map(|t| t["Key"].as_str()).collect();
    assert_eq!(keys, ["Name", "labrun:workshop", "labrun:chapter", "labrun:run", "labrun:step"]);
}

#[tokio::test]
async fn a_failed_expectation_says_what_was_expected_and_found_with_the_hint() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        &format!("{CREATE_AND_FIND}  hint: Create it in the VPC console.\n")
            .replace("\"{{ vars.cidr }}\" }\n  hint", "\"10.9.0.0/16\" }\n  hint"),
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
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
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls().iter().filter(|c| *c == "ec2:CreateVpc").count(), 3, "two throttled attempts, then success");

    let fake = Fake::new();
    let (dir, w) = chapter("- id: s\n  call: ec2:CreateSubnet\n  with: { VpcId: vpc-1, CidrBlock: 10.9.0.0/24 }\n");
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
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
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls().iter().filter(|c| *c == "ec2:DescribeVpcs").count(), 4);

    let fake = Fake::new();
    fake.pending_polls.store(u32::MAX, Ordering::SeqCst);
    let (dir, w) = chapter(&CREATE_AND_FIND.replace("until:", "timeout: 100ms\n  until:"));
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    let msg = r.steps[1].message.clone().unwrap_or_default();
    assert_eq!(r.steps[1].status, Status::Failed);
    assert!(msg.starts_with("timed out after 100ms waiting for: Vpcs[0].State: expected \"available\", found \"pending\""), "{msg}");
}

#[tokio::test]
async fn check_mode_never_calls_a_mutating_operation() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, Role::Addressed, Reporting::Observed).await;
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
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[1].status, Status::Skipped);
    assert_eq!(r.steps[1].message.as_deref(), Some("not run: it uses step `find`, which did not pass"));
    assert_eq!(fake.calls(), ["ec2:DescribeVpcs"]);
}

#[tokio::test]
async fn down_replays_the_ledger_newest_first_and_is_idempotent() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    assert!(!e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await.failed());
    // A second run makes a second VPC (the test's lab has no idempotence guard).
    e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
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
    e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
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
        e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
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
    let mut e = engine(&fake, dir.path());
    e.cancel.cancel();
    let r = e.run(&w, &[0], false).await;
    assert!(r.interrupted);
    assert!(fake.calls().is_empty());
    e.cancel = tokio_util::sync::CancellationToken::new();
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed());
    let ledger = Ledger::open(dir.path(), fake.target()).unwrap();
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
    assert!(!e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await.failed());
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
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
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
async fn for_each_keeps_every_items_failure() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: subnets\n  call: ec2:CreateSubnet\n  for_each: \"{{ vars.names }}\"\n  with: { VpcId: vpc-1, CidrBlock: 10.9.0.0/24 }\n  cleanup: none\n",
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].status, Status::Failed);
    let why = "ec2:CreateSubnet failed: CIDR outside the VPC (InvalidParameterValue)";
    assert_eq!(r.steps[0].message.as_deref(), Some(format!("item 0: {why}; item 1: {why}; item 2: {why}").as_str()));
}

#[tokio::test]
async fn steps_needing_real_aws_are_gaps_on_an_emulator_and_never_called() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: online\n  call: ssm:DescribeInstanceInformation\n- id: declared\n  call: ec2:DescribeVpcs\n  requires: [ real-aws ]\n",
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps.iter().map(|s| s.status).collect::<Vec<_>>(), [Status::Gap, Status::Gap]);
    assert!(fake.calls().is_empty());
    assert!(!r.checks_pass(), "gaps are never passes");
}

const UNIMPLEMENTED_SERVICE: &str = r#"
- id: stream
  call: kinesis:CreateStream
  with: { StreamName: notes, ShardCount: 1 }
  outputs: { name: "StreamName" }
- id: described
  call: kinesis:DescribeStreamSummary
  with: { StreamName: "{{ steps.stream.name }}" }
- id: vpc
  call: ec2:DescribeVpcs
"#;

#[tokio::test]
async fn a_service_the_emulator_does_not_implement_is_a_gap_and_so_is_what_uses_it() {
    let fake = Fake::new();
    let (dir, w) = chapter(UNIMPLEMENTED_SERVICE);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    let statuses: Vec<Status> = r.steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Status::Gap, Status::Gap, Status::Passed]);
    assert_eq!(
        r.steps[0].message.as_deref(),
        Some(
            "the emulator does not implement kinesis:CreateStream: Service 'kinesis' is not enabled. Please check your 'SERVICES' configuration variable."
        )
    );
    assert_eq!(r.steps[1].message.as_deref(), Some("it uses step `stream`, which this target cannot run"));
    assert!(!r.failed());
    // Asked once (no retry of a 501), the step using it never called, and nothing to undo.
    assert_eq!(fake.calls(), ["kinesis:CreateStream", "ec2:DescribeVpcs"]);
    assert!(Ledger::open(dir.path(), fake.target()).unwrap().outstanding().unwrap().is_empty());
}

#[tokio::test]
async fn on_real_aws_an_unimplemented_answer_is_a_failure() {
    let real = Fake::on(TargetKind::Aws);
    let (dir, w) = chapter(UNIMPLEMENTED_SERVICE);
    let e = engine(&real, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].status, Status::Failed);
    assert!(
        r.steps[0].message.as_deref().unwrap_or("").starts_with("kinesis:CreateStream is not supported by this target"),
        "{:?}",
        r.steps[0]
    );
    assert!(r.failed());
}

#[tokio::test]
async fn secrets_are_masked_before_outputs_reports_and_the_ledger() {
    let fake = Fake::new();
    let (dir, w) = chapter(
        "- id: key\n  call: iam:CreateAccessKey\n  with: { UserName: u }\n  outputs: { secret: AccessKey.SecretAccessKey, id: AccessKey.AccessKeyId }\n- id: show\n  call: ec2:DescribeVpcs\n  expect: { \"length(Vpcs)\": 99 }\n",
    );
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    let ledger = Ledger::open(dir.path(), fake.target()).unwrap();
    let everything = format!("{}{}", serde_json::to_string(&r).unwrap(), std::fs::read_to_string(ledger.path()).unwrap());
    assert!(!everything.contains("SECRET"), "{everything}");
    assert!(everything.contains("AKIAFAKE"), "the key id itself is not secret and is needed to delete it");
}

// ---- Real-world conditions: lost answers, client tokens, eventual consistency, cancellation.

fn vpc_count(fake: &Fake) -> usize {
    fake.vpcs.lock().unwrap().len()
}

/// The create happened, its answer was lost: labrun finds the VPC by its run and step tags
/// instead of making a second one, and binds the found id.
#[tokio::test]
async fn a_lost_answer_to_a_create_is_looked_up_not_repeated() {
    let fake = Fake::new();
    fake.lose_after.store(1, Ordering::SeqCst);
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(vpc_count(&fake), 1, "no duplicate");
    assert_eq!(fake.calls()[..2], ["ec2:CreateVpc", "ec2:DescribeVpcs"], "the lookup comes before any second create");
    let lookup = &fake.params_of("ec2:DescribeVpcs")[0];
    assert_eq!(lookup["Filters"][0], json!({"Name": "tag:labrun:run", "Values": ["run-1"]}));
    assert_eq!(lookup["Filters"][1], json!({"Name": "tag:labrun:step", "Values": ["1/create"]}));
    // The found VPC is recorded like any other: down removes it.
    let d = e.down("t", None).await;
    assert_eq!((d.undone, d.errors.len()), (1, 0), "{d:?}");
    assert_eq!(vpc_count(&fake), 0);
}

/// The same for an operation taken from a model: `CreateRestApi`'s undo needs the id from its
/// answer, so its lookup (derived from `GetRestApis`, whose items carry tags) finds the API by
/// this run's and step's tags. Another API of the same name that is not labrun's is left alone.
#[tokio::test]
async fn a_lost_answer_to_a_modelled_create_is_looked_up_by_its_tags() {
    let fake = Fake::new();
    fake.apis.lock().unwrap().push(json!({"id": "someone-elses", "name": "notes", "tags": {"team": "x"}}));
    fake.lose_after.store(1, Ordering::SeqCst);
    let (dir, w) = chapter("- id: api\n  call: apigateway:CreateRestApi\n  with: { name: notes }\n  outputs: { id: id }\n");
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.calls(), ["apigateway:CreateRestApi", "apigateway:GetRestApis"], "found, not made twice");
    let ours = fake.apis.lock().unwrap()[1]["id"].clone();
    assert_eq!(r.steps[0].status, Status::Passed);
    let d = e.down("t", None).await;
    assert_eq!((d.undone, d.errors.len()), (1, 0), "{d:?}");
    assert_eq!(fake.params_of("apigateway:DeleteRestApi"), [json!({"restApiId": ours})]);
    assert_eq!(fake.apis.lock().unwrap().len(), 1, "the other API stays");
}

/// A lost create with no way to find what it made (SNS lists topics without tags) is named
/// for the author to look at, not guessed at by `down`.
#[tokio::test]
async fn down_says_so_when_a_lost_create_cannot_be_found() {
    let fake = Fake::new();
    fake.lose_after.store(u32::MAX, Ordering::SeqCst);
    let (dir, w) = chapter("- id: topic\n  call: sns:CreateTopic\n  with: { Name: alerts }\n");
    let mut e = engine(&fake, dir.path());
    e.pacing.attempts = 1;
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].status, Status::Failed, "{r:#?}");
    let d = e.down("t", None).await;
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.errors[0].contains("the answer to sns:CreateTopic was lost, and labrun has no way to find what it made"), "{d:?}");
    assert!(d.errors[0].contains("Name=alerts"), "{d:?}");
}

/// A reset before the request took effect: the lookup finds nothing, so trying again is safe.
#[tokio::test]
async fn a_create_cut_before_it_happened_is_tried_again_once_the_lookup_finds_nothing() {
    let fake = Fake::new();
    fake.reset_before.store(2, Ordering::SeqCst);
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(vpc_count(&fake), 1);
    assert_eq!(fake.calls().iter().filter(|c| *c == "ec2:CreateVpc").count(), 3);
}

/// Every answer lost: the step fails, but the intent written before the call stays in the
/// ledger, and `down` finds the VPC by its tags and deletes it.
#[tokio::test]
async fn the_intent_is_written_first_so_down_finds_what_a_lost_answer_made() {
    let fake = Fake::new();
    fake.lose_after.store(1, Ordering::SeqCst);
    fake.throttle.store(0, Ordering::SeqCst);
    let (dir, w) = chapter("- id: only\n  call: ec2:CreateVpc\n  with: { CidrBlock: 10.1.0.0/16 }\n");
    let mut e = engine(&fake, dir.path());
    // One attempt: the lost answer is final for the run.
    e.pacing.attempts = 1;
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].status, Status::Failed);
    let msg = r.steps[0].message.clone().unwrap_or_default();
    assert!(msg.contains("its answer was lost, so it may have happened"), "{msg}");
    assert_eq!(vpc_count(&fake), 1);
    let ledger = Ledger::open(dir.path(), fake.target()).unwrap();
    let pending = ledger.outstanding().unwrap();
    assert!(matches!(&pending[..], [Pending::Intent(i)] if i.call == "ec2:CreateVpc" && i.tag_step == "1/only"), "{pending:?}");
    let e = engine(&fake, dir.path());
    let d = e.down("t", None).await;
    assert_eq!((d.undone, d.errors.len()), (1, 0), "{d:?}");
    assert_eq!(vpc_count(&fake), 0, "down found it by its tags");
    assert!(ledger.outstanding().unwrap().is_empty(), "the intent is resolved");
    // A refused create certainly did nothing: its intent is closed at once.
    let (dir, w) = chapter("- id: s\n  call: ec2:CreateSubnet\n  with: { VpcId: vpc-1, CidrBlock: 10.9.0.0/24 }\n");
    let e = engine(&fake, dir.path());
    e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(Ledger::open(dir.path(), fake.target()).unwrap().outstanding().unwrap().is_empty());
}

/// A lost answer to a step with its own `cleanup: {call: ...}`: the clean-up was rendered into
/// the intent before the call, and `down` runs it.
#[tokio::test]
async fn a_lost_answer_with_a_custom_cleanup_is_cleaned_up_by_it() {
    let fake = Fake::new();
    fake.lose_after.store(1, Ordering::SeqCst);
    let (dir, w) = chapter(
        "- id: boot\n  call: ec2:RebootInstances\n  with: { InstanceIds: [ i-1 ] }\n  cleanup: { call: ec2:TerminateInstances, with: { InstanceIds: [ i-1 ] } }\n",
    );
    let mut e = engine(&fake, dir.path());
    e.pacing.attempts = 1;
    assert_eq!(e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await.steps[0].status, Status::Failed);
    let d = engine(&fake, dir.path()).down("t", None).await;
    assert_eq!((d.undone, d.errors.len()), (1, 0), "{d:?}");
    assert_eq!(fake.params_of("ec2:TerminateInstances"), [json!({"InstanceIds": ["i-1"]})]);
}

/// A create that takes a client token keeps one token across every retry of the step.
#[tokio::test]
async fn a_client_token_is_set_once_per_step_and_kept_across_retries() {
    let fake = Fake::new();
    fake.throttle.store(2, Ordering::SeqCst);
    let (dir, w) = chapter("- id: vm\n  call: ec2:RunInstances\n  with: { ImageId: ami-1 }\n");
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    let tokens: Vec<Value> = fake.params_of("ec2:RunInstances").iter().map(|p| p["ClientToken"].clone()).collect();
    assert_eq!(tokens.len(), 3);
    assert!(tokens[0].as_str().is_some_and(|t| t.starts_with("labrun-run-1-")), "{tokens:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

/// Throttling is retried as many times as the pacing allows, by the engine alone.
#[tokio::test]
async fn throttling_is_retried_a_bounded_number_of_times() {
    let fake = Fake::new();
    fake.throttle.store(u32::MAX, Ordering::SeqCst);
    let (dir, w) = chapter(CREATE_AND_FIND);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].status, Status::Failed);
    assert_eq!(fake.calls().len(), 5, "exactly `attempts` attempts");
}

/// Right after a create, a describe by id may answer NotFound: retried while building, the
/// answer itself in check mode.
#[tokio::test]
async fn not_found_is_eventual_consistency_while_building_and_the_answer_in_check_mode() {
    let yaml = format!(
        "{CREATE_AND_FIND}- id: by-id\n  call: ec2:DescribeVpcs\n  with: {{ VpcIds: [ \"{{{{ steps.create.id }}}}\" ] }}\n  expect: {{ \"length(Vpcs)\": 1 }}\n"
    );
    let fake = Fake::new();
    fake.not_yet.store(3, Ordering::SeqCst);
    let (dir, w) = chapter(&yaml);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    assert_eq!(fake.params_of("ec2:DescribeVpcs").iter().filter(|p| p["VpcIds"].is_array()).count(), 4, "three NotFound, then found");
    let (dir, w) = chapter("- id: by-id\n  call: ec2:DescribeVpcs\n  with: { VpcIds: [ vpc-1 ] }\n");
    let e = engine(&fake, dir.path());
    fake.not_yet.store(1, Ordering::SeqCst);
    let r = e.chapter(&w, &w.chapters[0], Mode::Check, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].status, Status::Failed, "{r:#?}");
    assert!(r.steps[0].message.as_deref().unwrap_or_default().contains("InvalidVpcID.NotFound"));
}

/// Ctrl-C during a long wait returns at once, not after the poll interval.
#[tokio::test]
async fn cancelling_stops_a_long_wait_at_once() {
    let fake = Fake::new();
    fake.pending_polls.store(u32::MAX, Ordering::SeqCst);
    let (dir, w) = chapter(&CREATE_AND_FIND.replace("until:", "timeout: 1h\n  interval: 10m\n  until:"));
    let e = engine(&fake, dir.path());
    let cancel = e.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let r = e.run(&w, &[0], true).await;
    assert!(started.elapsed() < Duration::from_secs(5), "stopped within the wait, not after 10 minutes");
    assert!(r.interrupted);
    assert_eq!(r.chapters[0].steps[1].message.as_deref(), Some("interrupted while waiting"));
    let ledger = Ledger::open(dir.path(), fake.target()).unwrap();
    assert_eq!(ledger.outstanding().unwrap().len(), 1, "the VPC made before the wait is recorded");
}

/// What a run built as a prerequisite of the addressed chapters is undone by `down` of them.
#[tokio::test]
async fn down_of_the_addressed_chapters_undoes_their_prerequisites_too() {
    let fake = Fake::new();
    let (dir, w) = chapter(CREATE_AND_FIND);
    let mut e = engine(&fake, dir.path());
    e.selection = vec!["9.1".into()];
    assert!(!e.chapter(&w, &w.chapters[0], Mode::Run, Role::Prerequisite, Reporting::Observed).await.failed());
    assert_eq!(e.down("t", Some(&["4".to_string()])).await.undone, 0, "another chapter's down leaves it");
    let d = e.down("t", Some(&["9.1".to_string()])).await;
    assert_eq!((d.undone, d.errors.len()), (1, 0), "{d:?}");
    assert_eq!(vpc_count(&fake), 0);
}

/// `for_each` runs a few items at once, never all of them, and refuses absurd lists.
#[tokio::test]
async fn for_each_is_bounded_in_concurrency_and_size() {
    let fake = Fake::new();
    fake.delay_ms.store(20, Ordering::SeqCst);
    let items: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    let yaml = format!(
        "- id: many\n  call: ec2:DescribeVpcs\n  for_each: {items:?}\n  with: {{ Filters: [ {{ Name: \"tag:Name\", Values: [ \"{{{{ item }}}}\" ] }} ] }}\n"
    );
    let (dir, w) = chapter(&yaml);
    let e = engine(&fake, dir.path());
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert!(!r.failed(), "{r:#?}");
    let most = fake.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=labrun_exec::engine::FOR_EACH_CONCURRENCY as u32).contains(&most), "{most} calls at once");

    let fake = Fake::new();
    let (dir, w) = chapter("- id: huge\n  call: ec2:DescribeVpcs\n  for_each: \"{{ vars.names }}\"\n");
    let mut e = engine(&fake, dir.path());
    e.var_overrides.insert("names".into(), Value::Array((0..1001).map(|i| json!(i)).collect()));
    let r = e.chapter(&w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Observed).await;
    assert_eq!(r.steps[0].message.as_deref(), Some("`for_each` gave 1001 items; a step may loop over at most 1000"));
    assert!(fake.calls().is_empty());
}
