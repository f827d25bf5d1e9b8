//! The safety net after a ledger replay: find EC2 resources still tagged with this workshop's
//! chapters and delete them, dependents first. It covers what a lost or partial ledger missed.

use crate::backend::{Backend, CallError, ErrorKind};
use labrun_lab::catalog;
use serde_json::{Value, json};

/// Deletion order: what holds a reference goes before what it references.
const ORDER: &[&str] = &["instance", "vpc-endpoint", "key-pair", "route-table", "internet-gateway", "security-group", "subnet", "vpc"];

async fn call(b: &dyn Backend, name: &str, params: Value) -> Result<Value, CallError> {
    b.call(catalog::operation(name).expect("sweep uses catalog operations"), &params).await
}

/// Deletes resources tagged `labrun:workshop=<workshop>` whose `labrun:chapter` is one of
/// `chapters` (all chapters when `None`). Returns what it deleted and what it could not.
pub async fn sweep(b: &dyn Backend, workshop: &str, chapters: Option<&[String]>) -> (Vec<String>, Vec<String>) {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    let tags = match call(b, "ec2:DescribeTags", json!({"Filters": [{"Name": "key", "Values": ["labrun:chapter"]}]})).await {
        Ok(v) => v,
        Err(e) => return (done, vec![format!("sweep: {e}")]),
    };
    let workshop_tags = match call(
        b,
        "ec2:DescribeTags",
        json!({"Filters": [{"Name": "key", "Values": ["labrun:workshop"]}, {"Name": "value", "Values": [workshop]}]}),
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return (done, vec![format!("sweep: {e}")]),
    };
    let kept = match call(
        b,
        "ec2:DescribeTags",
        json!({"Filters": [{"Name": "key", "Values": ["labrun:cleanup"]}, {"Name": "value", "Values": ["none"]}]}),
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return (done, vec![format!("sweep: {e}")]),
    };
    let keep: Vec<&str> = kept["Tags"].as_array().into_iter().flatten().filter_map(|t| t["ResourceId"].as_str()).collect();
    let ours: Vec<&str> = workshop_tags["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["ResourceId"].as_str())
        .filter(|id| !keep.contains(id))
        .collect();
    let mut found: Vec<(String, String)> = tags["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| chapters.is_none_or(|c| t["Value"].as_str().is_some_and(|v| c.iter().any(|x| x == v))))
        .filter_map(|t| Some((t["ResourceType"].as_str()?.to_string(), t["ResourceId"].as_str()?.to_string())))
        .filter(|(_, id)| ours.contains(&id.as_str()))
        .collect();
    found.sort_by_key(|(kind, _)| ORDER.iter().position(|k| k == kind).unwrap_or(ORDER.len()));
    for (kind, id) in found {
        let result = delete(b, &kind, &id).await;
        match result {
            Ok(true) => done.push(format!("{kind} {id}")),
            Ok(false) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => failed.push(format!("{kind} {id}: {e}")),
        }
    }
    (done, failed)
}

/// Deletes one resource; `Ok(false)` when it is already gone (a terminated instance, say).
async fn delete(b: &dyn Backend, kind: &str, id: &str) -> Result<bool, CallError> {
    match kind {
        "instance" => {
            let d = call(b, "ec2:DescribeInstances", json!({"InstanceIds": [id]})).await?;
            let state = d.pointer("/Reservations/0/Instances/0/State/Name").and_then(Value::as_str).unwrap_or("terminated");
            if matches!(state, "terminated" | "shutting-down") {
                return Ok(false);
            }
            call(b, "ec2:TerminateInstances", json!({"InstanceIds": [id]})).await?;
        }
        "vpc-endpoint" => {
            let d = call(b, "ec2:DescribeVpcEndpoints", json!({"VpcEndpointIds": [id]})).await?;
            if matches!(d.pointer("/VpcEndpoints/0/State").and_then(Value::as_str), Some("deleted" | "deleting") | None) {
                return Ok(false);
            }
            call(b, "ec2:DeleteVpcEndpoints", json!({"VpcEndpointIds": [id]})).await?;
        }
        "key-pair" => {
            // Tags can outlive a deleted key pair on some emulators: confirm it is there first.
            let d = call(b, "ec2:DescribeKeyPairs", json!({"KeyPairIds": [id]})).await?;
            if d.pointer("/KeyPairs/0").is_none() {
                return Ok(false);
            }
            call(b, "ec2:DeleteKeyPair", json!({"KeyPairId": id})).await?;
        }
        "route-table" => {
            let d = call(b, "ec2:DescribeRouteTables", json!({"RouteTableIds": [id]})).await?;
            for a in d.pointer("/RouteTables/0/Associations").and_then(Value::as_array).into_iter().flatten() {
                if a["Main"] != json!(true)
                    && let Some(aid) = a["RouteTableAssociationId"].as_str()
                {
                    call(b, "ec2:DisassociateRouteTable", json!({"AssociationId": aid})).await?;
                }
            }
            call(b, "ec2:DeleteRouteTable", json!({"RouteTableId": id})).await?;
        }
        "internet-gateway" => {
            let d = call(b, "ec2:DescribeInternetGateways", json!({"InternetGatewayIds": [id]})).await?;
            for a in d.pointer("/InternetGateways/0/Attachments").and_then(Value::as_array).into_iter().flatten() {
                if let Some(vpc) = a["VpcId"].as_str() {
                    call(b, "ec2:DetachInternetGateway", json!({"InternetGatewayId": id, "VpcId": vpc})).await?;
                }
            }
            call(b, "ec2:DeleteInternetGateway", json!({"InternetGatewayId": id})).await?;
        }
        "security-group" => {
            call(b, "ec2:DeleteSecurityGroup", json!({"GroupId": id})).await?;
        }
        "subnet" => {
            call(b, "ec2:DeleteSubnet", json!({"SubnetId": id})).await?;
        }
        "vpc" => {
            call(b, "ec2:DeleteVpc", json!({"VpcId": id})).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}
