//! `labrun:CheckSsmReachability`: can this instance reach Systems Manager?
//!
//! Session Manager itself cannot run on an emulator, but the question a learner has can be
//! answered from describe calls alone, the same way on LocalStack and on AWS: the instance needs
//! an instance profile whose role grants the SSM core permissions, and a network path to the
//! ssm, ssmmessages and ec2messages endpoints, either over the internet (public IP, a default
//! route to an internet gateway, HTTPS egress) or through interface endpoints in its VPC
//! (private DNS on, DNS support and hostnames on the VPC, the endpoint security group admitting
//! HTTPS from the instance, the instance allowed HTTPS out to the endpoints).

use crate::backend::{Backend, CallError, ErrorKind};
use labrun_lab::catalog::{self, Operation};
use serde_json::{Value, json};

const SERVICES: [&str; 3] = ["ssm", "ssmmessages", "ec2messages"];
/// Managed policies that grant what the SSM agent needs.
const SSM_POLICIES: [&str; 4] = ["AmazonSSMManagedInstanceCore", "AmazonEC2RoleforSSM", "AmazonSSMFullAccess", "AdministratorAccess"];

struct Report {
    conditions: Vec<Value>,
}

impl Report {
    fn add(&mut self, name: &str, passed: bool, resource: &str, detail: impl Into<String>) -> bool {
        self.conditions.push(json!({"Name": name, "Passed": passed, "Resource": resource, "Detail": detail.into()}));
        passed
    }
}

async fn read(b: &dyn Backend, name: &str, params: Value) -> Result<Value, CallError> {
    let op = catalog::operation(name).expect("reachability uses catalog operations");
    b.call(op, &params).await
}

pub async fn check(b: &dyn Backend, params: &Value) -> Result<Value, CallError> {
    let instance_id = params
        .get("InstanceId")
        .and_then(Value::as_str)
        .ok_or_else(|| CallError::new(ErrorKind::Client, "MissingParameter", "InstanceId is required"))?;
    let mut r = Report { conditions: Vec::new() };
    let resp = read(b, "ec2:DescribeInstances", json!({"InstanceIds": [instance_id]})).await?;
    let Some(inst) = resp.pointer("/Reservations/0/Instances/0").cloned() else {
        r.add("instance-running", false, instance_id, "no such instance");
        return Ok(finish(instance_id, r, None, None));
    };
    let state = inst.pointer("/State/Name").and_then(Value::as_str).unwrap_or("unknown");
    r.add("instance-running", state == "running", instance_id, format!("state is {state}"));

    // Identity: instance profile → role → SSM permissions.
    let profile_arn = inst.pointer("/IamInstanceProfile/Arn").and_then(Value::as_str);
    match profile_arn {
        None => {
            r.add(
                "instance-profile",
                false,
                instance_id,
                "no IAM instance profile is attached; attach one whose role has AmazonSSMManagedInstanceCore",
            );
        }
        Some(arn) => {
            let name = arn.rsplit('/').next().unwrap_or(arn);
            r.add("instance-profile", true, name, "attached");
            match read(b, "iam:GetInstanceProfile", json!({"InstanceProfileName": name})).await {
                Ok(p) => match p.pointer("/InstanceProfile/Roles/0/RoleName").and_then(Value::as_str) {
                    None => {
                        r.add("role-has-ssm-policy", false, name, "the instance profile holds no role");
                    }
                    Some(role) => {
                        let attached = read(b, "iam:ListAttachedRolePolicies", json!({"RoleName": role})).await?;
                        let names: Vec<&str> = attached
                            .get("AttachedPolicies")
                            .and_then(Value::as_array)
                            .map(|a| a.iter().filter_map(|p| p.get("PolicyName").and_then(Value::as_str)).collect())
                            .unwrap_or_default();
                        let ok = names.iter().any(|n| SSM_POLICIES.contains(n));
                        r.add(
                            "role-has-ssm-policy",
                            ok,
                            role,
                            if ok {
                                format!("has {}", names.iter().find(|n| SSM_POLICIES.contains(n)).unwrap_or(&""))
                            } else {
                                format!("attached policies {names:?} do not include AmazonSSMManagedInstanceCore")
                            },
                        );
                    }
                },
                Err(e) if e.kind == ErrorKind::NotFound => {
                    r.add("role-has-ssm-policy", false, name, "the instance profile no longer exists");
                }
                Err(e) => return Err(e),
            }
        }
    }

    // Network.
    let subnet = inst.get("SubnetId").and_then(Value::as_str).unwrap_or("");
    let vpc = inst.get("VpcId").and_then(Value::as_str).unwrap_or("");
    let groups: Vec<String> = inst
        .get("SecurityGroups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|g| g.get("GroupId").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default();
    let instance_sgs = describe_groups(b, &groups).await?;
    let private_ip = inst.get("PrivateIpAddress").and_then(Value::as_str).unwrap_or("");
    let public = inst.get("PublicIpAddress").and_then(Value::as_str).filter(|s| !s.is_empty());

    let path = if public.is_some() {
        let mut ok = r.add("public-ip", true, instance_id, format!("public IP {}", public.unwrap_or_default()));
        let routes = effective_routes(b, vpc, subnet).await?;
        let igw = routes.iter().find(|rt| {
            rt.get("DestinationCidrBlock").and_then(Value::as_str) == Some("0.0.0.0/0")
                && rt.get("GatewayId").and_then(Value::as_str).is_some_and(|g| g.starts_with("igw-"))
        });
        ok &= r.add(
            "route-to-internet-gateway",
            igw.is_some(),
            subnet,
            match igw {
                Some(rt) => format!("0.0.0.0/0 → {}", rt.get("GatewayId").and_then(Value::as_str).unwrap_or("")),
                None => "the subnet's route table has no 0.0.0.0/0 route to an internet gateway".into(),
            },
        );
        let egress = instance_sgs
            .iter()
            .any(|g| allows_443(g.get("IpPermissionsEgress"), |cidr| cidr_contains(cidr, "0.0.0.0/0") || cidr == "0.0.0.0/0", &[]));
        ok &= r.add(
            "instance-egress-https",
            egress,
            &groups.join(","),
            if egress { "HTTPS out to the internet is allowed" } else { "no egress rule allows TCP 443 to 0.0.0.0/0" },
        );
        ok.then_some("internet")
    } else {
        let region = b.target().region.clone();
        let mut ok = true;
        let endpoints = read(b, "ec2:DescribeVpcEndpoints", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]})).await?;
        let list: Vec<Value> = endpoints.get("VpcEndpoints").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut endpoint_groups: Vec<String> = Vec::new();
        let mut endpoint_subnets: Vec<String> = Vec::new();
        for svc in SERVICES {
            let want = format!("com.amazonaws.{region}.{svc}");
            let found = list.iter().find(|e| {
                e.get("ServiceName").and_then(Value::as_str) == Some(want.as_str())
                    && !matches!(e.get("State").and_then(Value::as_str), Some("deleted" | "deleting" | "failed" | "rejected"))
            });
            let name = format!("endpoint-{svc}");
            ok &= match found {
                None => r.add(&name, false, vpc, format!("no interface endpoint for {want} in the VPC")),
                Some(e) => {
                    let id = e.get("VpcEndpointId").and_then(Value::as_str).unwrap_or("");
                    let dns = e.get("PrivateDnsEnabled").and_then(Value::as_bool).unwrap_or(false);
                    let state = e.get("State").and_then(Value::as_str).unwrap_or("");
                    for g in e.get("Groups").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(gid) = g.get("GroupId").and_then(Value::as_str) {
                            endpoint_groups.push(gid.to_string());
                        }
                    }
                    for s in e.get("SubnetIds").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(s) = s.as_str() {
                            endpoint_subnets.push(s.to_string());
                        }
                    }
                    let good = dns && state == "available";
                    r.add(
                        &name,
                        good,
                        id,
                        if good {
                            "available, private DNS on".to_string()
                        } else if !dns {
                            "private DNS is off".to_string()
                        } else {
                            format!("state is {state}")
                        },
                    )
                }
            };
        }
        for (attr, key, label) in
            [("enableDnsSupport", "EnableDnsSupport", "vpc-dns-support"), ("enableDnsHostnames", "EnableDnsHostnames", "vpc-dns-hostnames")]
        {
            let v = read(b, "ec2:DescribeVpcAttribute", json!({"VpcId": vpc, "Attribute": attr})).await?;
            let on = v.pointer(&format!("/{key}/Value")).and_then(Value::as_bool).unwrap_or(false);
            ok &= r.add(
                label,
                on,
                vpc,
                if on { format!("{attr} is on") } else { format!("{attr} is off; private DNS names of the endpoints will not resolve") },
            );
        }
        // The three endpoints usually share groups and subnets; describe each once.
        endpoint_groups.sort();
        endpoint_groups.dedup();
        endpoint_subnets.sort();
        endpoint_subnets.dedup();
        // Without endpoints there is nothing to judge the security groups against: the missing
        // endpoints are the failures to fix first.
        if endpoint_groups.is_empty() {
            return Ok(finish(instance_id, r, None, Some("vpc-endpoints")));
        }
        let ep_sgs = describe_groups(b, &endpoint_groups).await?;
        let ingress = !ep_sgs.is_empty()
            && ep_sgs.iter().any(|g| allows_443(g.get("IpPermissions"), |cidr| cidr_contains(cidr, private_ip), &groups));
        ok &= r.add(
            "endpoint-sg-allows-https",
            ingress,
            &endpoint_groups.join(","),
            if ingress {
                format!("TCP 443 from {private_ip} is admitted")
            } else {
                format!("no inbound rule on the endpoints' security group admits TCP 443 from the instance ({private_ip})")
            },
        );
        let subnet_cidrs = subnet_cidrs(b, &endpoint_subnets).await?;
        let egress = instance_sgs.iter().any(|g| {
            allows_443(
                g.get("IpPermissionsEgress"),
                |cidr| !subnet_cidrs.is_empty() && subnet_cidrs.iter().all(|s| cidr_contains(cidr, s)),
                &endpoint_groups,
            )
        });
        ok &= r.add(
            "instance-egress-https",
            egress,
            &groups.join(","),
            if egress {
                "HTTPS out to the endpoints is allowed".to_string()
            } else {
                "no egress rule of the instance allows TCP 443 to the endpoints' subnet".to_string()
            },
        );
        ok.then_some("vpc-endpoints")
    };
    Ok(finish(instance_id, r, path, Some(if public.is_some() { "internet" } else { "vpc-endpoints" })))
}

/// The failing conditions in a check's `Failed` list, one line each (`name [resource]: detail`),
/// so a report can show them without knowing this answer's layout. Empty for anything else.
pub fn explain(actual: &Value) -> Vec<String> {
    let Some(items) = actual.as_array().filter(|a| a.iter().all(|c| c.get("Name").is_some())) else { return Vec::new() };
    items
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            format!("{} [{}]: {}", s("Name"), s("Resource"), s("Detail"))
        })
        .collect()
}

/// Entry point used by the engine for the synthetic operation.
pub async fn call(b: &dyn Backend, op: &Operation, params: &Value) -> Result<Value, CallError> {
    debug_assert!(op.synthetic);
    check(b, params).await
}

fn finish(instance: &str, r: Report, path: Option<&str>, tried: Option<&str>) -> Value {
    let failed: Vec<Value> = r.conditions.iter().filter(|c| c["Passed"] == json!(false)).cloned().collect();
    json!({
        "InstanceId": instance,
        "Reachable": failed.is_empty(),
        "Path": path.or(tried),
        "Conditions": r.conditions,
        "Failed": failed,
    })
}

async fn describe_groups(b: &dyn Backend, ids: &[String]) -> Result<Vec<Value>, CallError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let v = read(b, "ec2:DescribeSecurityGroups", json!({"GroupIds": ids})).await?;
    Ok(v.get("SecurityGroups").and_then(Value::as_array).cloned().unwrap_or_default())
}

async fn subnet_cidrs(b: &dyn Backend, ids: &[String]) -> Result<Vec<String>, CallError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let v = read(b, "ec2:DescribeSubnets", json!({"SubnetIds": ids})).await?;
    Ok(v.get("Subnets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("CidrBlock").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default())
}

/// Routes of the subnet's explicit route table, or else of the VPC's main route table.
async fn effective_routes(b: &dyn Backend, vpc: &str, subnet: &str) -> Result<Vec<Value>, CallError> {
    let explicit = read(b, "ec2:DescribeRouteTables", json!({"Filters": [{"Name": "association.subnet-id", "Values": [subnet]}]})).await?;
    let tables = match explicit.get("RouteTables").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        Some(t) => t.clone(),
        None => {
            let main = read(
                b,
                "ec2:DescribeRouteTables",
                json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]}),
            )
            .await?;
            main.get("RouteTables").and_then(Value::as_array).cloned().unwrap_or_default()
        }
    };
    Ok(tables.iter().flat_map(|t| t.get("Routes").and_then(Value::as_array).cloned().unwrap_or_default()).collect())
}

/// Does some rule allow TCP 443 to/from a CIDR accepted by `cidr_ok`, or a group in `groups`?
fn allows_443(perms: Option<&Value>, cidr_ok: impl Fn(&str) -> bool, groups: &[String]) -> bool {
    perms.and_then(Value::as_array).into_iter().flatten().any(|p| {
        let proto = p.get("IpProtocol").and_then(Value::as_str).unwrap_or("");
        let from = p.get("FromPort").and_then(Value::as_i64).unwrap_or(-1);
        let to = p.get("ToPort").and_then(Value::as_i64).unwrap_or(-1);
        let port_ok = proto == "-1" || ((proto == "tcp" || proto == "6") && from <= 443 && 443 <= to);
        let cidrs =
            p.get("IpRanges").and_then(Value::as_array).into_iter().flatten().filter_map(|r| r.get("CidrIp").and_then(Value::as_str));
        let group_ok = p
            .get("UserIdGroupPairs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("GroupId").and_then(Value::as_str))
            .any(|g| groups.iter().any(|x| x == g));
        port_ok && (cidrs.into_iter().any(&cidr_ok) || group_ok)
    })
}

fn parse_cidr(c: &str) -> Option<(u32, u32)> {
    let (ip, len) = c.split_once('/').unwrap_or((c, "32"));
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let octets: Vec<u32> = ip.split('.').map(|o| o.parse::<u32>().ok().filter(|v| *v < 256)).collect::<Option<_>>()?;
    if octets.len() != 4 {
        return None;
    }
    let addr = octets.iter().fold(0u32, |a, o| (a << 8) | o);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((addr & mask, mask))
}

/// Whether `outer` contains all of `inner` (an address or a CIDR).
pub fn cidr_contains(outer: &str, inner: &str) -> bool {
    match (parse_cidr(outer), parse_cidr(inner)) {
        (Some((net, mask)), Some((inet, imask))) => imask & mask == mask && inet & mask == net,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert!(cidr_contains("10.10.0.0/16", "10.10.2.0/24"));
        assert!(cidr_contains("10.10.0.0/16", "10.10.2.7"));
        assert!(cidr_contains("0.0.0.0/0", "10.10.2.0/24"));
        assert!(!cidr_contains("10.10.1.0/24", "10.10.2.0/24"));
        assert!(!cidr_contains("10.10.2.0/24", "10.10.0.0/16"));
        assert!(!cidr_contains("nonsense", "10.0.0.1"));
    }

    #[test]
    fn https_rules() {
        let perms = json!([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.10.0.0/16"}]}]);
        assert!(allows_443(Some(&perms), |c| cidr_contains(c, "10.10.2.9"), &[]));
        assert!(!allows_443(Some(&perms), |c| cidr_contains(c, "192.168.0.1"), &[]));
        let all = json!([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]);
        assert!(allows_443(Some(&all), |c| cidr_contains(c, "10.10.2.0/24"), &[]));
        let ssh = json!([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]);
        assert!(!allows_443(Some(&ssh), |_| true, &[]));
    }
}
