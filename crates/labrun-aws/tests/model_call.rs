//! The model-driven call path against LocalStack: one operation per protocol family, made
//! with no typed binding, answered in the model's own member names.

use labrun_aws::{AwsBackend, Connect, ErrorKind};
use serde_json::{Value, json};

async fn backend() -> AwsBackend {
    let endpoint = &labrun_harness::emulator::for_tests().endpoint;
    // A fresh account per run, so names never collide with an earlier run's.
    let account = format!("{:012}", std::process::id() as u64 * 7919 % 1_000_000_000_000);
    AwsBackend::connect(Connect::emulator(endpoint, "ap-southeast-1", Some(&account))).await.unwrap()
}

fn s(v: &Value, path: &str) -> String {
    v.pointer(path).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {path} in {v}")).to_string()
}

#[tokio::test]
async fn json_protocols_ssm_and_sqs() {
    let b = backend().await;
    // awsJson 1.1
    b.call_model("ssm", "PutParameter", &json!({"Name": "/model/x", "Value": "hello", "Type": "String"})).await.unwrap();
    let p = b.call_model("ssm", "GetParameter", &json!({"Name": "/model/x"})).await.unwrap();
    assert_eq!(p["Parameter"]["Value"], "hello", "{p}");
    assert_eq!(p["Parameter"]["Version"], 1);
    assert!(p["Parameter"]["LastModifiedDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{p}");
    let err = b.call_model("ssm", "GetParameter", &json!({"Name": "/model/none"})).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::NotFound, "ParameterNotFound"), "{err:?}");
    // awsJson 1.0
    let q = b.call_model("sqs", "CreateQueue", &json!({"QueueName": "jobs", "Attributes": {"VisibilityTimeout": "40"}})).await.unwrap();
    let url = s(&q, "/QueueUrl");
    b.call_model("sqs", "SendMessage", &json!({"QueueUrl": url, "MessageBody": "hi"})).await.unwrap();
    let a = b.call_model("sqs", "GetQueueAttributes", &json!({"QueueUrl": url, "AttributeNames": ["All"]})).await.unwrap();
    assert_eq!(a["Attributes"]["VisibilityTimeout"], "40", "{a}");
    let m = b.call_model("sqs", "ReceiveMessage", &json!({"QueueUrl": url})).await.unwrap();
    assert_eq!(m["Messages"][0]["Body"], "hi", "{m}");
    // HTTP 400 with `ResourceNotFoundException` still means "not there" (undo of a deleted
    // resource counts as done).
    let err = b.call_model("secretsmanager", "GetSecretValue", &json!({"SecretId": "nope"})).await.unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::NotFound, "ResourceNotFoundException"), "{err:?}");
}

#[tokio::test]
async fn query_protocol_iam_and_sns() {
    let b = backend().await;
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let r = b
        .call_model(
            "iam",
            "CreateRole",
            &json!({"RoleName": "model-role", "AssumeRolePolicyDocument": doc, "Tags": [{"Key": "k", "Value": "v"}]}),
        )
        .await
        .unwrap();
    assert_eq!(s(&r, "/Role/RoleName"), "model-role");
    assert!(s(&r, "/Role/Arn").ends_with(":role/model-role"));
    let list = b.call_model("iam", "ListRoles", &json!({})).await.unwrap();
    assert!(list["Roles"].as_array().unwrap().iter().any(|r| r["RoleName"] == "model-role"), "{list}");
    let topic = b.call_model("sns", "CreateTopic", &json!({"Name": "alerts"})).await.unwrap();
    assert!(s(&topic, "/TopicArn").ends_with(":alerts"));
    let err = b.call_model("iam", "GetRole", &json!({"RoleName": "nope"})).await.unwrap_err();
    assert_eq!(err.code, "NoSuchEntity", "{err:?}");
}

#[tokio::test]
async fn rest_json_protocol_lambda() {
    let b = backend().await;
    let fns = b.call_model("lambda", "ListFunctions", &json!({})).await.unwrap();
    assert!(fns["Functions"].is_array(), "{fns}");
    let err = b.call_model("lambda", "GetFunction", &json!({"FunctionName": "nope"})).await.unwrap_err();
    assert_eq!(err.code, "ResourceNotFoundException", "{err:?}");
}

#[tokio::test]
async fn rest_xml_protocol_s3() {
    let b = backend().await;
    // Bucket names are global, across accounts too.
    let bucket = format!("model-bucket-{}", std::process::id());
    b.call_model("s3", "CreateBucket", &json!({"Bucket": bucket, "CreateBucketConfiguration": {"LocationConstraint": "ap-southeast-1"}}))
        .await
        .unwrap();
    b.call_model("s3", "PutObject", &json!({"Bucket": bucket, "Key": "a/b.txt", "Body": "aGVsbG8="})).await.unwrap();
    let list = b.call_model("s3", "ListObjectsV2", &json!({"Bucket": bucket})).await.unwrap();
    assert_eq!(list["Contents"][0]["Key"], "a/b.txt", "{list}");
    assert_eq!(list["KeyCount"], 1);
    let obj = b.call_model("s3", "GetObject", &json!({"Bucket": bucket, "Key": "a/b.txt"})).await.unwrap();
    assert_eq!(obj["Body"], "aGVsbG8=", "{obj}");
    assert_eq!(obj["ContentLength"], 5);
    let err = b.call_model("s3", "HeadBucket", &json!({"Bucket": "no-such-bucket-here"})).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
}

#[tokio::test]
async fn ec2_query_protocol() {
    let b = backend().await;
    let vpc = b
        .call_model(
            "ec2",
            "CreateVpc",
            &json!({"CidrBlock": "10.9.0.0/16", "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "m"}]}]}),
        )
        .await
        .unwrap();
    let id = s(&vpc, "/Vpc/VpcId");
    assert_eq!(vpc["Vpc"]["Tags"], json!([{"Key": "Name", "Value": "m"}]), "{vpc}");
    let d = b.call_model("ec2", "DescribeVpcs", &json!({"VpcIds": [id]})).await.unwrap();
    assert_eq!(d["Vpcs"][0]["CidrBlock"], "10.9.0.0/16", "{d}");
    let err = b.call_model("ec2", "DescribeVpcs", &json!({"VpcIds": ["vpc-00000000"]})).await.unwrap_err();
    assert_eq!(err.code, "InvalidVpcID.NotFound", "{err:?}");
    b.call_model("ec2", "DeleteVpc", &json!({"VpcId": id})).await.unwrap();
}
