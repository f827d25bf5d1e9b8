//! Catalog operations built from AWS's service models (`labrun-models`).
//!
//! [`operation`] answers for every `service:Action` of an embedded model: a curated entry of
//! `catalog::OPERATIONS` is merged with its model (the model's full member list, the curated
//! types winning for the names the entry lists, which become `bound`); any other operation is
//! built from the model alone, with labrun's knowledge inferred:
//!
//! - **parameters**: every member of the input shape, typed from the model ([`Ty`]). Recursive
//!   shapes (DynamoDB's `AttributeValue`) are cut with `Ty::Any` where a shape would contain
//!   itself, and nesting deeper than [`MAX_DEPTH`] is `Ty::Any` too, so building always ends.
//!   String members that carry a JSON document (names ending in `PolicyDocument` or `Policy`,
//!   and [`DOCUMENT_MEMBERS`]) are `Ty::Doc`: a lab may write the policy or state machine as a
//!   mapping, which labrun serialises, instead of a JSON string inside YAML.
//! - **read_only**: from the verb ([`READ_VERBS`]), except [`NOT_READS`] (reads by name that
//!   mint credentials or tokens). This is what `check` mode may call.
//! - **client_token**: the input member the model marks `idempotencyToken`.
//! - **tagging**: for creates ([`TAGGING_VERBS`]): EC2 `TagSpecifications` (resource type from
//!   the operation's noun), a list of key/value structures or a string map named `Tags`,
//!   `TagList` or `tags`.
//! - **undo**: the curated [`UNDO_TABLE`] first, then the inverse verb ([`UNDO_VERBS`]) when the
//!   model has that operation and every required member of its input can be computed from the
//!   call: a request member of the same name, a response member of the same name at the top
//!   level or one structure down, `fooId`/`fooArn` from the response's `id`/`Arn` when `foo` is
//!   the operation's noun, `FooIds` from one `FooId`, and `TagKeys` from the request's tags.
//! - **nothing_to_undo**: reads, the verbs of [`NOTHING_TO_UNDO_VERBS`] (removals, and calls that
//!   leave nothing behind), and the table's deliberate `None`s.
//! - **secrets**: response members whose shape is `sensitive`, as dotted paths through
//!   structures and lists (`Functions[].Environment`); members inside maps are not covered.
//! - **already**: the operation's modelled errors whose names contain `AlreadyExist` (the shape
//!   name and the wire code where the model gives one), plus [`ALREADY_EXTRA`].
//!
//! Everything built is leaked (`Box::leak`) and kept for the process: a process builds the
//! operations its workshop uses, once each, and only the services those name are parsed.

use crate::catalog::{Lookup, OPERATIONS, Operation, Param, Tagging, Ty, Undo};
use labrun_models::{Member, Service, Shape};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// Shapes nested deeper than this are `Ty::Any` (no model comes close outside recursion).
pub const MAX_DEPTH: usize = 32;
/// At most this many shapes are converted for one operation; the rest is `Ty::Any`.
const MAX_SHAPES_PER_BUILD: usize = 100_000;
const NO_CUT: usize = usize::MAX;
/// The most shapes one build converted (tests check the bound is never what stops a build).
#[cfg(test)]
static LARGEST_BUILD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Verbs of operations that only read (a prefix followed by a capital or nothing).
pub const READ_VERBS: &[&str] = &[
    "Describe",
    "Get",
    "List",
    "Head",
    "Query",
    "Scan",
    "BatchGet",
    "BatchDescribe",
    "BatchCheck",
    "TransactGet",
    "Search",
    "Lookup",
    "Select",
    "Filter",
    "Simulate",
    "Validate",
    "Estimate",
    "Check",
    "Download",
    "Decode",
];

/// Named like reads, but each mints credentials or a token: never called by `check` (and
/// nothing to undo: the credentials expire).
pub const NOT_READS: &[&str] = &[
    "sts:GetSessionToken",
    "sts:GetFederationToken",
    "sts:GetDelegatedAccessToken",
    "sts:GetWebIdentityToken",
    "ecr:GetAuthorizationToken",
    "cognito-idp:GetTokensFromRefreshToken",
    "ssm:GetAccessToken",
];

/// Changes whose effect needs no undo: they remove or stop something, or leave nothing behind
/// that labrun could take back (an invocation, a message, a computation, credentials).
pub const NOTHING_TO_UNDO_VERBS: &[&str] = &[
    // removals and stops
    "Delete",
    "BatchDelete",
    "Remove",
    "Detach",
    "Disassociate",
    "Deregister",
    "Release",
    "Revoke",
    "Disable",
    "Deactivate",
    "Unsubscribe",
    "Untag",
    "Unassign",
    "Unmonitor",
    "Unlabel",
    "Stop",
    "BatchStop",
    "Terminate",
    "Cancel",
    "Abort",
    "Purge",
    "Reject",
    "Withdraw",
    "Deprovision",
    "Retire",
    "Deauthorize",
    "Disconnect",
    "Reboot",
    "Forget",
    "Schedule",
    "Flush",
    "Reset",
    "Global",
    // calls that leave nothing behind
    "Invoke",
    "Publish",
    "Send",
    "Receive",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "Generate",
    "Sign",
    "Verify",
    "Assume",
    "Test",
    "Initiate",
    "Respond",
    "Signal",
    "Record",
    "Submit",
    "Discover",
    "Confirm",
    "Resend",
    "Forgot",
];

/// A change and the verb of its inverse (`CreateQueue` → `DeleteQueue`).
pub const UNDO_VERBS: &[(&str, &str)] = &[
    ("Create", "Delete"),
    ("Put", "Delete"),
    ("Add", "Remove"),
    ("Attach", "Detach"),
    ("Associate", "Disassociate"),
    ("Register", "Deregister"),
    ("Allocate", "Release"),
    ("Authorize", "Revoke"),
    ("Enable", "Disable"),
    ("Subscribe", "Unsubscribe"),
    ("Tag", "Untag"),
    ("Start", "Stop"),
    ("Import", "Delete"),
    ("Copy", "Delete"),
    ("Upload", "Delete"),
];

/// Undos the inference gets wrong or cannot find, and changes that deliberately have none
/// (`None`: nothing needs undoing, and validation does not ask for a `cleanup:`). Each undo is
/// `(operation, JMESPath over {request, response})`.
pub const UNDO_TABLE: &[(&str, Option<(&str, &str)>)] = &[
    ("lambda:CreateFunction", Some(("lambda:DeleteFunction", "{FunctionName: request.FunctionName}"))),
    ("dynamodb:CreateTable", Some(("dynamodb:DeleteTable", "{TableName: request.TableName}"))),
    // Items go with their table (CreateTable's undo deletes it), and a put may overwrite an
    // item that a delete would not bring back.
    ("dynamodb:PutItem", None),
    ("dynamodb:UpdateItem", None),
    ("dynamodb:BatchWriteItem", None),
    ("dynamodb:TransactWriteItems", None),
    ("dynamodb:ExecuteStatement", None),
    ("logs:PutLogEvents", None),
    ("kinesis:PutRecord", None),
    ("kinesis:PutRecords", None),
    ("events:PutEvents", None),
    ("sqs:CreateQueue", Some(("sqs:DeleteQueue", "{QueueUrl: response.QueueUrl}"))),
    ("sns:CreateTopic", Some(("sns:DeleteTopic", "{TopicArn: response.TopicArn}"))),
    // An email subscription answers `pending confirmation` until confirmed; unsubscribing that
    // fails, and the subscription lapses by itself.
    ("sns:Subscribe", Some(("sns:Unsubscribe", "{SubscriptionArn: response.SubscriptionArn}"))),
    ("apigateway:CreateRestApi", Some(("apigateway:DeleteRestApi", "{restApiId: response.id}"))),
    ("apigateway:CreateResource", Some(("apigateway:DeleteResource", "{restApiId: request.restApiId, resourceId: response.id}"))),
    (
        "apigateway:PutMethod",
        Some(("apigateway:DeleteMethod", "{restApiId: request.restApiId, resourceId: request.resourceId, httpMethod: request.httpMethod}")),
    ),
    (
        "apigateway:PutIntegration",
        Some((
            "apigateway:DeleteIntegration",
            "{restApiId: request.restApiId, resourceId: request.resourceId, httpMethod: request.httpMethod}",
        )),
    ),
    (
        "apigateway:PutMethodResponse",
        Some((
            "apigateway:DeleteMethodResponse",
            "{restApiId: request.restApiId, resourceId: request.resourceId, httpMethod: request.httpMethod, statusCode: request.statusCode}",
        )),
    ),
    ("apigateway:CreateDeployment", Some(("apigateway:DeleteDeployment", "{restApiId: request.restApiId, deploymentId: response.id}"))),
    ("apigatewayv2:CreateApi", Some(("apigatewayv2:DeleteApi", "{ApiId: response.ApiId}"))),
    ("logs:CreateLogGroup", Some(("logs:DeleteLogGroup", "{logGroupName: request.logGroupName}"))),
    // A KMS key cannot be deleted at once: the shortest wait AWS allows is 7 days.
    ("kms:CreateKey", Some(("kms:ScheduleKeyDeletion", "{KeyId: response.KeyMetadata.KeyId, PendingWindowInDays: `7`}"))),
    // Without ForceDeleteWithoutRecovery the name stays taken for the recovery window, and a
    // second run of the lab could not create it again.
    ("secretsmanager:CreateSecret", Some(("secretsmanager:DeleteSecret", "{SecretId: response.ARN, ForceDeleteWithoutRecovery: `true`}"))),
    ("cloudformation:CreateStack", Some(("cloudformation:DeleteStack", "{StackName: response.StackId}"))),
    ("ecs:CreateCluster", Some(("ecs:DeleteCluster", "{cluster: response.cluster.clusterArn}"))),
    ("ecs:CreateService", Some(("ecs:DeleteService", "{cluster: request.cluster, service: response.service.serviceArn, force: `true`}"))),
    ("ecs:RegisterTaskDefinition", Some(("ecs:DeregisterTaskDefinition", "{taskDefinition: response.taskDefinition.taskDefinitionArn}"))),
    // Images pushed during the lab go with the repository.
    (
        "ecr:CreateRepository",
        Some(("ecr:DeleteRepository", "{repositoryName: request.repositoryName, registryId: request.registryId, force: `true`}")),
    ),
    ("elbv2:CreateLoadBalancer", Some(("elbv2:DeleteLoadBalancer", "{LoadBalancerArn: response.LoadBalancers[0].LoadBalancerArn}"))),
    ("elbv2:CreateTargetGroup", Some(("elbv2:DeleteTargetGroup", "{TargetGroupArn: response.TargetGroups[0].TargetGroupArn}"))),
    ("elbv2:CreateListener", Some(("elbv2:DeleteListener", "{ListenerArn: response.Listeners[0].ListenerArn}"))),
    // Without a final snapshot or SkipFinalSnapshot, AWS refuses the delete.
    (
        "rds:CreateDBInstance",
        Some((
            "rds:DeleteDBInstance",
            "{DBInstanceIdentifier: request.DBInstanceIdentifier, SkipFinalSnapshot: `true`, DeleteAutomatedBackups: `true`}",
        )),
    ),
    (
        "autoscaling:CreateAutoScalingGroup",
        Some(("autoscaling:DeleteAutoScalingGroup", "{AutoScalingGroupName: request.AutoScalingGroupName, ForceDelete: `true`}")),
    ),
    (
        "events:PutTargets",
        Some(("events:RemoveTargets", "{Rule: request.Rule, EventBusName: request.EventBusName, Ids: request.Targets[].Id}")),
    ),
    ("cloudwatch:PutMetricAlarm", Some(("cloudwatch:DeleteAlarms", "{AlarmNames: [request.AlarmName]}"))),
    ("cloudwatch:PutCompositeAlarm", Some(("cloudwatch:DeleteAlarms", "{AlarmNames: [request.AlarmName]}"))),
    ("cloudwatch:PutMetricData", None),
    // One task: a RunTask of several stops the first only (declare a `cleanup:` for more).
    ("ecs:RunTask", Some(("ecs:StopTask", "{cluster: request.cluster, task: response.tasks[0].taskArn}"))),
    ("ec2:CreateImage", Some(("ec2:DeregisterImage", "{ImageId: response.ImageId}"))),
    ("athena:CreateWorkGroup", Some(("athena:DeleteWorkGroup", "{WorkGroup: request.Name, RecursiveDeleteOption: `true`}"))),
    ("kms:CreateGrant", Some(("kms:RevokeGrant", "{KeyId: request.KeyId, GrantId: response.GrantId}"))),
    (
        "autoscaling:PutScalingPolicy",
        Some(("autoscaling:DeletePolicy", "{AutoScalingGroupName: request.AutoScalingGroupName, PolicyName: request.PolicyName}")),
    ),
    (
        "autoscaling:PutScheduledUpdateGroupAction",
        Some((
            "autoscaling:DeleteScheduledAction",
            "{AutoScalingGroupName: request.AutoScalingGroupName, ScheduledActionName: request.ScheduledActionName}",
        )),
    ),
    ("events:PutPermission", Some(("events:RemovePermission", "{StatementId: request.StatementId, EventBusName: request.EventBusName}"))),
    ("lambda:PublishLayerVersion", Some(("lambda:DeleteLayerVersion", "{LayerName: request.LayerName, VersionNumber: response.Version}"))),
    ("cloudwatch:PutDashboard", Some(("cloudwatch:DeleteDashboards", "{DashboardNames: [request.DashboardName]}"))),
];

/// Verbs of calls that make something, so labrun adds its tags to them.
pub const TAGGING_VERBS: &[&str] = &["Create", "Run", "Allocate", "Import", "Copy", "Register", "Request", "Put", "Start"];

/// String members holding a JSON document besides `*PolicyDocument` and `*Policy`: given as a
/// mapping, labrun serialises them (`(service, member)`).
pub const DOCUMENT_MEMBERS: &[(&str, &str)] = &[
    ("stepfunctions", "definition"),
    ("stepfunctions", "input"),
    ("cloudformation", "TemplateBody"),
    ("events", "EventPattern"),
    ("ecr", "policyText"),
    ("ecr", "lifecyclePolicyText"),
];

/// Error codes that mean "it exists" after a lost answer, where the name does not say
/// `AlreadyExists`: DynamoDB's CreateTable answers `ResourceInUseException` for a table that
/// exists, Secrets Manager `ResourceExistsException`, Lambda `ResourceConflictException`.
pub const ALREADY_EXTRA: &[(&str, &str)] = &[
    ("dynamodb:CreateTable", "ResourceInUseException"),
    ("secretsmanager:CreateSecret", "ResourceExistsException"),
    ("lambda:CreateFunction", "ResourceConflictException"),
];

/// Members the models mark sensitive that are identifiers a lab needs in later steps (an app
/// client's id for `InitiateAuth`, a user's name) or plain text (a distribution's comment):
/// they are not masked.
pub const NOT_SECRETS: &[&str] = &["ClientId", "Username", "Comment"];

/// EC2 `TagSpecifications` resource types the operation's noun does not spell.
const EC2_RESOURCE_TYPES: &[(&str, &str)] = &[("AllocateAddress", "elastic-ip"), ("CreateFlowLogs", "vpc-flow-log")];

#[derive(Default)]
struct State {
    ops: HashMap<String, &'static Operation>,
    /// Per service: shape name → its type (only shapes whose type does not depend on where
    /// they were reached from, see [`Builder::shape`]).
    shapes: HashMap<&'static str, HashMap<String, &'static Ty>>,
    /// The address of a structure's member slice → its shape's name, for messages.
    names: HashMap<usize, &'static str>,
    responses: HashMap<&'static str, Option<&'static Ty>>,
    strings: HashSet<&'static str>,
}

fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(Default::default).lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn intern(&mut self, s: &str) -> &'static str {
        if let Some(x) = self.strings.get(s) {
            return x;
        }
        let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
        self.strings.insert(leaked);
        leaked
    }
}

/// `Describe` + `Vpcs`: true for `DescribeVpcs`, false for `Describer`.
fn has_verb(action: &str, verb: &str) -> bool {
    action
        .strip_prefix(verb)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

/// The action without Cognito's `Admin` prefix (`AdminCreateUser` is a `CreateUser`).
fn unprefixed(action: &str) -> &str {
    action.strip_prefix("Admin").filter(|r| r.starts_with(|c: char| c.is_ascii_uppercase())).unwrap_or(action)
}

fn verb_of<'v>(action: &str, verbs: &[&'v str]) -> Option<&'v str> {
    let action = unprefixed(action);
    verbs.iter().copied().filter(|v| has_verb(action, v)).max_by_key(|v| v.len())
}

/// Whether `service:action` only reads, judged by its name.
pub fn infer_read_only(service: &str, action: &str) -> bool {
    let name = format!("{service}:{action}");
    !NOT_READS.contains(&name.as_str()) && verb_of(action, READ_VERBS).is_some()
}

/// Finds an operation: curated (merged with its model) or built from the model.
pub fn operation(name: &str) -> Option<&'static Operation> {
    let mut st = state();
    if let Some(op) = st.ops.get(name) {
        return Some(op);
    }
    let curated = OPERATIONS.iter().find(|o| o.name == name);
    let built = match curated {
        Some(c) => merge(&mut st, c),
        None => {
            let (service, action) = name.split_once(':')?;
            derive(&mut st, service, action)?
        }
    };
    let leaked: &'static Operation = Box::leak(Box::new(built));
    st.ops.insert(name.to_string(), leaked);
    Some(leaked)
}

/// What the operation answers, typed from its model.
pub fn response(op: &Operation) -> Option<&'static Ty> {
    if op.synthetic {
        return None;
    }
    let mut st = state();
    if let Some(r) = st.responses.get(op.name) {
        return *r;
    }
    let name = st.intern(op.name);
    let ty = labrun_models::load(op.service()).ok().and_then(|svc| {
        let shape = svc.operations.get(op.action())?.output.as_ref()?.shape.clone();
        let service = st.intern(op.service());
        Some(Builder::new(&mut st, &svc, service).shape(&shape).0)
    });
    st.responses.insert(name, ty);
    ty
}

/// The model's name for a structure type built from a model (`Vpc`).
pub fn shape_name(fields: &[Param]) -> Option<&'static str> {
    if fields.is_empty() {
        return None;
    }
    state().names.get(&(fields.as_ptr() as usize)).copied()
}

/// Whether `service` is one labrun knows: an embedded model or the curated table's.
pub fn known_service(service: &str) -> bool {
    labrun_models::services().any(|s| s == service) || OPERATIONS.iter().any(|o| o.service() == service)
}

/// Every operation name of `service` (`service:Action`): the curated ones and the model's.
pub fn operation_names(service: &str) -> Vec<String> {
    let mut names: Vec<String> = OPERATIONS.iter().filter(|o| o.service() == service).map(|o| o.name.to_string()).collect();
    if let Ok(svc) = labrun_models::load(service) {
        let model: Vec<String> = svc.operations.keys().map(|a| format!("{service}:{a}")).filter(|n| !names.contains(n)).collect();
        names.extend(model);
    }
    names
}

/// The curated entry merged with its model: the model's full member list, the curated types
/// and required flags winning for the names the entry lists. Without a model (labrun's own
/// operations) the entry stays as written.
fn merge(st: &mut State, c: &'static Operation) -> Operation {
    let bound: &'static [&'static str] = Box::leak(c.params.iter().map(|p| p.name).collect::<Vec<_>>().into_boxed_slice());
    let plain = Operation { bound: Some(bound), ..*c };
    if c.synthetic {
        return plain;
    }
    let Ok(svc) = labrun_models::load(c.service()) else { return plain };
    let Some(input) = svc.operations.get(c.action()).and_then(|o| o.input.as_ref()).map(|r| r.shape.clone()) else { return plain };
    let service = st.intern(c.service());
    let model: &'static [Param] = match Builder::new(st, &svc, service).shape(&input).0 {
        Ty::Struct(fields) => fields,
        _ => &[],
    };
    // A model member the curated entry leaves out is one its binding fills itself (RunInstances'
    // MinCount and MaxCount), so it is optional here.
    let params: Vec<Param> = c
        .params
        .iter()
        .copied()
        .chain(model.iter().filter(|m| c.param(m.name).is_none()).map(|m| Param { required: false, ..*m }))
        .collect();
    Operation { params: Box::leak(params.into_boxed_slice()), ..plain }
}

fn derive(st: &mut State, service: &str, action: &str) -> Option<Operation> {
    let svc = labrun_models::load(service).ok()?;
    let model_op = svc.operations.get(action)?;
    let service = st.intern(service);
    let name = st.intern(&format!("{service}:{action}"));
    let params: &'static [Param] = match &model_op.input {
        Some(r) => match Builder::new(st, &svc, service).shape(&r.shape).0 {
            Ty::Struct(fields) => fields,
            _ => &[],
        },
        None => &[],
    };
    let read_only = infer_read_only(service, action);
    let input = svc.input(action);
    let (undo, nothing_to_undo) = if read_only {
        (Undo::None, true)
    } else if let Some((_, entry)) = UNDO_TABLE.iter().find(|(n, _)| *n == name) {
        match *entry {
            Some((op, params)) => (Undo::Call { op, params }, false),
            None => (Undo::None, true),
        }
    } else {
        match infer_undo(&svc, service, action) {
            Some((op, params)) => (Undo::Call { op: st.intern(&op), params: st.intern(&params) }, false),
            None => (Undo::None, verb_of(action, NOTHING_TO_UNDO_VERBS).is_some() || NOT_READS.contains(&name)),
        }
    };
    let tagging = if read_only { Tagging::None } else { infer_tagging(st, &svc, action, input) };
    // Athena marks query ids as idempotency tokens too: only a member named as a token is one
    // labrun fills, and the lab need not give it even where the model requires it.
    let client_token = input
        .and_then(|i| i.members.iter().find(|(n, m)| m.idempotency_token && n.to_ascii_lowercase().contains("token")))
        .map(|(n, _)| st.intern(n));
    let params: &'static [Param] = match client_token {
        Some(t) if params.iter().any(|p| p.name == t && p.required) => {
            Box::leak(params.iter().map(|p| Param { required: p.required && p.name != t, ..*p }).collect::<Vec<_>>().into_boxed_slice())
        }
        _ => params,
    };
    let secrets: Vec<&'static str> = match svc.output(action) {
        Some(out) => {
            let mut found = Vec::new();
            sensitive_paths(&svc, out, "", &mut Vec::new(), &mut found);
            found.into_iter().map(|p| st.intern(&p)).collect()
        }
        None => Vec::new(),
    };
    let mut already: Vec<&'static str> = Vec::new();
    if !read_only {
        for e in &model_op.errors {
            if e.shape.contains("AlreadyExist") {
                already.push(st.intern(&e.shape));
                if let Some(code) = svc.shape(&e.shape).and_then(|s| s.error.as_ref()).and_then(|e| e.code.as_deref()) {
                    already.push(st.intern(code));
                }
            }
        }
        already.extend(ALREADY_EXTRA.iter().filter(|(n, _)| *n == name).map(|(_, code)| *code));
        already.dedup();
    }
    Some(Operation {
        name,
        read_only,
        params,
        tagging,
        undo,
        secrets: Box::leak(secrets.into_boxed_slice()),
        real_aws_only: false,
        synthetic: false,
        client_token,
        lookup: match undo {
            // An undo that needs the create's answer: after a lost answer, find it by listing.
            Undo::Call { params, .. } if params.contains("response") => derive_lookup(st, &svc, service, action),
            _ => None,
        },
        already: Box::leak(already.into_boxed_slice()),
        bound: None,
        nothing_to_undo,
    })
}

/// Converts model shapes to [`Ty`], caching per service and shape.
struct Builder<'a> {
    st: &'a mut State,
    svc: &'a Service,
    service: &'static str,
    /// Shapes being converted, outermost first: a shape met again here is a cycle.
    stack: Vec<&'a str>,
    converted: usize,
}

impl<'a> Builder<'a> {
    fn new(st: &'a mut State, svc: &'a Service, service: &'static str) -> Self {
        Builder { st, svc, service, stack: Vec::new(), converted: 0 }
    }

    /// The type of shape `name`, and the outermost stack position a cycle inside it was cut
    /// at (`NO_CUT` for none). A type is cached only when every cut inside it is at a shape
    /// below it: then no shape it reaches reaches it back, and its type is the same wherever
    /// it is met. A shape on a cycle is built again where it is met, cut where it would
    /// contain itself, so a type never depends on what the process built before (the
    /// committed schema and the diagnostics rely on that).
    fn shape(&mut self, name: &'a str) -> (&'static Ty, usize) {
        if let Some(t) = self.st.shapes.get(self.service).and_then(|m| m.get(name)) {
            return (t, NO_CUT);
        }
        if let Some(i) = self.stack.iter().position(|s| *s == name) {
            return (&Ty::Any, i);
        }
        if self.stack.len() >= MAX_DEPTH || self.converted >= MAX_SHAPES_PER_BUILD {
            return (&Ty::Any, 0);
        }
        let Some(shape) = self.svc.shape(name) else { return (&Ty::Any, NO_CUT) };
        self.converted += 1;
        let me = self.stack.len();
        self.stack.push(name);
        let (ty, cut) = self.convert(name, shape);
        self.stack.pop();
        if cut > me {
            self.st.shapes.entry(self.service).or_default().insert(name.to_string(), ty);
        }
        #[cfg(test)]
        LARGEST_BUILD.fetch_max(self.converted, std::sync::atomic::Ordering::Relaxed);
        (ty, cut)
    }

    fn member(&mut self, name: &str, m: &'a Member) -> (&'static Ty, usize) {
        let plain_string = || self.svc.shape(&m.shape).is_some_and(|s| s.kind == "string" && s.enum_values.is_empty());
        if m.jsonvalue || (is_document_member(self.service, name) && plain_string()) {
            return (&Ty::Doc, NO_CUT);
        }
        self.shape(&m.shape)
    }

    fn convert(&mut self, name: &str, shape: &'a Shape) -> (&'static Ty, usize) {
        let leak = |t: Ty| -> &'static Ty { Box::leak(Box::new(t)) };
        match shape.kind.as_str() {
            "structure" if shape.document || shape.eventstream => (&Ty::Any, NO_CUT),
            "structure" => {
                let mut cut = NO_CUT;
                let mut fields = Vec::with_capacity(shape.members.len());
                for (mname, m) in &shape.members {
                    let (ty, c) = self.member(mname, m);
                    cut = cut.min(c);
                    fields.push(Param { name: self.st.intern(mname), ty: *ty, required: shape.required.iter().any(|r| r == mname) });
                }
                let fields: &'static [Param] = Box::leak(fields.into_boxed_slice());
                if !fields.is_empty() {
                    let shape_name = self.st.intern(name);
                    self.st.names.insert(fields.as_ptr() as usize, shape_name);
                }
                (leak(Ty::Struct(fields)), cut)
            }
            "list" => match &shape.member {
                Some(m) => {
                    let (inner, cut) = self.shape(&m.shape);
                    (leak(Ty::List(inner)), cut)
                }
                None => (&Ty::Any, NO_CUT),
            },
            "map" => match (&shape.key, &shape.value) {
                (Some(k), Some(v)) => {
                    let (key, c1) = self.shape(&k.shape);
                    let (value, c2) = self.shape(&v.shape);
                    (leak(Ty::Map(key, value)), c1.min(c2))
                }
                _ => (&Ty::Any, NO_CUT),
            },
            "string" if !shape.enum_values.is_empty() => {
                let values: Vec<&'static str> = shape.enum_values.iter().map(|v| self.st.intern(v)).collect();
                (leak(Ty::Enum(Box::leak(values.into_boxed_slice()))), NO_CUT)
            }
            "string" => (&Ty::Str, NO_CUT),
            "integer" | "long" => (&Ty::Int, NO_CUT),
            "float" | "double" => (&Ty::Float, NO_CUT),
            "boolean" => (&Ty::Bool, NO_CUT),
            "timestamp" => (&Ty::Timestamp, NO_CUT),
            "blob" => (&Ty::Blob, NO_CUT),
            _ => (&Ty::Any, NO_CUT),
        }
    }
}

/// A string member that carries a JSON document (see the module comment).
fn is_document_member(service: &str, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with("policydocument") || lower.ends_with("policy") || DOCUMENT_MEMBERS.contains(&(service, name))
}

/// The operation name without its verb (`CreateRestApi` → `RestApi`).
fn noun<'s>(action: &'s str, verb: &str) -> &'s str {
    action.strip_prefix(verb).unwrap_or(action)
}

/// The inverse of a change and its parameters, when the model has the inverse and every
/// required member of its input can be computed (see the module comment).
pub fn infer_undo(svc: &Service, service: &str, action: &str) -> Option<(String, String)> {
    let admin = &action[..action.len() - unprefixed(action).len()];
    let bare = unprefixed(action);
    let (verb, inverse_verb) = UNDO_VERBS.iter().filter(|(v, _)| has_verb(bare, v)).max_by_key(|(v, _)| v.len())?;
    let rest = noun(bare, verb);
    // DeleteVpcEndpoints undoes CreateVpcEndpoint.
    let mut candidates = vec![format!("{admin}{inverse_verb}{rest}"), format!("{admin}{inverse_verb}{rest}s")];
    // AddRoleToInstanceProfile → RemoveRoleFromInstanceProfile
    if let Some(i) = rest.find("To").filter(|i| rest[i + 2..].starts_with(|c: char| c.is_ascii_uppercase())) {
        candidates.push(format!("{admin}{inverse_verb}{}From{}", &rest[..i], &rest[i + 2..]));
    }
    let inverse = candidates.into_iter().find(|c| svc.operations.contains_key(c))?;
    let m = Matcher { svc, request: svc.input(action), response: svc.output(action), noun: rest };
    let mut pairs = Vec::new();
    let empty = Shape::default();
    let inverse_input = svc.input(&inverse).unwrap_or(&empty);
    let required: Vec<(&String, &Member)> = inverse_input.members.iter().filter(|(n, _)| inverse_input.required.contains(n)).collect();
    if required.is_empty() {
        // No member is required: one identifier, the most specific the call gives; and when the
        // inverse takes no identifier at all (an account setting), no parameters.
        const ORDER: &[&str] = &["Id", "Ids", "Arn", "ARN", "Url", "URL", "Identifier", "Name", "Names"];
        let rank = |n: &str| ORDER.iter().position(|s| n.ends_with(s));
        let best = inverse_input.members.iter().filter_map(|(n, mem)| Some((rank(n)?, n, m.find(n, mem)?))).min_by_key(|(r, ..)| *r);
        match best {
            Some((_, n, e)) => pairs.push(format!("{}: {e}", key(n))),
            None if inverse_input.members.keys().any(|n| rank(n).is_some()) => return None,
            None => {}
        }
    } else {
        for (n, mem) in required {
            pairs.push(format!("{}: {}", key(n), m.find(n, mem)?));
        }
    }
    // JMESPath has no empty multi-select hash: no parameters is the literal `{}`.
    let params = if pairs.is_empty() { "`{}`".to_string() } else { format!("{{{}}}", pairs.join(", ")) };
    jmespath::compile(&params).ok()?;
    Some((format!("{service}:{inverse}"), params))
}

/// How to list what a create makes, from its service model: a read of the same service that
/// needs no input and answers a list (`ListTables` → `TableNames`, `GetRestApis` → `items`).
/// `labrun test` lists these to find what a chapter leaked; a lost create's lookup is built on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// `dynamodb:ListTables`
    pub op: &'static str,
    /// The output member holding the list.
    pub list: &'static str,
    /// The item member identifying each resource; `None` when the items are the identifiers.
    pub id: Option<&'static str>,
    /// The item member holding its tags (a Key/Value list or a map), when items carry them.
    pub tags: Option<&'static str>,
    /// What a report calls one item: `dynamodb Table`.
    pub kind: &'static str,
}

/// Listings chosen by hand where the first match is newer than what emulators answer:
/// `logs:ListLogGroups` (2025) beside the long-standing `DescribeLogGroups`.
const LISTING_TABLE: &[(&str, &str)] = &[("logs:CreateLogGroup", "DescribeLogGroups")];

/// The verbs of creates whose result a listing can show.
const LISTED_VERBS: &[&str] = &["Create", "Put", "Register", "Run", "Allocate", "Import", "Publish"];

/// The listing for what the change `service:Action` makes, if its model has one.
pub fn listing(name: &str) -> Option<Listing> {
    let (service, action) = name.split_once(':')?;
    let svc = labrun_models::load(service).ok()?;
    let mut st = state();
    find_listing(&mut st, &svc, service, action)
}

fn find_listing(st: &mut State, svc: &Service, service: &str, action: &str) -> Option<Listing> {
    let bare = unprefixed(action);
    let verb = verb_of(bare, LISTED_VERBS)?;
    let noun = noun(bare, verb);
    if noun.is_empty() {
        return None;
    }
    let mut plurals = vec![format!("{noun}s"), format!("{noun}es")];
    if let Some(stem) = noun.strip_suffix('y') {
        plurals.push(format!("{stem}ies"));
    }
    let curated = LISTING_TABLE.iter().find(|(c, _)| c.split_once(':') == Some((service, action))).map(|(_, r)| r.to_string());
    let read = curated
        .into_iter()
        .chain(["List", "Describe", "Get"].iter().flat_map(|verb| plurals.iter().map(move |p| format!("{verb}{p}"))))
        .find(|r| svc.operations.contains_key(r) && svc.input(r).is_none_or(|i| i.required.is_empty()))?;
    // A listing that takes an identifier the create also takes (`UserName` for access keys) is
    // scoped by it: unfiltered, it would not show what the create made.
    let identifier = |m: &str| ["name", "id", "arn", "identifier"].iter().any(|s| m.to_ascii_lowercase().ends_with(s));
    if let (Some(read_in), Some(create_in)) = (svc.input(&read), svc.input(action))
        && read_in.members.keys().any(|m| identifier(m) && create_in.members.contains_key(m))
    {
        return None;
    }
    let out = svc.output(&read)?;
    let lists: Vec<(&String, &Shape)> =
        out.members.iter().filter_map(|(n, m)| Some((n, svc.shape(&m.shape).filter(|s| s.kind == "list")?))).collect();
    let wanted = noun.to_ascii_lowercase();
    let (list, shape) = match lists.as_slice() {
        [one] => *one,
        _ => *lists.iter().find(|(n, _)| n.to_ascii_lowercase().contains(&wanted))?,
    };
    let item = svc.shape(&shape.member.as_ref()?.shape)?;
    let (id, tags) = match item.kind.as_str() {
        "string" => (None, None),
        "structure" => {
            let string = |n: &str| item.members.get(n).and_then(|m| svc.shape(&m.shape)).is_some_and(|s| s.kind == "string");
            let ranked = [format!("{wanted}id"), format!("{wanted}name"), format!("{wanted}arn"), "id".into(), "name".into(), "arn".into()];
            let id = ranked.iter().find_map(|r| item.members.keys().find(|k| k.to_ascii_lowercase() == *r && string(k)))?;
            let tags = item.members.iter().find(|(n, m)| {
                matches!(n.as_str(), "Tags" | "tags" | "TagList")
                    && svc.shape(&m.shape).is_some_and(|s| matches!(s.kind.as_str(), "list" | "map"))
            });
            (Some(st.intern(id)), tags.map(|(n, _)| st.intern(n)))
        }
        _ => return None,
    };
    Some(Listing {
        op: st.intern(&format!("{service}:{read}")),
        list: st.intern(list),
        id,
        tags,
        kind: st.intern(&format!("{service} {noun}")),
    })
}

/// A lookup for a create whose undo needs its answer: the listing's items that carry this run's
/// and step's tags (a name alone could adopt a resource that is not labrun's), matched on the
/// identifying members the request gave, shaped as the create's answer. None when the items
/// carry no tags or the answer cannot be rebuilt from an item.
fn derive_lookup(st: &mut State, svc: &Service, service: &str, action: &str) -> Option<&'static Lookup> {
    let listing = find_listing(st, svc, service, action)?;
    listing.tags?;
    let model_op = svc.operations.get(action)?;
    let list = svc.output(listing.op.split_once(':')?.1)?.members.get(listing.list)?;
    let item_name = svc.shape(&list.shape)?.member.as_ref()?.shape.clone();
    let item = svc.shape(&item_name)?;
    let request = svc.input(action);
    let matching: Vec<(&'static str, &'static str)> = request
        .map(|r| {
            r.required
                .iter()
                .filter(|n| item.members.contains_key(*n) && svc.shape(&r.members[*n].shape).is_some_and(|s| s.kind == "string"))
                .map(|n| {
                    let n = st.intern(n);
                    (n, n)
                })
                .collect()
        })
        .unwrap_or_default();
    let output_name = &model_op.output.as_ref()?.shape;
    let output = svc.shape(output_name)?;
    let response = if *output_name == item_name {
        "[0]".to_string()
    } else if let Some((m, _)) = output.members.iter().find(|(_, m)| m.shape == item_name) {
        format!("{{{}: [0]}}", key(m))
    } else {
        let shared: Vec<String> =
            output.members.keys().filter(|n| item.members.contains_key(*n)).map(|n| format!("{}: {}", key(n), key(n))).collect();
        if shared.is_empty() {
            return None;
        }
        format!("[0].{{{}}}", shared.join(", "))
    };
    jmespath::compile(&response).ok()?;
    Some(Box::leak(Box::new(Lookup {
        op: listing.op,
        params: "`{}`",
        items: st.intern(&key(listing.list)),
        matching: Box::leak(matching.into_boxed_slice()),
        tagged: true,
        response: st.intern(&response),
    })))
}

/// A JMESPath identifier, quoted when it is not a plain one.
fn key(name: &str) -> String {
    if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

struct Matcher<'a> {
    svc: &'a Service,
    request: Option<&'a Shape>,
    response: Option<&'a Shape>,
    noun: &'a str,
}

impl Matcher<'_> {
    fn kind(&self, m: &Member) -> &str {
        match self.svc.shape(&m.shape).map(|s| s.kind.as_str()) {
            Some("long") => "integer",
            Some(k) => k,
            None => "",
        }
    }

    /// `root.name`, or `root.S.name` for a structure member `S` of `root`.
    fn same_name(&self, root: &str, shape: Option<&Shape>, name: &str, kind: &str, down: bool) -> Option<String> {
        let shape = shape?;
        if let Some(m) = shape.members.get(name)
            && self.kind(m) == kind
        {
            return Some(format!("{root}.{}", key(name)));
        }
        if down {
            for (sname, sm) in &shape.members {
                let Some(inner) = self.svc.shape(&sm.shape).filter(|s| s.kind == "structure") else { continue };
                if let Some(m) = inner.members.get(name)
                    && self.kind(m) == kind
                {
                    return Some(format!("{root}.{}.{}", key(sname), key(name)));
                }
            }
        }
        None
    }

    /// `restApiId` (or `apiKey`) → the response's `id` when `restApi` (`apiKey`) is the
    /// operation's noun; `fooArn` → `Arn`; `fooName` → `name`.
    fn by_noun(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        let own = self.noun.to_ascii_lowercase();
        let (noun, fields): (&str, &[&str]) = if lower == own {
            (&lower, &["id", "Id"])
        } else if let Some(n) = lower.strip_suffix("id") {
            (n, &["id", "Id"])
        } else if let Some(n) = lower.strip_suffix("arn") {
            (n, &["Arn", "arn", "ARN"])
        } else if let Some(n) = lower.strip_suffix("name") {
            (n, &["name", "Name"])
        } else {
            return None;
        };
        if noun.is_empty() || !own.ends_with(noun) {
            return None;
        }
        fields.iter().find_map(|f| self.named(f, "string"))
    }

    fn named(&self, name: &str, kind: &str) -> Option<String> {
        self.same_name("request", self.request, name, kind, false)
            .or_else(|| self.same_name("response", self.response, name, kind, false))
            .or_else(|| self.same_name("response", self.response, name, kind, true))
            .or_else(|| self.same_name("request", self.request, name, kind, true))
    }

    /// `response.Rules[0].RuleArn` (`pick` is `[0]`) or `response.Rules[].RuleArn` (`[]`): from
    /// the items of a response list of structures.
    fn in_items(&self, name: &str, kind: &str, pick: &str) -> Option<String> {
        self.response?.members.iter().find_map(|(lname, lm)| {
            let list = self.svc.shape(&lm.shape).filter(|s| s.kind == "list")?;
            let item = self.svc.shape(&list.member.as_ref()?.shape).filter(|s| s.kind == "structure")?;
            item.members.get(name).filter(|m| self.kind(m) == kind)?;
            Some(format!("response.{}{pick}.{}", key(lname), key(name)))
        })
    }

    fn scalar(&self, name: &str, kind: &str) -> Option<String> {
        self.named(name, kind)
            .or_else(|| if kind == "string" { self.by_noun(name) } else { None })
            .or_else(|| self.in_items(name, kind, "[0]"))
    }

    /// An expression giving the inverse's member `name` from the call, if there is one.
    fn find(&self, name: &str, m: &Member) -> Option<String> {
        let kind = self.kind(m);
        if let Some(e) = self.scalar(name, kind) {
            return Some(e);
        }
        if kind != "list" {
            return None;
        }
        let element = self.svc.shape(&m.shape)?.member.as_ref()?;
        if matches!(name, "TagKeys" | "tagKeys") {
            return self.tag_keys();
        }
        // `AssociationIds` from each item's `AssociationId`, or `VpcEndpointIds` from the one
        // `VpcEndpointId` the call made.
        let singular = name.strip_suffix('s')?;
        let kind = self.kind(element);
        self.in_items(singular, kind, "[]").or_else(|| self.scalar(singular, kind).map(|e| format!("[{e}]")))
    }

    /// The keys of the tags the request set, for an `Untag*`.
    fn tag_keys(&self) -> Option<String> {
        let request = self.request?;
        let (name, m) = request.members.iter().find(|(n, _)| matches!(n.as_str(), "Tags" | "tags" | "TagList"))?;
        let shape = self.svc.shape(&m.shape)?;
        match shape.kind.as_str() {
            "map" => Some(format!("keys(request.{})", key(name))),
            "list" => {
                let element = self.svc.shape(&shape.member.as_ref()?.shape)?;
                let k = element.members.keys().find(|k| matches!(k.as_str(), "Key" | "key" | "TagKey"))?;
                Some(format!("request.{}[].{}", key(name), key(k)))
            }
            _ => None,
        }
    }
}

fn infer_tagging(st: &mut State, svc: &Service, action: &str, input: Option<&Shape>) -> Tagging {
    let Some(input) = input else { return Tagging::None };
    let Some(verb) = verb_of(action, TAGGING_VERBS) else { return Tagging::None };
    if noun(action, verb).contains("Tag") {
        return Tagging::None;
    }
    if let Some(m) = input.members.get("TagSpecifications") {
        return ec2_resource_type(svc, action, verb, m).map_or(Tagging::None, |r| Tagging::TagSpecifications(st.intern(&r)));
    }
    for name in ["Tags", "TagList", "tags"] {
        let Some(shape) = input.members.get(name).and_then(|m| svc.shape(&m.shape)) else { continue };
        match shape.kind.as_str() {
            "map" if shape.value.as_ref().and_then(|v| svc.shape(&v.shape)).is_some_and(|v| v.kind == "string") => {
                return Tagging::Map(st.intern(name));
            }
            "list" => {
                let Some(element) = shape.member.as_ref().and_then(|m| svc.shape(&m.shape)) else { continue };
                let k = element.members.keys().find(|k| matches!(k.as_str(), "Key" | "key" | "TagKey"));
                let v = element.members.keys().find(|k| matches!(k.as_str(), "Value" | "value" | "TagValue"));
                if let (Some(k), Some(v)) = (k, v) {
                    return Tagging::List { member: st.intern(name), key: st.intern(k), value: st.intern(v) };
                }
            }
            _ => {}
        }
    }
    Tagging::None
}

/// The `ResourceType` of EC2's tag specification for what `action` makes (`CreateNatGateway`
/// → `natgateway`), if the noun names one.
fn ec2_resource_type(svc: &Service, action: &str, verb: &str, specs: &Member) -> Option<String> {
    if let Some((_, r)) = EC2_RESOURCE_TYPES.iter().find(|(a, _)| *a == action) {
        return Some(r.to_string());
    }
    let spec = svc.shape(&svc.shape(&specs.shape)?.member.as_ref()?.shape)?;
    let values = &svc.shape(&spec.members.get("ResourceType")?.shape)?.enum_values;
    let norm = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let n = norm(noun(action, verb));
    let singular = n.strip_suffix('s').unwrap_or(&n).to_string();
    values.iter().find(|v| norm(v) == n || norm(v) == singular).cloned()
}

/// Dotted paths of the sensitive members of a response (`Credentials.SecretAccessKey`,
/// `Functions[].Environment`), through structures and lists, not maps.
fn sensitive_paths<'a>(svc: &'a Service, shape: &'a Shape, prefix: &str, seen: &mut Vec<&'a str>, out: &mut Vec<String>) {
    if seen.len() >= 8 || out.len() >= 64 {
        return;
    }
    for (name, m) in &shape.members {
        let Some(target) = svc.shape(&m.shape) else { continue };
        let path = format!("{prefix}{name}");
        if target.sensitive && NOT_SECRETS.contains(&name.as_str()) {
            continue;
        }
        if target.sensitive {
            out.push(path);
            continue;
        }
        let (inner, path) = match target.kind.as_str() {
            "structure" => (Some((&m.shape, target)), format!("{path}.")),
            "list" => match target.member.as_ref().and_then(|e| Some((&e.shape, svc.shape(&e.shape)?))) {
                Some((_, element)) if element.sensitive => {
                    out.push(format!("{path}[]"));
                    continue;
                }
                Some((n, element)) if element.kind == "structure" => (Some((n, element)), format!("{path}[].")),
                _ => (None, path),
            },
            _ => (None, path),
        };
        if let Some((shape_name, inner)) = inner
            && !seen.contains(&shape_name.as_str())
        {
            seen.push(shape_name.as_str());
            sensitive_paths(svc, inner, &path, seen, out);
            seen.pop();
        }
    }
}

/// Every operation of one service, as [`operation`] returns them (for the schema).
pub fn service_operations(service: &str) -> Option<Vec<&'static Operation>> {
    let svc: Arc<Service> = labrun_models::load(service).ok()?;
    Some(svc.operations.keys().filter_map(|a| operation(&format!("{service}:{a}"))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn op(name: &str) -> &'static Operation {
        catalog::operation(name).unwrap_or_else(|| panic!("{name} is not a catalog operation"))
    }

    fn undo_of(name: &str) -> (&'static str, &'static str) {
        match op(name).undo {
            Undo::Call { op, params } => (op, params),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn lambda_create_function_is_undone_by_delete_function_from_the_request() {
        let o = op("lambda:CreateFunction");
        assert!(!o.read_only && o.bound.is_none());
        assert_eq!(undo_of("lambda:CreateFunction"), ("lambda:DeleteFunction", "{FunctionName: request.FunctionName}"));
        assert!(matches!(o.param("Runtime").unwrap().ty, Ty::Enum(v) if v.contains(&"python3.12")));
        assert!(o.param("FunctionName").unwrap().required);
        assert_eq!(o.tagging, Tagging::Map("Tags"));
        assert!(o.already.contains(&"ResourceConflictException"));
        // The same operation is built once.
        assert!(std::ptr::eq(o, op("lambda:CreateFunction")));
    }

    #[test]
    fn the_inference_alone_finds_these_undos() {
        // Outside the table: what the rules find by themselves.
        let infer = |s: &str, a: &str| infer_undo(&labrun_models::load(s).unwrap(), s, a).map(|(o, p)| format!("{o} {p}"));
        assert_eq!(infer("lambda", "CreateFunction").as_deref(), Some("lambda:DeleteFunction {FunctionName: request.FunctionName}"));
        assert_eq!(infer("sqs", "CreateQueue").as_deref(), Some("sqs:DeleteQueue {QueueUrl: response.QueueUrl}"));
        assert_eq!(
            infer("apigateway", "CreateResource").as_deref(),
            Some("apigateway:DeleteResource {resourceId: response.id, restApiId: request.restApiId}")
        );
        assert_eq!(infer("iam", "CreatePolicy").as_deref(), Some("iam:DeletePolicy {PolicyArn: response.Policy.Arn}"));
        assert_eq!(
            infer("ec2", "CreateNatGateway").as_deref(),
            Some("ec2:DeleteNatGateway {NatGatewayId: response.NatGateway.NatGatewayId}")
        );
        assert_eq!(
            infer("iam", "AddRoleToInstanceProfile").as_deref(),
            Some("iam:RemoveRoleFromInstanceProfile {InstanceProfileName: request.InstanceProfileName, RoleName: request.RoleName}")
        );
        assert_eq!(
            infer("lambda", "TagResource").as_deref(),
            Some("lambda:UntagResource {Resource: request.Resource, TagKeys: keys(request.Tags)}")
        );
        assert_eq!(
            infer("ec2", "CreateVpcEndpoint").as_deref(),
            Some("ec2:DeleteVpcEndpoints {VpcEndpointIds: [response.VpcEndpoint.VpcEndpointId]}")
        );
        assert_eq!(
            infer("cognito-idp", "CreateUserPool").as_deref(),
            Some("cognito-idp:DeleteUserPool {UserPoolId: response.UserPool.Id}")
        );
        assert_eq!(infer("glue", "CreateDatabase").as_deref(), Some("glue:DeleteDatabase {Name: request.DatabaseInput.Name}"));
        // DeleteItem needs the item's key, which the put does not name apart.
        assert_eq!(infer("dynamodb", "PutItem"), None);
    }

    #[test]
    fn dynamodb_reads_and_items() {
        for name in ["dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"] {
            assert!(op(name).read_only, "{name}");
            assert!(matches!(op(name).undo, Undo::None));
        }
        assert_eq!(undo_of("dynamodb:CreateTable"), ("dynamodb:DeleteTable", "{TableName: request.TableName}"));
        assert!(op("dynamodb:CreateTable").already.contains(&"ResourceInUseException"));
        let put = op("dynamodb:PutItem");
        assert!(!put.read_only && matches!(put.undo, Undo::None) && put.nothing_to_undo);
    }

    #[test]
    fn sqs_create_queue_undo_uses_the_response_url() {
        assert_eq!(undo_of("sqs:CreateQueue"), ("sqs:DeleteQueue", "{QueueUrl: response.QueueUrl}"));
        assert_eq!(op("sqs:CreateQueue").tagging, Tagging::Map("tags"));
    }

    #[test]
    fn reads_are_judged_by_name_with_exceptions() {
        assert!(op("s3:GetObject").read_only);
        assert!(op("cloudtrail:LookupEvents").read_only);
        assert!(op("logs:FilterLogEvents").read_only);
        assert!(!op("sts:GetSessionToken").read_only, "it mints credentials");
        assert!(!op("ecr:GetAuthorizationToken").read_only);
        assert!(!op("sqs:ReceiveMessage").read_only, "it hides the messages it receives");
        assert!(!op("lambda:Invoke").read_only && op("lambda:Invoke").nothing_to_undo);
        let update = op("lambda:UpdateFunctionCode");
        assert!(!update.read_only && matches!(update.undo, Undo::None) && !update.nothing_to_undo);
        assert!(op("ec2:DeleteNatGateway").nothing_to_undo);
        for name in NOT_READS {
            assert!(op(name).name == *name);
        }
    }

    #[test]
    fn a_recursive_shape_is_cut_and_does_not_hang() {
        let put = op("dynamodb:PutItem");
        let Ty::Map(_, value) = put.param("Item").unwrap().ty else { panic!("{:?}", put.param("Item")) };
        let Ty::Struct(fields) = value else { panic!("{value:?}") };
        assert_eq!(shape_name(fields), Some("AttributeValue"));
        let m = fields.iter().find(|f| f.name == "M").unwrap();
        assert!(matches!(m.ty, Ty::Map(_, Ty::Any)), "{:?}", m.ty);
        let l = fields.iter().find(|f| f.name == "L").unwrap();
        assert!(matches!(l.ty, Ty::List(Ty::Any)), "{:?}", l.ty);
        // The response side too, and a service whose shapes nest deeply.
        assert!(catalog::response(op("dynamodb:GetItem")).is_some());
        assert!(catalog::response(op("glue:GetTable")).is_some());
    }

    #[test]
    fn curated_operations_keep_their_knowledge_and_gain_the_models_members() {
        let vpc = op("ec2:CreateVpc");
        assert_eq!(vpc.bound, Some(&["CidrBlock", "InstanceTenancy", "TagSpecifications"][..]));
        assert!(vpc.param("Ipv4IpamPoolId").is_some(), "the model's member");
        assert!(vpc.param("CidrBlock").unwrap().required, "the curated flag");
        assert!(vpc.lookup.is_some());
        assert!(matches!(vpc.undo, Undo::Call { op: "ec2:DeleteVpc", .. }));
        assert_eq!(vpc.tagging, Tagging::TagSpecifications("vpc"));
        // A curated type wins over the model's string.
        assert!(matches!(op("iam:CreateRole").param("AssumeRolePolicyDocument").unwrap().ty, Ty::Doc));
        // RunInstances' MinCount/MaxCount are filled by its binding: optional here.
        assert!(!op("ec2:RunInstances").param("MinCount").unwrap().required);
        assert_eq!(op("labrun:CheckSsmReachability").bound, Some(&["InstanceId"][..]));
        for c in catalog::curated() {
            let bound = c.bound.unwrap();
            assert!(bound.iter().all(|b| c.param(b).is_some()), "{}", c.name);
        }
    }

    #[test]
    fn client_tokens_tags_secrets_and_documents_come_from_the_model() {
        assert_eq!(op("ec2:CreateNatGateway").client_token, Some("ClientToken"));
        // Required by the model, filled by labrun.
        let fs = op("efs:CreateFileSystem");
        assert_eq!(fs.client_token, Some("CreationToken"));
        assert!(!fs.param("CreationToken").unwrap().required);
        assert_eq!(op("athena:StopQueryExecution").client_token, None, "a query id, not a token");
        assert_eq!(op("ec2:CreateNatGateway").tagging, Tagging::TagSpecifications("natgateway"));
        assert_eq!(op("ecs:CreateCluster").tagging, Tagging::List { member: "tags", key: "key", value: "value" });
        assert_eq!(op("kms:CreateKey").tagging, Tagging::List { member: "Tags", key: "TagKey", value: "TagValue" });
        assert_eq!(op("lambda:TagResource").tagging, Tagging::None, "tagging calls are not creates");
        assert!(op("sts:AssumeRole").secrets.contains(&"Credentials.SecretAccessKey"), "{:?}", op("sts:AssumeRole").secrets);
        assert!(op("secretsmanager:GetSecretValue").secrets.contains(&"SecretString"));
        assert!(
            op("lambda:ListFunctions").secrets.iter().any(|s| s.starts_with("Functions[].")),
            "{:?}",
            op("lambda:ListFunctions").secrets
        );
        assert!(matches!(op("iam:PutRolePolicy").param("PolicyDocument").unwrap().ty, Ty::Doc));
        assert!(matches!(op("stepfunctions:CreateStateMachine").param("definition").unwrap().ty, Ty::Doc));
        assert!(matches!(op("s3:PutBucketPolicy").param("Policy").unwrap().ty, Ty::Doc));
        assert!(op("logs:CreateLogGroup").already.contains(&"ResourceAlreadyExistsException"));
        // IAM answers the code, not the shape's name.
        assert!(op("iam:CreatePolicy").already.contains(&"EntityAlreadyExists"));
    }

    #[test]
    fn cli_spelling_for_every_service() {
        assert_eq!(op("cognito-idp:AdminInitiateAuth").cli_command(), "aws cognito-idp admin-initiate-auth");
        assert_eq!(op("rds:DescribeDBInstances").cli_command(), "aws rds describe-db-instances");
        assert_eq!(op("s3:GetObject").cli_command(), "aws s3api get-object");
        assert_eq!(op("elbv2:CreateLoadBalancer").cli_command(), "aws elbv2 create-load-balancer");
        assert_eq!(op("stepfunctions:StartExecution").cli_command(), "aws stepfunctions start-execution");
    }

    /// Every table entry names operations of the model, compiles, and gives every required
    /// member of its inverse.
    #[test]
    fn listings_of_what_creates_make_come_from_the_models() {
        let l = listing("dynamodb:CreateTable").unwrap();
        assert_eq!((l.op, l.list, l.id, l.tags, l.kind), ("dynamodb:ListTables", "TableNames", None, None, "dynamodb Table"));
        let l = listing("lambda:CreateFunction").unwrap();
        assert_eq!((l.op, l.list, l.id), ("lambda:ListFunctions", "Functions", Some("FunctionName")));
        let l = listing("apigateway:CreateRestApi").unwrap();
        assert_eq!((l.op, l.list, l.id, l.tags), ("apigateway:GetRestApis", "items", Some("id"), Some("tags")));
        assert_eq!(listing("sns:CreateTopic").map(|l| (l.op, l.id)), Some(("sns:ListTopics", Some("TopicArn"))));
        assert_eq!(listing("logs:CreateLogGroup").map(|l| (l.op, l.id)), Some(("logs:DescribeLogGroups", Some("logGroupName"))));
        assert_eq!(listing("sqs:CreateQueue").map(|l| (l.op, l.list, l.id)), Some(("sqs:ListQueues", "QueueUrls", None)));
        assert_eq!(listing("kinesis:CreateStream").map(|l| (l.op, l.list)), Some(("kinesis:ListStreams", "StreamNames")));
        // A child resource's listing needs its parent, or is scoped by it: none.
        assert_eq!(listing("apigateway:CreateResource"), None);
        assert_eq!(listing("iam:CreateAccessKey"), None);
        assert_eq!(listing("dynamodb:DescribeTable"), None);
    }

    #[test]
    fn a_create_whose_undo_needs_its_answer_gets_a_tag_checked_lookup_where_items_carry_tags() {
        let api = op("apigateway:CreateRestApi").lookup.expect("CreateRestApi has a lookup");
        assert_eq!((api.op, api.params, api.items, api.tagged, api.response), ("apigateway:GetRestApis", "`{}`", "items", true, "[0]"));
        assert_eq!(api.matching, &[("name", "name")]);
        let nat = op("ec2:CreateNatGateway").lookup.expect("CreateNatGateway has a lookup");
        assert_eq!((nat.op, nat.response), ("ec2:DescribeNatGateways", "{NatGateway: [0]}"));
        // Items without tags could be anyone's: no lookup, so a lost answer is reported, not guessed.
        assert!(op("sns:CreateTopic").lookup.is_none());
        // An undo from the request alone needs no lookup.
        assert!(op("dynamodb:CreateTable").lookup.is_none());
    }

    #[test]
    fn the_undo_table_is_sound() {
        for (name, entry) in UNDO_TABLE {
            let (service, action) = name.split_once(':').unwrap();
            let svc = labrun_models::load(service).unwrap();
            assert!(svc.operations.contains_key(action), "{name} is not in the model");
            let Some((inv, params)) = entry else { continue };
            let (inv_service, inv_action) = inv.split_once(':').unwrap();
            assert_eq!(inv_service, service, "{name}");
            assert!(svc.operations.contains_key(inv_action), "{name}: {inv} is not in the model");
            let ast = jmespath::compile(params).unwrap_or_else(|e| panic!("{name}: {e}"));
            let jmespath::ast::Ast::MultiHash { elements, .. } = ast.as_ast() else { panic!("{name}: not a hash") };
            let keys: Vec<&str> = elements.iter().map(|kv| kv.key.as_str()).collect();
            let input = svc.input(inv_action).unwrap();
            for r in &input.required {
                assert!(keys.contains(&r.as_str()), "{name}: {inv} needs {r}");
            }
            for k in &keys {
                assert!(input.members.contains_key(*k), "{name}: {inv} has no member {k}");
            }
        }
    }

    /// Building every operation of every service ends, and every inferred undo is sound.
    #[test]
    fn every_modelled_operation_builds() {
        let mut built = 0;
        for service in labrun_models::services() {
            for o in service_operations(service).unwrap() {
                built += 1;
                if let Undo::Call { op: inv, params } = o.undo {
                    assert!(catalog::operation(inv).is_some(), "{}: {inv}", o.name);
                    jmespath::compile(params).unwrap_or_else(|e| panic!("{}: {params}: {e}", o.name));
                }
                if let Some(t) = o.client_token {
                    assert!(o.param(t).is_some(), "{}", o.name);
                }
                let _ = catalog::response(o);
            }
        }
        assert!(built > 3000, "{built}");
        let largest = LARGEST_BUILD.load(std::sync::atomic::Ordering::Relaxed);
        assert!(largest < MAX_SHAPES_PER_BUILD / 10, "{largest}");
    }
}
