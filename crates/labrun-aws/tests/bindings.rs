//! The catalog (in labrun-lab) and the SDK bindings (here) must name the same operations and
//! parameters. Each operation is called against an endpoint that refuses connections: the
//! binding reads every parameter it knows before sending, so what it read can be compared with
//! what the catalog declares as bound (`Operation::bound`: the curated parameter names; the
//! catalog's full parameter list comes from the service model), and the call itself fails fast.

use labrun_aws::{AwsBackend, Connect, ErrorKind};
use labrun_lab::catalog::{Param, Ty, curated};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

fn sample(ty: &Ty) -> Value {
    match ty {
        Ty::Str => json!("x"),
        Ty::Bool => json!(true),
        Ty::Int => json!(1),
        Ty::Float => json!(1.5),
        Ty::Timestamp => json!("2024-01-01T00:00:00Z"),
        Ty::Blob => json!("eA=="),
        Ty::Map(_, value) => json!({"k": sample(value)}),
        Ty::Any => json!({}),
        Ty::Doc => json!({"Version": "2012-10-17"}),
        Ty::StrListMap => json!({"portNumber": ["3389"]}),
        Ty::Enum(values) => json!(values[0]),
        Ty::List(inner) => json!([sample(inner)]),
        Ty::Struct(fields) => struct_sample(fields),
    }
}

fn struct_sample(fields: &[Param]) -> Value {
    Value::Object(fields.iter().map(|p| (p.name.to_string(), sample(&p.ty))).collect::<Map<_, _>>())
}

#[tokio::test]
async fn every_catalog_operation_has_a_binding_that_reads_exactly_its_parameters() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let backend = AwsBackend::connect(Connect::emulator(&format!("http://127.0.0.1:{port}"), "ap-southeast-1", None)).await.unwrap();
    let mut problems = Vec::new();
    for op in curated().filter(|o| !o.synthetic) {
        let Some(bound) = op.bound else {
            problems.push(format!("{}: a curated operation without `bound`", op.name));
            continue;
        };
        let fields: Vec<Param> = bound.iter().filter_map(|b| op.param(b).copied()).collect();
        let params = struct_sample(&fields);
        let (result, taken) = backend.call_traced(op, &params).await;
        let declared: HashSet<String> = bound.iter().map(|b| b.to_string()).collect();
        if taken != declared {
            problems.push(format!("{}: catalog {declared:?}, binding {taken:?}", op.name));
        }
        match result {
            Err(e) if e.code == "UnboundOperation" => problems.push(format!("{}: no binding", op.name)),
            Err(e) if e.kind == ErrorKind::Client && e.code.starts_with("InvalidParameter") => {
                problems.push(format!("{}: sample rejected: {e}", op.name))
            }
            Err(e) if e.kind != ErrorKind::Environment => problems.push(format!("{}: expected a connection error, got {e:?}", op.name)),
            Ok(v) => problems.push(format!("{}: answered {v} from a closed port", op.name)),
            Err(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn a_parameter_the_binding_does_not_know_is_refused_before_sending() {
    let backend = AwsBackend::connect(Connect::emulator("http://127.0.0.1:9", "us-east-1", None)).await.unwrap();
    let op = labrun_lab::catalog::operation("ec2:DescribeVpcs").unwrap();
    let (result, _) = backend.call_traced(op, &json!({"VpcIdz": ["vpc-1"]})).await;
    let err = result.unwrap_err();
    assert_eq!(err.code, "UnknownParameter");
    assert!(err.message.contains("`VpcIdz`"), "{err}");
    let (result, _) = backend.call_traced(op, &json!({"VpcIds": 5})).await;
    assert_eq!(result.unwrap_err().code, "InvalidParameterValue");
}
