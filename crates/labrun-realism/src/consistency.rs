//! Eventual consistency, per account: the windows opened by answered calls, the answers given
//! inside them, and the rewriting of states in describe answers.
//!
//! The behaviours imitate documented AWS behaviour (`shared/reference/aws-real-conditions.md`).

use std::collections::HashMap;
use std::time::Instant;

use crate::Consistency;
use crate::wire::Call;
use crate::xml::{self, Doc};

/// The kinds of EC2 ids whose describe answers NotFound right after the create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Vpc,
    Subnet,
    Group,
    RouteTable,
    InternetGateway,
    VpcEndpoint,
    Instance,
}

impl IdKind {
    const ALL: [IdKind; 7] =
        [IdKind::Vpc, IdKind::Subnet, IdKind::Group, IdKind::RouteTable, IdKind::InternetGateway, IdKind::VpcEndpoint, IdKind::Instance];

    /// The describe parameter listing ids of this kind (`VpcId.1`, `VpcId.2`, ...).
    fn list_key(self) -> &'static str {
        match self {
            IdKind::Vpc => "VpcId",
            IdKind::Subnet => "SubnetId",
            IdKind::Group => "GroupId",
            IdKind::RouteTable => "RouteTableId",
            IdKind::InternetGateway => "InternetGatewayId",
            IdKind::VpcEndpoint => "VpcEndpointId",
            IdKind::Instance => "InstanceId",
        }
    }

    fn not_found(self, id: &str) -> Answer {
        let (code, message) = match self {
            IdKind::Vpc => ("InvalidVpcID.NotFound", format!("The vpc ID '{id}' does not exist")),
            IdKind::Subnet => ("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist")),
            IdKind::Group => ("InvalidGroup.NotFound", format!("The security group '{id}' does not exist")),
            IdKind::RouteTable => ("InvalidRouteTableID.NotFound", format!("The routeTable ID '{id}' does not exist")),
            IdKind::InternetGateway => ("InvalidInternetGatewayID.NotFound", format!("The internetGateway ID '{id}' does not exist")),
            IdKind::VpcEndpoint => ("InvalidVpcEndpointId.NotFound", format!("The Vpc Endpoint Id '{id}' does not exist")),
            IdKind::Instance => ("InvalidInstanceID.NotFound", format!("The instance ID '{id}' does not exist")),
        };
        Answer { code: code.to_string(), message }
    }

    /// For an EC2 create answered 200: the element holding the new id and its parent
    /// (`None`: directly under the response element).
    fn created_by(action: &str) -> Option<(IdKind, &'static str, Option<&'static str>)> {
        Some(match action {
            "CreateVpc" => (IdKind::Vpc, "vpcId", Some("vpc")),
            "CreateSubnet" => (IdKind::Subnet, "subnetId", Some("subnet")),
            "CreateSecurityGroup" => (IdKind::Group, "groupId", None),
            "CreateRouteTable" => (IdKind::RouteTable, "routeTableId", Some("routeTable")),
            "CreateInternetGateway" => (IdKind::InternetGateway, "internetGatewayId", Some("internetGateway")),
            "CreateVpcEndpoint" => (IdKind::VpcEndpoint, "vpcEndpointId", Some("vpcEndpoint")),
            "RunInstances" => (IdKind::Instance, "instanceId", Some("item")),
            _ => return None,
        })
    }
}

/// An EC2 error answered for a not-yet-consistent call (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Default)]
struct Account {
    /// Instance profile name → end of its propagation window.
    profiles: HashMap<String, Instant>,
    /// New EC2 id → (kind, end of its NotFound window).
    fresh: HashMap<String, (IdKind, Instant)>,
    pending_instances: HashMap<String, Instant>,
    pending_endpoints: HashMap<String, Instant>,
    drain_until: Option<Instant>,
}

impl Account {
    fn forget_expired(&mut self, now: Instant) {
        self.profiles.retain(|_, until| *until > now);
        self.fresh.retain(|_, (_, until)| *until > now);
        self.pending_instances.retain(|_, until| *until > now);
        self.pending_endpoints.retain(|_, until| *until > now);
        if self.drain_until.is_some_and(|until| until <= now) {
            self.drain_until = None;
        }
    }
}

/// The consistency state of every account seen.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    accounts: HashMap<String, Account>,
}

impl Accounts {
    /// Before forwarding: the answer AWS could give now because an earlier change has not
    /// propagated yet, or `None` to forward.
    pub fn precheck(&mut self, call: &Call, now: Instant) -> Option<Answer> {
        if call.service != "ec2" {
            return None;
        }
        let account = self.accounts.get_mut(&call.account)?;
        account.forget_expired(now);
        match call.action.as_str() {
            // IAM user guide, troubleshooting, "Changes that I make are not always immediately
            // visible": a new instance profile is not usable by EC2 for seconds.
            "RunInstances" | "AssociateIamInstanceProfile" => {
                if let Some(name) = call.param("IamInstanceProfile.Name").filter(|n| account.profiles.contains_key(*n)) {
                    return Some(Answer {
                        code: "InvalidParameterValue".into(),
                        message: format!(
                            "Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
                        ),
                    });
                }
                if let Some(arn) = call.param("IamInstanceProfile.Arn") {
                    let name = arn.rsplit('/').next().unwrap_or(arn);
                    if arn.contains('/') && account.profiles.contains_key(name) {
                        return Some(Answer {
                            code: "InvalidParameterValue".into(),
                            message: format!(
                                "Value ({arn}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"
                            ),
                        });
                    }
                }
                None
            }
            // Dependencies drain (aws-real-conditions.md; Amazon VPC user guide, "Delete your VPC"):
            // network interfaces of terminated instances and deleted endpoints are released
            // after a while, and until then the VPC, subnet or group still has dependencies.
            "DeleteVpc" | "DeleteSubnet" | "DeleteSecurityGroup" if account.drain_until.is_some() => {
                let message = match call.action.as_str() {
                    "DeleteVpc" => format!("The vpc '{}' has dependencies and cannot be deleted.", call.param("VpcId").unwrap_or("")),
                    "DeleteSubnet" => {
                        format!("The subnet '{}' has dependencies and cannot be deleted.", call.param("SubnetId").unwrap_or(""))
                    }
                    _ => format!(
                        "resource {} has a dependent object",
                        call.param("GroupId").or_else(|| call.param("GroupName")).unwrap_or("")
                    ),
                };
                Some(Answer { code: "DependencyViolation".into(), message })
            }
            // "Eventual consistency in the Amazon EC2 API": a describe of a just-created id may
            // answer Invalid…ID.NotFound. Only describes naming the id explicitly; filters are not affected.
            action if action.starts_with("Describe") => call.params.iter().find_map(|(key, value)| {
                let (list, index) = key.rsplit_once('.')?;
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let kind = IdKind::ALL.into_iter().find(|k| k.list_key() == list)?;
                match account.fresh.get(value) {
                    Some((k, _)) if *k == kind => Some(kind.not_found(value)),
                    _ => None,
                }
            }),
            _ => None,
        }
    }

    /// After the emulator answered 200: opens the windows this call starts.
    pub fn observe(&mut self, cfg: &Consistency, call: &Call, body: &str, now: Instant) {
        match (call.service.as_str(), call.action.as_str()) {
            ("iam", "CreateInstanceProfile" | "AddRoleToInstanceProfile") => {
                if let Some(name) = call.param("InstanceProfileName").filter(|n| !n.is_empty()) {
                    self.account(call).profiles.insert(name.to_string(), now + cfg.profile_propagation);
                }
            }
            ("ec2", "TerminateInstances" | "DeleteVpcEndpoints") => {
                self.account(call).drain_until = Some(now + cfg.dependency_drain);
            }
            ("ec2", action) => {
                let Some((kind, tag, parent)) = IdKind::created_by(action) else { return };
                let doc = Doc::parse(body);
                let ids = doc.texts_under(tag, parent);
                if ids.is_empty() {
                    return;
                }
                let pending_endpoint = kind == IdKind::VpcEndpoint && {
                    // Gateway endpoints are available at once; interface (and load-balancer)
                    // endpoints are pending first. The API's default type is Gateway.
                    let from_answer = doc
                        .named("vpcEndpointType")
                        .find(|&e| doc.parent_named(e, "vpcEndpoint"))
                        .and_then(|e| doc.text(e))
                        .filter(|t| !t.is_empty());
                    let ty = from_answer.or_else(|| call.param("VpcEndpointType")).unwrap_or("Gateway");
                    !ty.eq_ignore_ascii_case("gateway")
                };
                let account = self.account(call);
                for id in ids {
                    if kind == IdKind::Instance {
                        account.pending_instances.insert(id.clone(), now + cfg.instance_pending);
                    }
                    if pending_endpoint {
                        account.pending_endpoints.insert(id.clone(), now + cfg.endpoint_pending);
                    }
                    account.fresh.insert(id, (kind, now + cfg.describe_not_found));
                }
            }
            _ => {}
        }
    }

    /// Rewrites a 200 describe answer so that resources still within their window show their
    /// earlier state. Returns the new body and the number of resources rewritten.
    pub fn rewrite(&mut self, call: &Call, body: &str, now: Instant) -> Option<(String, u64)> {
        if call.service != "ec2" {
            return None;
        }
        let account = self.accounts.get_mut(&call.account)?;
        account.forget_expired(now);
        match call.action.as_str() {
            "DescribeInstances" if !account.pending_instances.is_empty() => pending_instances(body, &account.pending_instances),
            "DescribeVpcEndpoints" if !account.pending_endpoints.is_empty() => pending_endpoints(body, &account.pending_endpoints),
            _ => None,
        }
    }

    fn account(&mut self, call: &Call) -> &mut Account {
        self.accounts.entry(call.account.clone()).or_default()
    }
}

/// States take time (EC2 user guide, "Amazon EC2 instance state changes"): an instance is
/// `pending` (code 0) before `running` (16). Only the new instance's own `<item>` is touched.
fn pending_instances(body: &str, pending: &HashMap<String, Instant>) -> Option<(String, u64)> {
    let doc = Doc::parse(body);
    let mut edits = Vec::new();
    let mut count = 0;
    for id_elem in doc.named("instanceId") {
        let Some(id) = doc.text(id_elem) else { continue };
        if !pending.contains_key(id) {
            continue;
        }
        let Some(item) = doc.parent(id_elem) else { continue };
        let Some(state) = doc.child(item, "instanceState") else { continue };
        let (Some(code), Some(name)) = (doc.child(state, "code"), doc.child(state, "name")) else { continue };
        if doc.text(name) != Some("running") {
            continue;
        }
        if let (Some(code_range), Some(name_range)) = (doc.text_range(code), doc.text_range(name)) {
            edits.push((code_range, "0".to_string()));
            edits.push((name_range, "pending".to_string()));
            count += 1;
        }
    }
    (count > 0).then(|| (xml::apply(body, edits), count))
}

/// Interface endpoints are `pending` before `available` (aws-real-conditions.md, "States take
/// time"; AWS PrivateLink guide, interface endpoint states). Only the new endpoint's own item is
/// touched; the spelling style is kept.
fn pending_endpoints(body: &str, pending: &HashMap<String, Instant>) -> Option<(String, u64)> {
    let doc = Doc::parse(body);
    let mut edits = Vec::new();
    let mut count = 0;
    for id_elem in doc.named("vpcEndpointId") {
        let Some(id) = doc.text(id_elem) else { continue };
        if !pending.contains_key(id) {
            continue;
        }
        let Some(item) = doc.parent(id_elem) else { continue };
        let Some(state) = doc.child(item, "state") else { continue };
        let (Some(text), Some(range)) = (doc.text(state), doc.text_range(state)) else { continue };
        if !text.eq_ignore_ascii_case("available") {
            continue;
        }
        let replacement = if text == "AVAILABLE" {
            "PENDING"
        } else if text.starts_with('A') {
            "Pending"
        } else {
            "pending"
        };
        edits.push((range, replacement.to_string()));
        count += 1;
    }
    (count > 0).then(|| (xml::apply(body, edits), count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(service: &str, action: &str, params: &[(&str, &str)]) -> Call {
        Call {
            account: "111111111111".into(),
            service: service.into(),
            action: action.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            kind: None,
        }
    }

    fn cfg() -> Consistency {
        let s = Duration::from_secs(10);
        Consistency {
            enabled: true,
            profile_propagation: s,
            describe_not_found: s,
            instance_pending: s,
            endpoint_pending: s,
            dependency_drain: s,
        }
    }

    #[test]
    fn created_ids_only_of_the_created_kind() {
        let mut a = Accounts::default();
        let now = Instant::now();
        let body = "<CreateSubnetResponse><subnet><subnetId>subnet-1</subnetId><vpcId>vpc-old</vpcId></subnet></CreateSubnetResponse>";
        a.observe(&cfg(), &call("ec2", "CreateSubnet", &[]), body, now);
        assert_eq!(a.precheck(&call("ec2", "DescribeVpcs", &[("VpcId.1", "vpc-old")]), now), None);
        let hit = a.precheck(&call("ec2", "DescribeSubnets", &[("SubnetId.1", "subnet-1")]), now);
        assert_eq!(hit.map(|h| h.code), Some("InvalidSubnetID.NotFound".into()));
        // A describe listing the id under another kind's key is not affected.
        assert_eq!(a.precheck(&call("ec2", "DescribeSubnets", &[("VpcId.1", "subnet-1")]), now), None);
        // After the window.
        assert_eq!(a.precheck(&call("ec2", "DescribeSubnets", &[("SubnetId.1", "subnet-1")]), now + Duration::from_secs(11)), None);

        let sg = "<CreateSecurityGroupResponse><requestId>x</requestId><return>true</return><groupId>sg-1</groupId></CreateSecurityGroupResponse>";
        a.observe(&cfg(), &call("ec2", "CreateSecurityGroup", &[]), sg, now);
        let hit = a.precheck(&call("ec2", "DescribeSecurityGroups", &[("GroupId.1", "sg-1")]), now);
        assert_eq!(hit.map(|h| h.message), Some("The security group 'sg-1' does not exist".into()));
    }

    #[test]
    fn gateway_endpoints_are_not_pending() {
        let mut a = Accounts::default();
        let now = Instant::now();
        let body = "<CreateVpcEndpointResponse><vpcEndpoint><vpcEndpointId>vpce-g</vpcEndpointId><vpcEndpointType>Gateway</vpcEndpointType><state>available</state></vpcEndpoint></CreateVpcEndpointResponse>";
        a.observe(&cfg(), &call("ec2", "CreateVpcEndpoint", &[]), body, now);
        let describe = "<DescribeVpcEndpointsResponse><vpcEndpointSet><item><vpcEndpointId>vpce-g</vpcEndpointId><state>available</state></item></vpcEndpointSet></DescribeVpcEndpointsResponse>";
        assert_eq!(a.rewrite(&call("ec2", "DescribeVpcEndpoints", &[]), describe, now), None);
        // Without a type in the answer, the request's type decides.
        let body =
            "<CreateVpcEndpointResponse><vpcEndpoint><vpcEndpointId>vpce-i</vpcEndpointId></vpcEndpoint></CreateVpcEndpointResponse>";
        a.observe(&cfg(), &call("ec2", "CreateVpcEndpoint", &[("VpcEndpointType", "Interface")]), body, now);
        let describe = describe.replace("vpce-g", "vpce-i").replace("available", "AVAILABLE");
        let (out, n) = a.rewrite(&call("ec2", "DescribeVpcEndpoints", &[]), &describe, now).unwrap_or_default();
        assert_eq!(n, 1);
        assert!(out.contains("<state>PENDING</state>"), "{out}");
    }

    #[test]
    fn instance_rewrite_keeps_other_states() {
        let mut pending = HashMap::new();
        pending.insert("i-new".to_string(), Instant::now());
        let body = "<r><instancesSet><item><instanceId>i-stopped</instanceId><instanceState><code>80</code><name>stopped</name></instanceState></item>\
                    <item><instanceId>i-new</instanceId><instanceState><code>16</code><name>running</name></instanceState><stateReason/></item></instancesSet></r>";
        let (out, n) = pending_instances(body, &pending).unwrap_or_default();
        assert_eq!(n, 1);
        assert!(out.contains("<code>80</code><name>stopped</name>"));
        assert!(out.contains("<instanceId>i-new</instanceId><instanceState><code>0</code><name>pending</name></instanceState>"), "{out}");
        pending.clear();
        pending.insert("i-stopped".to_string(), Instant::now());
        assert_eq!(pending_instances(body, &pending), None);
    }
}
