//! The embedded models load, say what the APIs say, and agree with labrun's hand-written
//! catalog: every catalog operation exists in its service's model, with every parameter the
//! catalog lists as a member of the operation's input.

use labrun_models::{ModelError, load, services};

const PROTOCOLS: &[&str] = &["ec2", "query", "json", "rest-json", "rest-xml", "smithy-rpc-v2-cbor"];

#[test]
fn every_embedded_service_loads_with_operations_and_a_known_protocol() {
    let names: Vec<&str> = services().collect();
    assert_eq!(names.len(), 32, "{names:?}");
    for name in names {
        let s = load(name).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.operations.is_empty(), "{name}: no operations");
        assert!(PROTOCOLS.contains(&s.metadata.protocol.as_str()), "{name}: protocol {}", s.metadata.protocol);
        // Every operation's input and output name a shape that exists.
        for (op, o) in &s.operations {
            for r in o.input.iter().chain(o.output.iter()) {
                assert!(s.shape(&r.shape).is_some(), "{name}:{op} refers to a missing shape {}", r.shape);
            }
        }
    }
}

#[test]
fn the_models_say_what_the_api_reference_says() {
    let ec2 = load("ec2").unwrap();
    assert_eq!(ec2.metadata.protocol, "ec2");
    let input = ec2.input("CreateVpc").unwrap();
    assert_eq!(input.members["CidrBlock"].shape, "String");
    assert!(input.members.contains_key("TagSpecifications"));
    let output = ec2.output("CreateVpc").unwrap();
    let vpc = ec2.shape(&output.members["Vpc"].shape).unwrap();
    assert!(vpc.members.contains_key("VpcId") && !vpc.members.contains_key("VpcID"));
    assert_eq!(ec2.idempotency_token("RunInstances"), Some("ClientToken"));
    assert_eq!(ec2.idempotency_token("CreateVpc"), None, "CreateVpc takes no client token");
    assert!(ec2.waiters.contains_key("InstanceRunning"));

    let iam = load("iam").unwrap();
    assert_eq!(iam.metadata.protocol, "query");
    assert!(iam.input("CreateRole").unwrap().required.contains(&"RoleName".to_string()));
    let roles = &iam.paginators["ListRoles"];
    assert_eq!(roles.output_token.all(), ["Marker"]);
    assert_eq!(roles.result_key.as_ref().unwrap().all(), ["Roles"]);

    let ssm = load("ssm").unwrap();
    assert_eq!((ssm.metadata.protocol.as_str(), ssm.metadata.target_prefix.as_deref()), ("json", Some("AmazonSSM")));
    let lambda = load("lambda").unwrap();
    assert_eq!(lambda.metadata.protocol, "rest-json");
    assert_eq!(lambda.operations["CreateFunction"].http.method, "POST");
    let s3 = load("s3").unwrap();
    assert_eq!(s3.metadata.protocol, "rest-xml");
    assert_eq!(s3.input("GetObject").unwrap().members["Bucket"].location.as_deref(), Some("uri"));
}

#[test]
fn a_service_is_parsed_once_and_shared() {
    let a = load("sts").unwrap();
    let b = load("sts").unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}

#[test]
fn an_unknown_service_says_which_there_are() {
    let e = load("ec3").unwrap_err();
    assert!(matches!(&e, ModelError::UnknownService { name, .. } if name == "ec3"));
    assert!(e.to_string().contains("ec2, ecr, ecs"), "{e}");
}

/// The hand-written catalog (labrun-lab) names operations and parameters as the models do.
#[test]
fn the_catalog_agrees_with_the_models() {
    let mut problems = Vec::new();
    for op in labrun_lab::catalog::OPERATIONS.iter().filter(|o| !o.synthetic) {
        let service = load(op.service()).unwrap_or_else(|e| panic!("{}: {e}", op.name));
        let Some(input) = service.input(op.action()) else {
            if !service.operations.contains_key(op.action()) {
                problems.push(format!("{}: no such operation in the model", op.name));
            } else if !op.params.is_empty() {
                problems.push(format!("{}: the model's operation takes no input", op.name));
            }
            continue;
        };
        for p in op.params {
            if !input.members.contains_key(p.name) {
                problems.push(format!("{}: the model's input has no member {}", op.name, p.name));
            }
        }
        // A member the model marks as the client token is one labrun must fill (some APIs,
        // such as CreateVpcEndpoint, take a ClientToken the model does not mark).
        if let Some(token) = service.idempotency_token(op.action())
            && op.client_token != Some(token)
        {
            problems.push(format!("{}: the model's client token {token} is not the catalog's", op.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
