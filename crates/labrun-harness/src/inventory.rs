//! A describe-all inventory of an account: what exists, by kind. Two inventories taken around
//! a chapter test must be equal, or the chapter leaked something.

use labrun_exec::assert::search;
use labrun_exec::{Backend, ErrorKind};
use labrun_lab::catalog;
use labrun_lab::derive::{self, Listing};
use labrun_lab::model::Workshop;
use labrun_lab::vocab::{kind, tag};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Kind → ids.
pub type Inventory = BTreeMap<&'static str, BTreeSet<String>>;

/// (kind, operation, parameters, JMESPath selecting the ids of live resources)
const LISTINGS: &[(&str, &str, &str, &str)] = &[
    (kind::VPC, "ec2:DescribeVpcs", "{}", "Vpcs[].VpcId"),
    (kind::SUBNET, "ec2:DescribeSubnets", "{}", "Subnets[].SubnetId"),
    (kind::INTERNET_GATEWAY, "ec2:DescribeInternetGateways", "{}", "InternetGateways[].InternetGatewayId"),
    (kind::ROUTE_TABLE, "ec2:DescribeRouteTables", "{}", "RouteTables[].RouteTableId"),
    (kind::SECURITY_GROUP, "ec2:DescribeSecurityGroups", "{}", "SecurityGroups[].GroupId"),
    (kind::VPC_ENDPOINT, "ec2:DescribeVpcEndpoints", "{}", "VpcEndpoints[?State!='deleted'].VpcEndpointId"),
    (kind::INSTANCE, "ec2:DescribeInstances", "{}", "Reservations[].Instances[?State.Name!='terminated'][].InstanceId"),
    (kind::KEY_PAIR, "ec2:DescribeKeyPairs", "{}", "KeyPairs[].KeyName"),
    (kind::IAM_ROLE, "iam:ListRoles", "{}", "Roles[].RoleName"),
    (kind::INSTANCE_PROFILE, "iam:ListInstanceProfiles", "{}", "InstanceProfiles[].InstanceProfileName"),
    (kind::IAM_USER, "iam:ListUsers", "{}", "Users[].UserName"),
    (kind::BUCKET, "s3:ListBuckets", "{}", "Buckets[].Name"),
    (kind::SSM_DOCUMENT, "ssm:ListDocuments", r#"{"Filters": [{"Key": "Owner", "Values": ["Self"]}]}"#, "DocumentIdentifiers[].Name"),
    // AWS's public parameters (`/aws/service/...`) are not the account's; LocalStack lists them.
    (kind::SSM_PARAMETER, "ssm:DescribeParameters", "{}", "Parameters[?!starts_with(Name, '/aws/')].Name"),
];

/// The listings, taken from the service models, of what the workshop's changes make beyond the
/// kinds above: a workshop using DynamoDB, Lambda or API Gateway has its tables, functions and
/// APIs counted too.
pub fn listings_for(w: &Workshop) -> Vec<Listing> {
    let fixed: BTreeSet<&str> = LISTINGS.iter().map(|(_, op, _, _)| *op).collect();
    let mut out: Vec<Listing> = Vec::new();
    for step in w.chapters.iter().flat_map(|c| &c.steps) {
        if step.op.read_only || step.op.synthetic {
            continue;
        }
        if let Some(l) = derive::listing(step.op.name)
            && !fixed.contains(l.op)
            && !out.contains(&l)
        {
            out.push(l);
        }
    }
    out
}

/// Takes the inventory of the backend's account and region: the fixed kinds, and `extra`
/// (from [`listings_for`]). A listing the emulator does not implement counts nothing: the
/// chapter's own steps report that service as a gap.
pub async fn take(b: &dyn Backend, extra: &[Listing]) -> Result<Inventory, String> {
    let mut inv = Inventory::new();
    for (kind, op, params, ids) in LISTINGS {
        let op = catalog::operation(op).expect("inventory uses catalog operations");
        let params: Value = serde_json::from_str(params).unwrap_or(json!({}));
        let resp = b.call(op, &params).await.map_err(|e| format!("inventory {}: {e}", op.name))?;
        let found = search(ids, &resp)?;
        let set: BTreeSet<String> = found.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        inv.insert(kind, set);
    }
    for l in extra {
        let op = catalog::operation(l.op).ok_or_else(|| format!("inventory: unknown operation {}", l.op))?;
        let resp = match labrun_exec::paginate::read_all(op, &json!({}), |page: Value| async move { b.call(op, &page).await }).await {
            Ok(r) => r,
            Err(e) if e.kind == ErrorKind::Unsupported => continue,
            Err(e) => return Err(format!("inventory {}: {e}", op.name)),
        };
        let set: BTreeSet<String> = resp[l.list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| match l.id {
                None => item.as_str(),
                Some(id) => item[id].as_str(),
            })
            .map(str::to_string)
            .collect();
        inv.insert(l.kind, set);
    }
    Ok(inv)
}

/// EC2 resources one run made more than once from the same step (two internet gateways where
/// the chapter asks for one): `kind made N times by step S` lines. Every create carries
/// `labrun:run` and `labrun:step` tags, so a duplicate of a create whose answer was lost shows.
pub async fn duplicates(b: &dyn Backend, run_id: &str) -> Result<Vec<String>, String> {
    let op = catalog::operation("ec2:DescribeTags").expect("catalog has ec2:DescribeTags");
    let resp = b
        .call(op, &json!({"Filters": [{"Name": "key", "Values": [tag::STEP]}]}))
        .await
        .map_err(|e| format!("duplicates {}: {e}", op.name))?;
    let runs = b
        .call(op, &json!({"Filters": [{"Name": "key", "Values": [tag::RUN]}, {"Name": "value", "Values": [run_id]}]}))
        .await
        .map_err(|e| format!("duplicates {}: {e}", op.name))?;
    let ours: BTreeSet<&str> = runs["Tags"].as_array().into_iter().flatten().filter_map(|t| t["ResourceId"].as_str()).collect();
    let mut count: BTreeMap<(String, String), usize> = BTreeMap::new();
    for t in resp["Tags"].as_array().into_iter().flatten() {
        let (Some(id), Some(kind), Some(step)) = (t["ResourceId"].as_str(), t["ResourceType"].as_str(), t["Value"].as_str()) else {
            continue;
        };
        if ours.contains(id) {
            *count.entry((kind.to_string(), step.to_string())).or_default() += 1;
        }
    }
    Ok(count.into_iter().filter(|(_, n)| *n > 1).map(|((kind, step), n)| format!("{kind} made {n} times by step {step}")).collect())
}

/// What `after` has that `before` did not, as `kind id` lines.
pub fn leaked(before: &Inventory, after: &Inventory) -> Vec<String> {
    after
        .iter()
        .flat_map(|(kind, ids)| {
            ids.iter().filter(move |id| !before.get(kind).is_some_and(|b| b.contains(*id))).map(move |id| format!("{kind} {id}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(dir: &str) -> Vec<(&'static str, &'static str)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(dir);
        let loaded = labrun_lab::load(&root).expect("loads");
        listings_for(&loaded.workshop).into_iter().map(|l| (l.kind, l.op)).collect()
    }

    #[test]
    fn the_inventory_covers_what_a_workshop_creates_beyond_the_fixed_kinds() {
        assert_eq!(
            kinds("examples/serverless-notes"),
            [
                ("dynamodb Table", "dynamodb:ListTables"),
                ("lambda Function", "lambda:ListFunctions"),
                ("apigateway RestApi", "apigateway:GetRestApis"),
            ]
        );
        // The seed workshop's kinds are all fixed ones; its other changes (attachments,
        // routes, attributes) are parts of those.
        assert_eq!(kinds("labs"), []);
    }

    #[test]
    fn leaks_are_named() {
        let mut a = Inventory::new();
        a.insert("vpc", ["vpc-default".to_string()].into());
        let mut b = a.clone();
        b.get_mut("vpc").unwrap().insert("vpc-new".into());
        b.insert("bucket", ["lab-x".to_string()].into());
        assert_eq!(leaked(&a, &b), vec!["bucket lab-x".to_string(), "vpc vpc-new".to_string()]);
        assert!(leaked(&b, &a).is_empty());
    }
}
