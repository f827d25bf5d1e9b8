//! The tag sweep against an in-memory cloud: which resources the scope rule takes, that
//! dependents go first (the fake refuses a delete while something still depends on it, as AWS
//! does), that a failing listing or delete of one kind does not stop the others, and that odd
//! responses do not panic. No AWS, no emulator.

use labrun_exec::sweep::{SweepScope, in_scope, sweep};
use labrun_exec::{Backend, CallError, ErrorKind, TargetInfo, TargetKind};
use labrun_lab::catalog::Operation;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

fn tags(pairs: &[(&str, &str)]) -> Value {
    Value::Array(pairs.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect())
}

/// Tags labrun puts on a create in workshop `ws`, chapter `chapter`, run `run`.
fn ours(chapter: &str, run: &str) -> Value {
    tags(&[("labrun:workshop", "ws"), ("labrun:chapter", chapter), ("labrun:run", run)])
}

fn target() -> TargetInfo {
    TargetInfo {
        kind: TargetKind::Emulator,
        endpoint: Some("http://fake".into()),
        account: "111111111111".into(),
        region: "ap-southeast-1".into(),
    }
}

#[derive(Default)]
struct Role {
    path: String,
    tags: Value,
    attached: BTreeSet<String>,
    inline: BTreeSet<String>,
}

#[derive(Default)]
struct User {
    tags: Value,
    keys: BTreeSet<String>,
    attached: BTreeSet<String>,
    inline: BTreeSet<String>,
}

#[derive(Default)]
struct Bucket {
    region: Option<&'static str>,
    tags: Option<Value>,
    objects: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    /// EC2: id → (resource type, tags, the VPC it sits in).
    ec2: BTreeMap<String, (String, Value, Option<String>)>,
    roles: BTreeMap<String, Role>,
    /// name → (tags, role names)
    profiles: BTreeMap<String, (Value, BTreeSet<String>)>,
    users: BTreeMap<String, User>,
    documents: BTreeMap<String, Value>,
    parameters: BTreeMap<String, Value>,
    buckets: BTreeMap<String, Bucket>,
    /// Listed but already deleted: its delete answers NotFound.
    ghost_documents: BTreeSet<String>,
    /// Listed but gone before its tags are read.
    ghost_parameters: BTreeSet<String>,
}

struct Fake {
    target: TargetInfo,
    state: Mutex<State>,
    calls: Mutex<Vec<(String, Value)>>,
    /// Operations that fail with a client error, optionally only for calls whose parameters
    /// mention this value.
    fail: Mutex<Vec<(String, Option<String>)>>,
}

fn err(kind: ErrorKind, code: &str) -> CallError {
    CallError::new(kind, code, format!("fake says {code}"))
}
fn not_found(code: &str) -> CallError {
    err(ErrorKind::NotFound, code)
}
fn conflict(code: &str) -> CallError {
    err(ErrorKind::Client, code)
}
fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

impl Fake {
    fn new(state: State) -> Self {
        Fake { target: target(), state: Mutex::new(state), calls: Mutex::new(Vec::new()), fail: Mutex::new(Vec::new()) }
    }
    fn fail(&self, op: &str, only: Option<&str>) {
        self.fail.lock().unwrap().push((op.to_string(), only.map(str::to_string)));
    }
    /// Position of the first call of `op` whose parameters contain `needle`.
    fn at(&self, op: &str, needle: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .position(|(n, p)| n == op && p.to_string().contains(needle))
            .unwrap_or_else(|| panic!("no {op} call about {needle}: {:?}", self.calls.lock().unwrap()))
    }
    fn called(&self, op: &str, needle: &str) -> bool {
        self.calls.lock().unwrap().iter().any(|(n, p)| n == op && p.to_string().contains(needle))
    }

    fn answer(&self, op: &str, p: &Value) -> Result<Value, CallError> {
        let mut st = self.state.lock().unwrap();
        let st = &mut *st;
        match op {
            // ---- EC2
            "ec2:DescribeTags" => {
                let keys: Vec<&str> = p["Filters"][0]["Values"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
                assert_eq!(p["Filters"][0]["Name"], "key");
                let mut out = Vec::new();
                for (id, (kind, tags, _)) in &st.ec2 {
                    for t in tags.as_array().unwrap().iter().filter(|t| keys.contains(&t["Key"].as_str().unwrap())) {
                        out.push(json!({"ResourceId": id, "ResourceType": kind, "Key": t["Key"], "Value": t["Value"]}));
                    }
                }
                Ok(json!({"Tags": out}))
            }
            "ec2:DeleteSubnet" => st.ec2.remove(&s(p, "SubnetId")).map(|_| json!({})).ok_or_else(|| not_found("InvalidSubnetID.NotFound")),
            "ec2:DeleteVpc" => {
                let id = s(p, "VpcId");
                if st.ec2.values().any(|(_, _, vpc)| vpc.as_deref() == Some(id.as_str())) {
                    return Err(conflict("DependencyViolation"));
                }
                st.ec2.remove(&id).map(|_| json!({})).ok_or_else(|| not_found("InvalidVpcID.NotFound"))
            }
            // ---- IAM roles
            "iam:ListRoles" => {
                Ok(json!({"Roles": st.roles.iter().map(|(n, r)| json!({"RoleName": n, "Path": r.path})).collect::<Vec<_>>()}))
            }
            "iam:ListRoleTags" => st.roles.get(&s(p, "RoleName")).map(|r| json!({"Tags": r.tags})).ok_or_else(|| not_found("NoSuchEntity")),
            "iam:ListAttachedRolePolicies" => st
                .roles
                .get(&s(p, "RoleName"))
                .map(|r| json!({"AttachedPolicies": r.attached.iter().map(|a| json!({"PolicyArn": a, "PolicyName": "P"})).collect::<Vec<_>>()}))
                .ok_or_else(|| not_found("NoSuchEntity")),
            "iam:DetachRolePolicy" => {
                let r = st.roles.get_mut(&s(p, "RoleName")).ok_or_else(|| not_found("NoSuchEntity"))?;
                r.attached.remove(&s(p, "PolicyArn")).then(|| json!({})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:ListRolePolicies" => {
                st.roles.get(&s(p, "RoleName")).map(|r| json!({"PolicyNames": r.inline})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:DeleteRolePolicy" => {
                let r = st.roles.get_mut(&s(p, "RoleName")).ok_or_else(|| not_found("NoSuchEntity"))?;
                r.inline.remove(&s(p, "PolicyName")).then(|| json!({})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:ListInstanceProfilesForRole" => {
                let role = s(p, "RoleName");
                let names: Vec<Value> = st
                    .profiles
                    .iter()
                    .filter(|(_, (_, roles))| roles.contains(&role))
                    .map(|(n, _)| json!({"InstanceProfileName": n}))
                    .collect();
                Ok(json!({"InstanceProfiles": names}))
            }
            "iam:DeleteRole" => {
                let name = s(p, "RoleName");
                let r = st.roles.get(&name).ok_or_else(|| not_found("NoSuchEntity"))?;
                if !r.attached.is_empty() || !r.inline.is_empty() || st.profiles.values().any(|(_, roles)| roles.contains(&name)) {
                    return Err(conflict("DeleteConflict"));
                }
                st.roles.remove(&name);
                Ok(json!({}))
            }
            // ---- IAM instance profiles
            "iam:ListInstanceProfiles" => Ok(json!({"InstanceProfiles": st.profiles.iter().map(|(n, (_, roles))| json!({
                "InstanceProfileName": n,
                "Roles": roles.iter().map(|r| json!({"RoleName": r})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>()})),
            "iam:ListInstanceProfileTags" => {
                st.profiles.get(&s(p, "InstanceProfileName")).map(|(t, _)| json!({"Tags": t})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:RemoveRoleFromInstanceProfile" => {
                let (_, roles) = st.profiles.get_mut(&s(p, "InstanceProfileName")).ok_or_else(|| not_found("NoSuchEntity"))?;
                roles.remove(&s(p, "RoleName")).then(|| json!({})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:DeleteInstanceProfile" => {
                let name = s(p, "InstanceProfileName");
                let (_, roles) = st.profiles.get(&name).ok_or_else(|| not_found("NoSuchEntity"))?;
                if !roles.is_empty() {
                    return Err(conflict("DeleteConflict"));
                }
                st.profiles.remove(&name);
                Ok(json!({}))
            }
            // ---- IAM users
            "iam:ListUsers" => Ok(json!({"Users": st.users.keys().map(|n| json!({"UserName": n})).collect::<Vec<_>>()})),
            "iam:ListUserTags" => st.users.get(&s(p, "UserName")).map(|u| json!({"Tags": u.tags})).ok_or_else(|| not_found("NoSuchEntity")),
            "iam:ListAccessKeys" => st
                .users
                .get(&s(p, "UserName"))
                .map(|u| json!({"AccessKeyMetadata": u.keys.iter().map(|k| json!({"AccessKeyId": k})).collect::<Vec<_>>()}))
                .ok_or_else(|| not_found("NoSuchEntity")),
            "iam:DeleteAccessKey" => {
                let u = st.users.get_mut(&s(p, "UserName")).ok_or_else(|| not_found("NoSuchEntity"))?;
                u.keys.remove(&s(p, "AccessKeyId")).then(|| json!({})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:ListAttachedUserPolicies" => st
                .users
                .get(&s(p, "UserName"))
                .map(|u| json!({"AttachedPolicies": u.attached.iter().map(|a| json!({"PolicyArn": a})).collect::<Vec<_>>()}))
                .ok_or_else(|| not_found("NoSuchEntity")),
            "iam:DetachUserPolicy" => {
                let u = st.users.get_mut(&s(p, "UserName")).ok_or_else(|| not_found("NoSuchEntity"))?;
                u.attached.remove(&s(p, "PolicyArn")).then(|| json!({})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:ListUserPolicies" => {
                st.users.get(&s(p, "UserName")).map(|u| json!({"PolicyNames": u.inline})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:DeleteUserPolicy" => {
                let u = st.users.get_mut(&s(p, "UserName")).ok_or_else(|| not_found("NoSuchEntity"))?;
                u.inline.remove(&s(p, "PolicyName")).then(|| json!({})).ok_or_else(|| not_found("NoSuchEntity"))
            }
            "iam:DeleteUser" => {
                let name = s(p, "UserName");
                let u = st.users.get(&name).ok_or_else(|| not_found("NoSuchEntity"))?;
                if !u.keys.is_empty() || !u.attached.is_empty() || !u.inline.is_empty() {
                    return Err(conflict("DeleteConflict"));
                }
                st.users.remove(&name);
                Ok(json!({}))
            }
            // ---- SSM
            "ssm:ListDocuments" => {
                assert_eq!(p, &json!({"Filters": [{"Key": "Owner", "Values": ["Self"]}]}));
                let names = st.documents.keys().chain(st.ghost_documents.iter()).map(|n| json!({"Name": n, "Owner": "111111111111"}));
                Ok(json!({"DocumentIdentifiers": names.collect::<Vec<_>>()}))
            }
            "ssm:DescribeParameters" => {
                let names = st.parameters.keys().chain(st.ghost_parameters.iter()).map(|n| json!({"Name": n}));
                Ok(json!({"Parameters": names.collect::<Vec<_>>()}))
            }
            "ssm:ListTagsForResource" => {
                let id = s(p, "ResourceId");
                let found = match p["ResourceType"].as_str() {
                    Some("Document") => st.documents.get(&id),
                    Some("Parameter") => st.parameters.get(&id),
                    other => panic!("tags of {other:?}"),
                };
                match found {
                    Some(t) => Ok(json!({"TagList": t})),
                    // A ghost document still answers with tags: only its delete finds it gone.
                    None if st.ghost_documents.contains(&id) => Ok(json!({"TagList": ours("2", "run-1")})),
                    // As SSM answers for a name that is gone: a client error, not a NotFound.
                    None => Err(conflict("InvalidResourceId")),
                }
            }
            "ssm:DeleteDocument" => {
                st.documents.remove(&s(p, "Name")).map(|_| json!({})).ok_or_else(|| not_found("InvalidDocument"))
            }
            "ssm:DeleteParameter" => {
                st.parameters.remove(&s(p, "Name")).map(|_| json!({})).ok_or_else(|| not_found("ParameterNotFound"))
            }
            // ---- S3: two keys a page, so emptying a bucket must follow continuation tokens.
            "s3:ListBuckets" => {
                let list = st.buckets.iter().map(|(n, b)| json!({"Name": n, "BucketRegion": b.region.unwrap_or("ap-southeast-1")}));
                Ok(json!({"Buckets": list.collect::<Vec<_>>()}))
            }
            "s3:GetBucketTagging" => match st.buckets.get(&s(p, "Bucket")) {
                None => Err(not_found("NoSuchBucket")),
                Some(Bucket { tags: None, .. }) => Err(not_found("NoSuchTagSet")),
                Some(Bucket { tags: Some(t), .. }) => Ok(json!({"TagSet": t})),
            },
            "s3:ListObjectsV2" => {
                let b = st.buckets.get(&s(p, "Bucket")).ok_or_else(|| not_found("NoSuchBucket"))?;
                let after = p["ContinuationToken"].as_str().unwrap_or("");
                let page: Vec<&String> = b.objects.iter().filter(|k| k.as_str() > after).take(2).collect();
                let more = b.objects.iter().any(|k| page.last().is_some_and(|l| k > *l));
                let mut out = json!({"Contents": page.iter().map(|k| json!({"Key": k})).collect::<Vec<_>>(), "IsTruncated": more});
                if more {
                    out["NextContinuationToken"] = json!(page.last().unwrap());
                }
                Ok(out)
            }
            "s3:DeleteObjects" => {
                let b = st.buckets.get_mut(&s(p, "Bucket")).ok_or_else(|| not_found("NoSuchBucket"))?;
                for o in p["Delete"]["Objects"].as_array().unwrap() {
                    b.objects.remove(&s(o, "Key"));
                }
                Ok(json!({}))
            }
            "s3:DeleteBucket" => {
                let name = s(p, "Bucket");
                let b = st.buckets.get(&name).ok_or_else(|| not_found("NoSuchBucket"))?;
                if !b.objects.is_empty() {
                    return Err(conflict("BucketNotEmpty"));
                }
                st.buckets.remove(&name);
                Ok(json!({}))
            }
            other => Err(err(ErrorKind::NotCallable, &format!("NotInFake {other}"))),
        }
    }
}

#[async_trait::async_trait]
impl Backend for Fake {
    fn target(&self) -> &TargetInfo {
        &self.target
    }
    async fn call(&self, op: &'static Operation, p: &Value) -> Result<Value, CallError> {
        self.calls.lock().unwrap().push((op.name.to_string(), p.clone()));
        let fails =
            self.fail.lock().unwrap().iter().any(|(o, only)| o == op.name && only.as_ref().is_none_or(|x| p.to_string().contains(x)));
        if fails {
            return Err(conflict("AccessDenied"));
        }
        self.answer(op.name, p)
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// One of each kind in scope (chapter 2, or chapter 3 as built by run `run-7`), and neighbours that are not.
fn world() -> State {
    let mut st = State::default();
    st.ec2.insert("vpc-in".into(), ("vpc".into(), ours("2", "run-1"), None));
    st.ec2.insert("subnet-in".into(), ("subnet".into(), ours("2", "run-1"), Some("vpc-in".into())));
    st.ec2.insert("vpc-other-workshop".into(), ("vpc".into(), tags(&[("labrun:workshop", "other"), ("labrun:chapter", "2")]), None));
    st.ec2.insert(
        "vpc-kept".into(),
        ("vpc".into(), tags(&[("labrun:workshop", "ws"), ("labrun:chapter", "2"), ("labrun:cleanup", "none")]), None),
    );
    let role = |t: Value| Role { path: "/".into(), tags: t, ..Role::default() };
    st.roles.insert(
        "role-in".into(),
        Role {
            attached: set(&["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]),
            inline: set(&["inline-1"]),
            ..role(ours("2", "run-1"))
        },
    );
    st.roles.insert("role-other-chapter".into(), role(ours("3", "run-1")));
    st.roles.insert("role-by-run".into(), role(ours("3", "run-7")));
    st.roles.insert("role-other-workshop".into(), role(tags(&[("labrun:workshop", "other"), ("labrun:chapter", "2")])));
    st.roles.insert("role-kept".into(), role(tags(&[("labrun:workshop", "ws"), ("labrun:chapter", "2"), ("labrun:cleanup", "none")])));
    st.roles.insert("role-untagged".into(), role(json!([])));
    st.roles.insert(
        "AWSServiceRoleForSupport".into(),
        Role { path: "/aws-service-role/support.amazonaws.com/".into(), ..role(ours("2", "r")) },
    );
    // The profile is in scope and holds the role; a kept profile also holds it.
    st.profiles.insert("profile-in".into(), (ours("2", "run-1"), set(&["role-in"])));
    st.profiles.insert("profile-kept".into(), (tags(&[("labrun:workshop", "ws"), ("labrun:cleanup", "none")]), set(&["role-in"])));
    st.users.insert(
        "user-in".into(),
        User {
            tags: ours("2", "run-1"),
            keys: set(&["AKIA1"]),
            attached: set(&["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
            inline: set(&["x"]),
        },
    );
    st.users.insert("user-other".into(), User { tags: ours("4", "run-2"), ..User::default() });
    st.documents.insert("doc-in".into(), ours("2", "run-1"));
    st.documents.insert("doc-untagged".into(), json!([]));
    st.ghost_documents.insert("doc-ghost".into());
    st.ghost_parameters.insert("/lab/param-ghost".into());
    st.parameters.insert("/lab/param-in".into(), ours("2", "run-1"));
    st.parameters.insert("/lab/param-kept".into(), tags(&[("labrun:workshop", "ws"), ("labrun:chapter", "2"), ("labrun:cleanup", "none")]));
    st.buckets.insert(
        "bucket-in".into(),
        Bucket { tags: Some(ours("2", "run-1")), objects: set(&["a", "b", "c", "d", "e"]), ..Bucket::default() },
    );
    st.buckets.insert("bucket-untagged".into(), Bucket { objects: set(&["z"]), ..Bucket::default() });
    st.buckets.insert("bucket-other".into(), Bucket { tags: Some(ours("5", "run-3")), ..Bucket::default() });
    // Another region's bucket belongs to that region's sweep.
    st.buckets.insert("bucket-elsewhere".into(), Bucket { region: Some("us-east-1"), tags: Some(ours("2", "run-1")), ..Bucket::default() });
    st
}

fn scope() -> SweepScope {
    SweepScope { workshop: "ws".into(), chapters: Some(vec!["2".into()]), built_for: vec![("3".into(), "run-7".into())] }
}

#[test]
fn the_scope_rule() {
    let sc = scope();
    assert!(in_scope(&ours("2", "run-1"), &sc), "chapter in scope");
    assert!(in_scope(&ours("3", "run-7"), &sc), "a prerequisite that run built for the chapters in scope");
    assert!(!in_scope(&ours("9", "run-7"), &sc), "the same run, a chapter it did not build for them");
    assert!(!in_scope(&ours("3", "run-8"), &sc), "the prerequisite chapter, built by another run");
    assert!(!in_scope(&ours("3", "run-1"), &sc), "other chapter, other run");
    assert!(!in_scope(&tags(&[("labrun:workshop", "other"), ("labrun:chapter", "2")]), &sc), "other workshop");
    assert!(!in_scope(&tags(&[("labrun:workshop", "ws"), ("labrun:chapter", "2"), ("labrun:cleanup", "none")]), &sc), "kept");
    assert!(!in_scope(&tags(&[("labrun:chapter", "2")]), &sc), "no workshop tag");
    let all = SweepScope { chapters: None, ..scope() };
    assert!(in_scope(&ours("anything", "x"), &all), "every chapter");
    assert!(in_scope(&tags(&[("labrun:workshop", "ws")]), &all), "every chapter, even without a chapter tag");
    assert!(!in_scope(&tags(&[("labrun:workshop", "ws"), ("labrun:cleanup", "none")]), &all), "kept even when sweeping all");
    // Odd shapes are simply not ours.
    for odd in [json!(null), json!({}), json!("x"), json!([1, null, {"Key": 5}, {"Key": "labrun:workshop"}])] {
        assert!(!in_scope(&odd, &all), "{odd}");
    }
}

#[tokio::test]
async fn every_kind_is_swept_dependents_first_and_the_rest_is_left() {
    let fake = Fake::new(world());
    let report = sweep(&fake, &scope()).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let deleted: BTreeSet<&str> = report.deleted.iter().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "subnet subnet-in",
        "vpc vpc-in",
        "instance-profile profile-in",
        "iam-role role-in",
        "iam-role role-by-run",
        "iam-user user-in",
        "ssm-document doc-in",
        "ssm-parameter /lab/param-in",
        "bucket bucket-in",
    ]);
    assert_eq!(deleted, expected);
    assert_eq!(report.deleted.len(), expected.len(), "each once: {:?}", report.deleted);

    let st = fake.state.lock().unwrap();
    assert_eq!(st.ec2.keys().collect::<Vec<_>>(), ["vpc-kept", "vpc-other-workshop"]);
    assert_eq!(
        st.roles.keys().collect::<Vec<_>>(),
        ["AWSServiceRoleForSupport", "role-kept", "role-other-chapter", "role-other-workshop", "role-untagged"]
    );
    assert_eq!(st.profiles.keys().collect::<Vec<_>>(), ["profile-kept"]);
    assert!(st.profiles["profile-kept"].1.is_empty(), "the swept role left the kept profile");
    assert_eq!(st.users.keys().collect::<Vec<_>>(), ["user-other"]);
    assert_eq!(st.documents.keys().collect::<Vec<_>>(), ["doc-untagged"]);
    assert_eq!(st.parameters.keys().collect::<Vec<_>>(), ["/lab/param-kept"]);
    assert_eq!(st.buckets.keys().collect::<Vec<_>>(), ["bucket-elsewhere", "bucket-other", "bucket-untagged"]);
    assert_eq!(st.buckets["bucket-untagged"].objects.len(), 1, "an untagged bucket is not emptied");
    drop(st);

    // Service-linked roles and other regions' buckets are not even read.
    assert!(!fake.called("iam:ListRoleTags", "AWSServiceRoleForSupport"));
    assert!(!fake.called("s3:GetBucketTagging", "bucket-elsewhere"));
    // Dependents first, within a resource...
    let delete_role = fake.at("iam:DeleteRole", "role-in");
    assert!(fake.at("iam:DetachRolePolicy", "role-in") < delete_role);
    assert!(fake.at("iam:DeleteRolePolicy", "role-in") < delete_role);
    assert!(fake.at("iam:RemoveRoleFromInstanceProfile", "profile-kept") < delete_role);
    assert!(fake.at("iam:RemoveRoleFromInstanceProfile", "profile-in") < fake.at("iam:DeleteInstanceProfile", "profile-in"));
    let delete_user = fake.at("iam:DeleteUser", "user-in");
    for op in ["iam:DeleteAccessKey", "iam:DetachUserPolicy", "iam:DeleteUserPolicy"] {
        assert!(fake.at(op, "user-in") < delete_user, "{op}");
    }
    assert!(fake.at("s3:ListObjectsV2", "\"ContinuationToken\":\"d\"") < fake.at("s3:DeleteObjects", "bucket-in"), "all pages listed");
    assert!(fake.at("s3:DeleteObjects", "bucket-in") < fake.at("s3:DeleteBucket", "bucket-in"));
    // ...and across kinds.
    let order = [
        ("ec2:DeleteSubnet", "subnet-in"),
        ("ec2:DeleteVpc", "vpc-in"),
        ("iam:DeleteInstanceProfile", "profile-in"),
        ("iam:DeleteRole", "role-in"),
        ("iam:DeleteUser", "user-in"),
        ("ssm:DeleteDocument", "doc-in"),
        ("ssm:DeleteParameter", "param-in"),
        ("s3:DeleteBucket", "bucket-in"),
    ];
    let positions: Vec<usize> = order.iter().map(|(op, id)| fake.at(op, id)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?} at {positions:?}");
    // The ghost document was already gone: nothing to do, nothing failed.
    assert!(fake.called("ssm:DeleteDocument", "doc-ghost"));
}

#[tokio::test]
async fn sweeping_every_chapter_takes_all_of_the_workshop_but_what_is_kept() {
    let fake = Fake::new(world());
    let report = sweep(&fake, &SweepScope { workshop: "ws".into(), chapters: None, built_for: Vec::new() }).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for gone in ["iam-role role-other-chapter", "iam-user user-other", "bucket bucket-other", "iam-role role-by-run"] {
        assert!(report.deleted.iter().any(|d| d == gone), "{gone}: {:?}", report.deleted);
    }
    let st = fake.state.lock().unwrap();
    assert!(st.roles.contains_key("role-kept") && st.roles.contains_key("role-other-workshop"));
    assert!(st.ec2.contains_key("vpc-kept") && st.parameters.contains_key("/lab/param-kept"));
}

#[tokio::test]
async fn a_failing_listing_or_delete_does_not_stop_the_others() {
    let fake = Fake::new(world());
    fake.fail("ec2:DescribeTags", None);
    fake.fail("iam:ListRoles", None);
    fake.fail("ssm:DeleteDocument", Some("doc-in"));
    fake.fail("iam:ListUserTags", Some("user-other"));
    fake.fail("iam:DeleteAccessKey", None);
    let report = sweep(&fake, &scope()).await;

    let failed = report.failed.join("\n");
    assert_eq!(report.failed.len(), 5, "{failed}");
    assert!(report.failed[0].starts_with("ec2: could not list (ec2:DescribeTags): AccessDenied"), "{failed}");
    assert!(failed.contains("iam-role: could not list (iam:ListRoles)"), "{failed}");
    assert!(failed.contains("iam-user user-other: could not read its tags (iam:ListUserTags)"), "{failed}");
    assert!(failed.contains("iam-user user-in: AccessDenied"), "{failed}");
    assert!(failed.contains("ssm-document doc-in: AccessDenied"), "{failed}");
    // Everything else still went.
    let deleted: BTreeSet<&str> = report.deleted.iter().map(String::as_str).collect();
    assert_eq!(deleted, BTreeSet::from(["instance-profile profile-in", "ssm-parameter /lab/param-in", "bucket bucket-in"]));
    let st = fake.state.lock().unwrap();
    assert!(st.ec2.contains_key("vpc-in") && st.roles.contains_key("role-in") && st.documents.contains_key("doc-in"));
    assert!(st.users.contains_key("user-in"), "a user whose key could not be deleted stays");
    assert!(!fake.called("iam:DeleteUser", "user-in"), "no DeleteUser after a failed dependent");
}

/// Answers every call with the same odd document: lists that are not lists, items that are
/// not objects, fields of the wrong type. The sweep must finish without panicking.
struct Odd {
    target: TargetInfo,
    answer: Value,
}

#[async_trait::async_trait]
impl Backend for Odd {
    fn target(&self) -> &TargetInfo {
        &self.target
    }
    async fn call(&self, _op: &'static Operation, _p: &Value) -> Result<Value, CallError> {
        Ok(self.answer.clone())
    }
}

#[tokio::test]
async fn odd_responses_do_not_panic() {
    let answers = [
        json!(null),
        json!({}),
        json!([1, 2]),
        json!({"Tags": "x", "Roles": {}, "Users": 5, "Buckets": null, "InstanceProfiles": [null], "Parameters": [{"Name": 1}]}),
        json!({
            "Tags": [null, 1, {"ResourceId": 3}, {"ResourceId": "vpc-1", "ResourceType": "vpc", "Key": "labrun:workshop", "Value": "ws"}],
            "Roles": [7, {"RoleName": "r", "Path": 5}], "Users": [{"UserName": "u"}], "InstanceProfiles": [{"InstanceProfileName": "p", "Roles": "no"}],
            "DocumentIdentifiers": [{"Name": "d"}], "Parameters": [{"Name": "n"}], "Buckets": [{"Name": "b", "BucketRegion": 1}],
            "TagList": [{"Key": "labrun:workshop", "Value": "ws"}], "TagSet": [{"Key": "labrun:workshop", "Value": "ws"}],
            "AttachedPolicies": [{"PolicyArn": null}], "PolicyNames": [1, "inline"], "AccessKeyMetadata": "x",
            "Contents": [{"Key": 1}, {"Key": "k"}], "IsTruncated": true, "NextContinuationToken": "same",
            "Errors": [{"Key": 1}],
            "Reservations": "x", "RouteTables": [{"Associations": [{"Main": "yes"}]}],
        }),
    ];
    for answer in answers {
        let odd = Odd { target: target(), answer: answer.clone() };
        let report = sweep(&odd, &SweepScope { workshop: "ws".into(), chapters: None, built_for: Vec::new() }).await;
        // Nothing to assert beyond finishing, except that lines name what they are about.
        for line in report.deleted.iter().chain(&report.failed) {
            assert!(!line.is_empty(), "{answer}");
        }
    }
}
