//! labrun's tags go into a create the way its API takes them, for every kind of tagging the
//! catalog knows (curated, or inferred from a service model).

use labrun_exec::engine::{add_tags, labrun_tags};
use labrun_lab::catalog::{Tagging, operation};
use serde_json::json;

#[test]
fn tags_take_each_services_shape() {
    let tags = labrun_tags("w", "3.1", "run", "3.1/fn", false);
    // Lambda: a string map, keeping the lab's own tags.
    let fun = operation("lambda:CreateFunction").unwrap();
    assert_eq!(fun.tagging, Tagging::Map("Tags"));
    let mut p = json!({"FunctionName": "f", "Tags": {"team": "a"}});
    add_tags(fun, &mut p, &tags);
    assert_eq!(p["Tags"]["team"], "a");
    assert_eq!(p["Tags"]["labrun:step"], "3.1/fn");
    assert_eq!(p["Tags"].as_object().unwrap().len(), 5);
    // ECS: `tags: [{key, value}]`.
    let ecs = operation("ecs:CreateCluster").unwrap();
    let mut p = json!({"clusterName": "c"});
    add_tags(ecs, &mut p, &tags);
    assert_eq!(p["tags"][0], json!({"key": "labrun:workshop", "value": "w"}));
    // KMS: `Tags: [{TagKey, TagValue}]` after the lab's own.
    let kms = operation("kms:CreateKey").unwrap();
    let mut p = json!({"Tags": [{"TagKey": "team", "TagValue": "a"}]});
    add_tags(kms, &mut p, &tags);
    assert_eq!(p["Tags"].as_array().unwrap().len(), 5);
    assert_eq!(p["Tags"][4], json!({"TagKey": "labrun:step", "TagValue": "3.1/fn"}));
    // An EC2 create the curated table does not list: its resource type from the model.
    let nat = operation("ec2:CreateNatGateway").unwrap();
    let mut p = json!({"SubnetId": "subnet-1"});
    add_tags(nat, &mut p, &tags);
    assert_eq!(p["TagSpecifications"][0]["ResourceType"], "natgateway");
    assert_eq!(p["TagSpecifications"][0]["Tags"].as_array().unwrap().len(), 4);
}
