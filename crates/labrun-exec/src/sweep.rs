//! The safety net after a ledger replay: find what is still tagged with this workshop's
//! chapters (or the prerequisites built for them) and delete it, dependents first. It covers what a lost or partial ledger
//! missed: EC2 resources, IAM instance profiles, roles and users, SSM documents and parameters,
//! and S3 buckets.
//!
//! A failing call never stops the sweep: a listing that fails is one `failed` line and the
//! other kinds go on; a delete that fails is one line naming the kind and id. The backend
//! already retries throttling and transient errors, so nothing here retries.

use crate::backend::{Backend, CallError, ErrorKind};
use labrun_lab::catalog;
use labrun_lab::vocab::{kind, tag as vtag};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What to sweep: resources tagged `labrun:workshop=<workshop>` whose `labrun:chapter` is one
/// of `chapters` (every chapter when `None`), or whose `(labrun:chapter, labrun:run)` is one
/// of `built_for`: a prerequisite that a run addressing those chapters built for them (the
/// ledger knows which; see `Ledger::built_for`).
#[derive(Debug, Clone, Default)]
pub struct SweepScope {
    pub workshop: String,
    pub chapters: Option<Vec<String>>,
    pub built_for: Vec<(String, String)>,
}

/// `kind id` lines: what was deleted, and what could not be (with the reason).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SweepReport {
    pub deleted: Vec<String>,
    pub failed: Vec<String>,
}

/// The one rule, over a `[{Key, Value}]` tag list: this workshop, in the chapters or runs of
/// the scope, and not marked `labrun:cleanup=none`. Anything that is not such a list is not ours.
pub fn in_scope(tags: &Value, scope: &SweepScope) -> bool {
    let tag = |key: &str| -> Option<&str> {
        tags.as_array()?.iter().find(|t| t.get("Key").and_then(Value::as_str) == Some(key))?.get("Value")?.as_str()
    };
    if tag(vtag::WORKSHOP) != Some(scope.workshop.as_str()) || tag(vtag::CLEANUP) == Some("none") {
        return false;
    }
    match &scope.chapters {
        None => true,
        Some(chapters) => {
            let (chapter, run) = (tag(vtag::CHAPTER), tag(vtag::RUN));
            chapter.is_some_and(|c| chapters.iter().any(|x| x == c))
                || scope.built_for.iter().any(|(c, r)| chapter == Some(c.as_str()) && run == Some(r.as_str()))
        }
    }
}

/// Deletes everything in `scope`, in dependency order. Never fails and never stops early.
pub async fn sweep(b: &dyn Backend, scope: &SweepScope) -> SweepReport {
    let mut r = SweepReport::default();
    ec2(b, scope, &mut r).await;
    instance_profiles(b, scope, &mut r).await;
    roles(b, scope, &mut r).await;
    users(b, scope, &mut r).await;
    ssm(b, scope, &mut r, kind::SSM_DOCUMENT, "Document").await;
    ssm(b, scope, &mut r, kind::SSM_PARAMETER, "Parameter").await;
    buckets(b, scope, &mut r).await;
    r
}

async fn call(b: &dyn Backend, name: &str, params: Value) -> Result<Value, CallError> {
    match catalog::operation(name) {
        Some(op) => b.call(op, &params).await,
        None => Err(CallError::new(ErrorKind::NotCallable, "UnknownOperation", format!("{name} is not in the catalog"))),
    }
}

/// A dependent that is already gone is nothing to do.
fn gone_ok(result: Result<Value, CallError>) -> Result<(), CallError> {
    match result {
        Err(e) if !crate::retry::already_undone(&e) => Err(e),
        _ => Ok(()),
    }
}

/// The strings at `field` of each item of the list at `pointer`; missing pieces are skipped.
fn strings(v: &Value, pointer: &str, field: Option<&str>) -> Vec<String> {
    let items = v.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .filter_map(|i| match field {
            Some(f) => i.get(f)?.as_str(),
            None => i.as_str(),
        })
        .map(str::to_string)
        .collect()
}

/// Records the outcome of deleting one resource: `Ok(false)` and NotFound mean it was gone.
fn record(r: &mut SweepReport, kind: &str, id: &str, result: Result<bool, CallError>) {
    match result {
        Ok(true) => r.deleted.push(format!("{kind} {id}")),
        Ok(false) => {}
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => r.failed.push(format!("{kind} {id}: {e}")),
    }
}

fn listing_failed(r: &mut SweepReport, kind: &str, op: &str, e: &CallError) {
    r.failed.push(format!("{kind}: could not list ({op}): {e}"));
}

/// Reads one resource's tags; `None` when it vanished meanwhile or could not be read (reported).
async fn tags_of(b: &dyn Backend, r: &mut SweepReport, kind: &str, id: &str, op: &str, params: Value, list: &str) -> Option<Value> {
    match call(b, op, params).await {
        Ok(v) => Some(v.get(list).cloned().unwrap_or(Value::Null)),
        // SSM says InvalidResourceId for a document or parameter that is no longer there.
        Err(e) if e.kind == ErrorKind::NotFound || e.code == "InvalidResourceId" => None,
        Err(e) => {
            r.failed.push(format!("{kind} {id}: could not read its tags ({op}): {e}"));
            None
        }
    }
}

// ---- EC2

/// Deletion order: what holds a reference goes before what it references.
const EC2_ORDER: &[&str] = &[
    kind::INSTANCE,
    kind::VPC_ENDPOINT,
    kind::KEY_PAIR,
    kind::ROUTE_TABLE,
    kind::INTERNET_GATEWAY,
    kind::SECURITY_GROUP,
    kind::SUBNET,
    kind::VPC,
];
const LABRUN_KEYS: &[&str] = &[vtag::WORKSHOP, vtag::CHAPTER, vtag::RUN, vtag::CLEANUP];

async fn ec2(b: &dyn Backend, scope: &SweepScope, r: &mut SweepReport) {
    let tags = match call(b, "ec2:DescribeTags", json!({"Filters": [{"Name": "key", "Values": LABRUN_KEYS}]})).await {
        Ok(v) => v,
        Err(e) => return listing_failed(r, "ec2", "ec2:DescribeTags", &e),
    };
    // DescribeTags answers one tag per line: gather each resource's tags into one list.
    let mut resources: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for t in tags.get("Tags").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let (Some(kind), Some(id)) = (t.get("ResourceType").and_then(Value::as_str), t.get("ResourceId").and_then(Value::as_str)) else {
            continue;
        };
        resources.entry((kind.to_string(), id.to_string())).or_default().push(t.clone());
    }
    let mut found: Vec<(String, String)> =
        resources.into_iter().filter(|(_, tags)| in_scope(&Value::Array(tags.clone()), scope)).map(|(k, _)| k).collect();
    found.retain(|(kind, _)| EC2_ORDER.contains(&kind.as_str()));
    found.sort_by_key(|(kind, _)| EC2_ORDER.iter().position(|k| k == kind));
    for (kind, id) in found {
        let result = delete_ec2(b, &kind, &id).await;
        record(r, &kind, &id, result);
    }
}

/// Deletes one EC2 resource; `Ok(false)` when it is already gone (a terminated instance, say).
async fn delete_ec2(b: &dyn Backend, resource: &str, id: &str) -> Result<bool, CallError> {
    match resource {
        kind::INSTANCE => {
            let d = call(b, "ec2:DescribeInstances", json!({"InstanceIds": [id]})).await?;
            let state = d.pointer("/Reservations/0/Instances/0/State/Name").and_then(Value::as_str).unwrap_or("terminated");
            if matches!(state, "terminated" | "shutting-down") {
                return Ok(false);
            }
            call(b, "ec2:TerminateInstances", json!({"InstanceIds": [id]})).await?;
        }
        kind::VPC_ENDPOINT => {
            let d = call(b, "ec2:DescribeVpcEndpoints", json!({"VpcEndpointIds": [id]})).await?;
            if matches!(d.pointer("/VpcEndpoints/0/State").and_then(Value::as_str), Some("deleted" | "deleting") | None) {
                return Ok(false);
            }
            call(b, "ec2:DeleteVpcEndpoints", json!({"VpcEndpointIds": [id]})).await?;
        }
        kind::KEY_PAIR => {
            // Tags can outlive a deleted key pair on some emulators: confirm it is there first.
            let d = call(b, "ec2:DescribeKeyPairs", json!({"KeyPairIds": [id]})).await?;
            let Some(pair) = d.pointer("/KeyPairs/0") else { return Ok(false) };
            // By name where known: LocalStack answers a delete by id with success and keeps the pair.
            let params = match pair.get("KeyName").and_then(Value::as_str) {
                Some(name) => json!({"KeyName": name}),
                None => json!({"KeyPairId": id}),
            };
            call(b, "ec2:DeleteKeyPair", params).await?;
        }
        kind::ROUTE_TABLE => {
            let d = call(b, "ec2:DescribeRouteTables", json!({"RouteTableIds": [id]})).await?;
            for a in d.pointer("/RouteTables/0/Associations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                if a.get("Main") != Some(&json!(true))
                    && let Some(aid) = a.get("RouteTableAssociationId").and_then(Value::as_str)
                {
                    gone_ok(call(b, "ec2:DisassociateRouteTable", json!({"AssociationId": aid})).await)?;
                }
            }
            call(b, "ec2:DeleteRouteTable", json!({"RouteTableId": id})).await?;
        }
        kind::INTERNET_GATEWAY => {
            let d = call(b, "ec2:DescribeInternetGateways", json!({"InternetGatewayIds": [id]})).await?;
            for vpc in strings(&d, "/InternetGateways/0/Attachments", Some("VpcId")) {
                gone_ok(call(b, "ec2:DetachInternetGateway", json!({"InternetGatewayId": id, "VpcId": vpc})).await)?;
            }
            call(b, "ec2:DeleteInternetGateway", json!({"InternetGatewayId": id})).await?;
        }
        kind::SECURITY_GROUP => {
            call(b, "ec2:DeleteSecurityGroup", json!({"GroupId": id})).await?;
        }
        kind::SUBNET => {
            call(b, "ec2:DeleteSubnet", json!({"SubnetId": id})).await?;
        }
        kind::VPC => {
            call(b, "ec2:DeleteVpc", json!({"VpcId": id})).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

// ---- IAM: list calls do not carry tags on AWS, so each entity's tags are read on their own.

async fn instance_profiles(b: &dyn Backend, scope: &SweepScope, r: &mut SweepReport) {
    const KIND: &str = kind::INSTANCE_PROFILE;
    let list = match call(b, "iam:ListInstanceProfiles", json!({})).await {
        Ok(v) => v,
        Err(e) => return listing_failed(r, KIND, "iam:ListInstanceProfiles", &e),
    };
    for profile in list.get("InstanceProfiles").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let Some(name) = profile.get("InstanceProfileName").and_then(Value::as_str) else { continue };
        let params = json!({"InstanceProfileName": name});
        let Some(tags) = tags_of(b, r, KIND, name, "iam:ListInstanceProfileTags", params, "Tags").await else { continue };
        if !in_scope(&tags, scope) {
            continue;
        }
        let roles = strings(profile, "/Roles", Some("RoleName"));
        let result = async {
            for role in roles {
                gone_ok(call(b, "iam:RemoveRoleFromInstanceProfile", json!({"InstanceProfileName": name, "RoleName": role})).await)?;
            }
            call(b, "iam:DeleteInstanceProfile", json!({"InstanceProfileName": name})).await.map(|_| true)
        }
        .await;
        record(r, KIND, name, result);
    }
}

async fn roles(b: &dyn Backend, scope: &SweepScope, r: &mut SweepReport) {
    const KIND: &str = kind::IAM_ROLE;
    let list = match call(b, "iam:ListRoles", json!({})).await {
        Ok(v) => v,
        Err(e) => return listing_failed(r, KIND, "iam:ListRoles", &e),
    };
    for role in list.get("Roles").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let Some(name) = role.get("RoleName").and_then(Value::as_str) else { continue };
        // Service-linked roles belong to AWS services: never ours, and not deletable this way.
        if role.get("Path").and_then(Value::as_str).is_some_and(|p| p.starts_with("/aws-service-role/")) {
            continue;
        }
        let Some(tags) = tags_of(b, r, KIND, name, "iam:ListRoleTags", json!({"RoleName": name}), "Tags").await else { continue };
        if in_scope(&tags, scope) {
            let result = delete_role(b, name).await;
            record(r, KIND, name, result);
        }
    }
}

async fn delete_role(b: &dyn Backend, name: &str) -> Result<bool, CallError> {
    let role = json!({"RoleName": name});
    let attached = call(b, "iam:ListAttachedRolePolicies", role.clone()).await?;
    for arn in strings(&attached, "/AttachedPolicies", Some("PolicyArn")) {
        gone_ok(call(b, "iam:DetachRolePolicy", json!({"RoleName": name, "PolicyArn": arn})).await)?;
    }
    let inline = call(b, "iam:ListRolePolicies", role.clone()).await?;
    for policy in strings(&inline, "/PolicyNames", None) {
        gone_ok(call(b, "iam:DeleteRolePolicy", json!({"RoleName": name, "PolicyName": policy})).await)?;
    }
    let profiles = call(b, "iam:ListInstanceProfilesForRole", role.clone()).await?;
    for profile in strings(&profiles, "/InstanceProfiles", Some("InstanceProfileName")) {
        gone_ok(call(b, "iam:RemoveRoleFromInstanceProfile", json!({"InstanceProfileName": profile, "RoleName": name})).await)?;
    }
    call(b, "iam:DeleteRole", role).await?;
    Ok(true)
}

async fn users(b: &dyn Backend, scope: &SweepScope, r: &mut SweepReport) {
    const KIND: &str = kind::IAM_USER;
    let list = match call(b, "iam:ListUsers", json!({})).await {
        Ok(v) => v,
        Err(e) => return listing_failed(r, KIND, "iam:ListUsers", &e),
    };
    for name in strings(&list, "/Users", Some("UserName")) {
        let Some(tags) = tags_of(b, r, KIND, &name, "iam:ListUserTags", json!({"UserName": name}), "Tags").await else { continue };
        if in_scope(&tags, scope) {
            let result = delete_user(b, &name).await;
            record(r, KIND, &name, result);
        }
    }
}

async fn delete_user(b: &dyn Backend, name: &str) -> Result<bool, CallError> {
    let user = json!({"UserName": name});
    let keys = call(b, "iam:ListAccessKeys", user.clone()).await?;
    for key in strings(&keys, "/AccessKeyMetadata", Some("AccessKeyId")) {
        gone_ok(call(b, "iam:DeleteAccessKey", json!({"UserName": name, "AccessKeyId": key})).await)?;
    }
    let attached = call(b, "iam:ListAttachedUserPolicies", user.clone()).await?;
    for arn in strings(&attached, "/AttachedPolicies", Some("PolicyArn")) {
        gone_ok(call(b, "iam:DetachUserPolicy", json!({"UserName": name, "PolicyArn": arn})).await)?;
    }
    let inline = call(b, "iam:ListUserPolicies", user.clone()).await?;
    for policy in strings(&inline, "/PolicyNames", None) {
        gone_ok(call(b, "iam:DeleteUserPolicy", json!({"UserName": name, "PolicyName": policy})).await)?;
    }
    call(b, "iam:DeleteUser", user).await?;
    Ok(true)
}

// ---- SSM

/// Documents (owned by this account) or parameters, by their tags.
async fn ssm(b: &dyn Backend, scope: &SweepScope, r: &mut SweepReport, kind: &str, resource_type: &str) {
    let (list_op, list_params, items, delete_op) = match resource_type {
        "Document" => {
            ("ssm:ListDocuments", json!({"Filters": [{"Key": "Owner", "Values": ["Self"]}]}), "/DocumentIdentifiers", "ssm:DeleteDocument")
        }
        _ => ("ssm:DescribeParameters", json!({}), "/Parameters", "ssm:DeleteParameter"),
    };
    let list = match call(b, list_op, list_params).await {
        Ok(v) => v,
        Err(e) => return listing_failed(r, kind, list_op, &e),
    };
    for name in strings(&list, items, Some("Name")) {
        let params = json!({"ResourceType": resource_type, "ResourceId": name});
        let Some(tags) = tags_of(b, r, kind, &name, "ssm:ListTagsForResource", params, "TagList").await else { continue };
        if in_scope(&tags, scope) {
            let result = call(b, delete_op, json!({"Name": name})).await.map(|_| true);
            record(r, kind, &name, result);
        }
    }
}

// ---- S3

async fn buckets(b: &dyn Backend, scope: &SweepScope, r: &mut SweepReport) {
    const KIND: &str = kind::BUCKET;
    let list = match call(b, "s3:ListBuckets", json!({})).await {
        Ok(v) => v,
        Err(e) => return listing_failed(r, KIND, "s3:ListBuckets", &e),
    };
    let region = b.target().region.clone();
    for bucket in list.get("Buckets").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let Some(name) = bucket.get("Name").and_then(Value::as_str) else { continue };
        // ListBuckets shows every region's buckets; the others belong to their region's sweep
        // (and on AWS answer this region's client with a redirect).
        if bucket.get("BucketRegion").and_then(Value::as_str).is_some_and(|other| other != region) {
            continue;
        }
        // An untagged bucket answers NoSuchTagSet (a NotFound): not ours.
        let Some(tags) = tags_of(b, r, KIND, name, "s3:GetBucketTagging", json!({"Bucket": name}), "TagSet").await else { continue };
        if in_scope(&tags, scope) {
            let result = delete_bucket(b, name).await;
            record(r, KIND, name, result);
        }
    }
}

/// Empties the bucket (every page of ListObjectsV2, as its paginator gives them), then deletes it.
async fn delete_bucket(b: &dyn Backend, name: &str) -> Result<bool, CallError> {
    let list = catalog::operation("s3:ListObjectsV2").expect("the catalog has s3:ListObjectsV2");
    let listed = crate::paginate::read_all(list, &json!({"Bucket": name}), |page: Value| async move { b.call(list, &page).await }).await?;
    let keys = strings(&listed, "/Contents", Some("Key"));
    for chunk in keys.chunks(1000) {
        let objects: Vec<Value> = chunk.iter().map(|k| json!({"Key": k})).collect();
        let out = call(b, "s3:DeleteObjects", json!({"Bucket": name, "Delete": {"Objects": objects, "Quiet": true}})).await?;
        let errors = out.get("Errors").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        if let Some(first) = errors.iter().find(|e| e.get("Code").and_then(Value::as_str) != Some("NoSuchKey")) {
            let field = |f: &str| first.get(f).and_then(Value::as_str).unwrap_or("?").to_string();
            return Err(CallError::new(
                ErrorKind::Client,
                field("Code"),
                format!("could not empty the bucket: {} object(s) refused, first {}: {}", errors.len(), field("Key"), field("Message")),
            ));
        }
    }
    call(b, "s3:DeleteBucket", json!({"Bucket": name})).await?;
    Ok(true)
}
