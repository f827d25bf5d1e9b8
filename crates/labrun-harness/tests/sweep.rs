//! The tag sweep against LocalStack: one resource of each kind labrun tags, created through
//! catalog operations in a fresh account, is swept with its dependents (role policies and
//! profile membership, access keys, bucket objects); untagged and `labrun:cleanup=none`
//! resources, and those of other chapters, stay.

use labrun_aws::{AwsBackend, Connect};
use labrun_exec::Backend;
use labrun_exec::sweep::{SweepScope, sweep};
use labrun_harness::inventory;
use serde_json::{Value, json};

const WORKSHOP: &str = "sweep-test";
const REGION: &str = "ap-southeast-1";

async fn call(b: &dyn Backend, op: &str, params: Value) -> Result<Value, labrun_exec::CallError> {
    let o = labrun_lab::catalog::operation(op).unwrap_or_else(|| panic!("{op} is not in the catalog"));
    b.call(o, &params).await
}

async fn must(b: &dyn Backend, op: &str, params: Value) -> Value {
    call(b, op, params.clone()).await.unwrap_or_else(|e| panic!("{op} {params}: {e}"))
}

/// The tags labrun puts on a create.
fn tags(chapter: &str, run: &str, keep: bool) -> Value {
    let mut t = vec![
        json!({"Key": "labrun:workshop", "Value": WORKSHOP}),
        json!({"Key": "labrun:chapter", "Value": chapter}),
        json!({"Key": "labrun:run", "Value": run}),
    ];
    if keep {
        t.push(json!({"Key": "labrun:cleanup", "Value": "none"}));
    }
    Value::Array(t)
}

fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list].as_array().into_iter().flatten().filter_map(|i| i[field].as_str()).map(str::to_string).collect()
}

const TRUST: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const SSM_CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

#[test]
fn the_sweep_deletes_what_is_tagged_in_scope_and_leaves_the_rest() {
    let endpoint = labrun_harness::emulator::for_tests().endpoint.clone();
    let account = format!("{:012}", 100_000_000_000u64 + rand::random::<u64>() % 800_000_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(&endpoint, &account));
}

async fn run(endpoint: &str, account: &str) {
    let backend = AwsBackend::connect(Connect::emulator(endpoint, REGION, Some(account))).await.unwrap();
    let b: &dyn Backend = &backend;
    let before = inventory::take(b, &[]).await.unwrap();

    // In scope: chapter 2, or chapter 3 as run `run-b` built it for chapter 2.
    let ch2 = tags("2", "run-a", false);
    must(b, "iam:CreateRole", json!({"RoleName": "sw-role", "AssumeRolePolicyDocument": TRUST, "Tags": ch2})).await;
    must(b, "iam:AttachRolePolicy", json!({"RoleName": "sw-role", "PolicyArn": SSM_CORE})).await;
    must(b, "iam:CreateInstanceProfile", json!({"InstanceProfileName": "sw-profile", "Tags": ch2})).await;
    must(b, "iam:AddRoleToInstanceProfile", json!({"InstanceProfileName": "sw-profile", "RoleName": "sw-role"})).await;
    must(b, "iam:CreateUser", json!({"UserName": "sw-user", "Tags": tags("3", "run-b", false)})).await;
    must(b, "iam:CreateAccessKey", json!({"UserName": "sw-user"})).await;
    must(b, "iam:AttachUserPolicy", json!({"UserName": "sw-user", "PolicyArn": READ_ONLY})).await;
    let bucket = format!("sw-bucket-{account}");
    must(b, "s3:CreateBucket", json!({"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": REGION}})).await;
    must(b, "s3:PutBucketTagging", json!({"Bucket": bucket, "Tagging": {"TagSet": ch2}})).await;
    for key in ["logs/a.log", "logs/b.log", "c.txt"] {
        must(b, "s3:PutObject", json!({"Bucket": bucket, "Key": key, "Body": "hello"})).await;
    }
    let content = json!({"schemaVersion": "2.2", "description": "sweep test", "mainSteps": [
        {"action": "aws:runShellScript", "name": "hello", "inputs": {"runCommand": ["echo hello"]}}]});
    must(b, "ssm:CreateDocument", json!({"Name": "sw-doc", "Content": content, "DocumentType": "Command", "Tags": ch2})).await;
    must(b, "ssm:PutParameter", json!({"Name": "/sw/param", "Value": "v", "Type": "String", "Tags": ch2})).await;
    let key =
        must(b, "ec2:CreateKeyPair", json!({"KeyName": "sw-key", "TagSpecifications": [{"ResourceType": "key-pair", "Tags": ch2}]})).await;
    let key_id = key["KeyPairId"].as_str().expect("a key pair id").to_string();
    let vpc =
        must(b, "ec2:CreateVpc", json!({"CidrBlock": "10.77.0.0/16", "TagSpecifications": [{"ResourceType": "vpc", "Tags": ch2}]})).await;
    let vpc_id = vpc["Vpc"]["VpcId"].as_str().expect("a VPC id").to_string();

    // Out of scope: untagged, kept, another chapter.
    must(b, "iam:CreateRole", json!({"RoleName": "sw-untagged", "AssumeRolePolicyDocument": TRUST})).await;
    must(b, "iam:CreateRole", json!({"RoleName": "sw-kept", "AssumeRolePolicyDocument": TRUST, "Tags": tags("2", "run-a", true)})).await;
    must(b, "ssm:PutParameter", json!({"Name": "/sw/kept", "Value": "v", "Type": "String", "Tags": tags("2", "run-a", true)})).await;
    must(b, "ssm:PutParameter", json!({"Name": "/sw/other", "Value": "v", "Type": "String", "Tags": tags("4", "run-c", false)})).await;
    let plain = format!("sw-plain-{account}");
    must(b, "s3:CreateBucket", json!({"Bucket": plain, "CreateBucketConfiguration": {"LocationConstraint": REGION}})).await;
    must(b, "s3:PutObject", json!({"Bucket": plain, "Key": "keep.txt", "Body": "stay"})).await;

    let scope = SweepScope { workshop: WORKSHOP.into(), chapters: Some(vec!["2".into()]), built_for: vec![("3".into(), "run-b".into())] };
    let report = sweep(b, &scope).await;
    assert!(report.failed.is_empty(), "failed: {:#?}\ndeleted: {:#?}", report.failed, report.deleted);
    let mut deleted = report.deleted.clone();
    deleted.sort();
    let mut expected = vec![
        format!("bucket {bucket}"),
        "iam-role sw-role".to_string(),
        "iam-user sw-user".to_string(),
        "instance-profile sw-profile".to_string(),
        format!("key-pair {key_id}"),
        "ssm-document sw-doc".to_string(),
        "ssm-parameter /sw/param".to_string(),
        format!("vpc {vpc_id}"),
    ];
    expected.sort();
    assert_eq!(deleted, expected);

    // Gone, as the service itself says.
    assert!(call(b, "iam:GetRole", json!({"RoleName": "sw-role"})).await.is_err());
    assert!(call(b, "iam:GetInstanceProfile", json!({"InstanceProfileName": "sw-profile"})).await.is_err());
    assert!(call(b, "iam:GetUser", json!({"UserName": "sw-user"})).await.is_err());
    assert!(call(b, "s3:HeadBucket", json!({"Bucket": bucket})).await.is_err());
    assert!(call(b, "ssm:GetDocument", json!({"Name": "sw-doc"})).await.is_err());
    assert!(call(b, "ssm:GetParameter", json!({"Name": "/sw/param"})).await.is_err());
    let keys = must(b, "ec2:DescribeKeyPairs", json!({})).await;
    assert!(!names(&keys, "KeyPairs", "KeyName").contains(&"sw-key".to_string()));
    let vpcs = must(b, "ec2:DescribeVpcs", json!({})).await;
    assert!(!names(&vpcs, "Vpcs", "VpcId").contains(&vpc_id));

    // What was out of scope is all that is left, and the untagged bucket still holds its object.
    let after = inventory::take(b, &[]).await.unwrap();
    let mut left = inventory::leaked(&before, &after);
    left.sort();
    let mut want = vec![
        format!("bucket {plain}"),
        "iam-role sw-kept".to_string(),
        "iam-role sw-untagged".to_string(),
        "ssm-parameter /sw/kept".to_string(),
        "ssm-parameter /sw/other".to_string(),
    ];
    want.sort();
    assert_eq!(left, want);
    let objects = must(b, "s3:ListObjectsV2", json!({"Bucket": plain})).await;
    assert_eq!(names(&objects, "Contents", "Key"), ["keep.txt"]);

    // A second sweep finds nothing to do.
    let again = sweep(b, &scope).await;
    assert!(again.deleted.is_empty() && again.failed.is_empty(), "{again:?}");
}
