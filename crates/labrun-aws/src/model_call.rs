//! Any operation of an embedded service model, called through the SDK's own schema-driven
//! protocol layer: no per-operation Rust, no hand-rolled wire format, signing or HTTP.
//!
//! From the botocore model of a service (`labrun_models`) this module builds runtime
//! [`Schema`]s, the descriptors the SDK's generated code emits as statics; serialises the
//! step's JSON through them with the protocol the model names (`aws-smithy-json` awsJson 1.0/1.1
//! and restJson1, `aws-smithy-query` awsQuery, `aws-smithy-xml` restXml); sends the request
//! through `aws-smithy-runtime`'s orchestrator with the SDK config's HTTP client, credentials
//! and SigV4 (`aws-runtime`); and reads the answer back into JSON keyed by the model's member
//! names, as boto3 does.
//!
//! EC2 speaks `ec2Query`, which those crates do not implement. Its requests are awsQuery with
//! two rules of its own (every list flattened as `Name.N`, members named by `queryName` or the
//! capitalised `locationName`), so they go through the awsQuery serialiser with schemas built
//! by those rules; its answers are plain XML (no `Result` wrapper), read with the XML codec.
//! That is the "small ec2Query codec on the same runtime"; the typed `aws-sdk-ec2` bindings
//! remain for the operations labrun's curated catalog binds.
//!
//! Schemas are built once per (service, shape, direction) and kept for the process (leaked:
//! schemas borrow their parts, and a CLI process calls a bounded set of operations).
//! Blobs travel as base64 strings in both directions; timestamps come back as RFC 3339
//! strings; a string member given a mapping or list (a policy document) is sent as its JSON.

use crate::{CallError, ErrorKind, TargetKind, classify};
use aws_runtime::auth::{SigV4OperationSigningConfig, SigningOptions, sigv4};
use aws_smithy_json::protocol::aws_json_rpc::AwsJsonRpcProtocol;
use aws_smithy_json::protocol::aws_rest_json_1::AwsRestJsonProtocol;
use aws_smithy_query::protocol::AwsQueryProtocol;
use aws_smithy_runtime::client::orchestrator::operation::Operation as RtOperation;
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::auth::{AuthSchemeOptionResolverParams, SharedAuthScheme, SharedAuthSchemeOptionResolver};
use aws_smithy_runtime_api::client::identity::SharedIdentityResolver;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_runtime_api::client::runtime_plugin::StaticRuntimePlugin;
use aws_smithy_schema::protocol::{ClientProtocolInner, ServiceVersion};
use aws_smithy_schema::serde::{SerdeError, SerializableStruct, ShapeDeserializer, ShapeSerializer};
use aws_smithy_schema::traits::{HttpTrait, TimestampFormat};
use aws_smithy_schema::{Schema, ShapeId, ShapeType};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Layer};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::{Blob, DateTime, Document, Number};
use aws_smithy_xml::codec::{XmlCodec, XmlCodecSettings};
use aws_smithy_xml::protocol::aws_rest_xml::AwsRestXmlProtocol;
use labrun_models::{Member, Service, Shape};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

type S = Schema<'static>;

fn leak(s: impl Into<String>) -> &'static str {
    Box::leak(s.into().into_boxed_str())
}

/// How a service's models become wire schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Style {
    /// awsJson 1.0 / 1.1, restJson1, awsQuery, restXml: one set of names both ways.
    Plain,
    /// ec2Query requests: `queryName` or capitalised `locationName`, lists flattened.
    Ec2Request,
    /// ec2Query answers: `locationName`, lists of `<item>`.
    Ec2Response,
}

/// The runtime schemas of one service in one style, built on demand.
struct Schemas {
    svc: Arc<Service>,
    ns: &'static str,
    style: Style,
    structs: Mutex<HashMap<String, &'static S>>,
}

fn schemas(service: &str, svc: &Arc<Service>, style: Style) -> Arc<Schemas> {
    static CACHE: OnceLock<Mutex<HashMap<(String, Style), Arc<Schemas>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (service.to_string(), style);
    if let Some(s) = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
        return s.clone();
    }
    let built = Arc::new(Schemas { ns: leak(format!("com.amazonaws.{service}")), svc: svc.clone(), style, structs: Mutex::default() });
    cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_insert(built).clone()
}

fn shape_type(shape: &Shape) -> ShapeType {
    match shape.kind.as_str() {
        "structure" if shape.document => ShapeType::Document,
        "structure" if shape.union => ShapeType::Union,
        "structure" => ShapeType::Structure,
        "list" => ShapeType::List,
        "map" => ShapeType::Map,
        "boolean" => ShapeType::Boolean,
        "integer" => ShapeType::Integer,
        "long" => ShapeType::Long,
        "float" => ShapeType::Float,
        "double" => ShapeType::Double,
        "bigdecimal" => ShapeType::BigDecimal,
        "biginteger" => ShapeType::BigInteger,
        "timestamp" => ShapeType::Timestamp,
        "blob" => ShapeType::Blob,
        _ => ShapeType::String,
    }
}

fn timestamp_format(name: Option<&str>) -> Option<TimestampFormat> {
    match name? {
        "iso8601" => Some(TimestampFormat::DateTime),
        "rfc822" => Some(TimestampFormat::HttpDate),
        "unixTimestamp" => Some(TimestampFormat::EpochSeconds),
        _ => None,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

impl Schemas {
    fn shape(&self, name: &str) -> Result<&Shape, CallError> {
        self.svc.shape(name).ok_or_else(|| CallError::new(ErrorKind::Client, "ModelError", format!("the model has no shape `{name}`")))
    }

    /// The schema of structure `name` (its members' schemas included).
    fn structure(&self, name: &str) -> Result<&'static S, CallError> {
        if let Some(s) = self.structs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name) {
            return Ok(s);
        }
        let shape = self.shape(name)?;
        let payload = shape.payload.as_deref();
        let mut members: Vec<&'static S> = Vec::with_capacity(shape.members.len());
        for (i, (mname, m)) in shape.members.iter().enumerate() {
            members.push(Box::leak(Box::new(self.member(name, mname, m, i, payload == Some(mname.as_str()))?)));
        }
        let members: &'static [&'static S] = Box::leak(members.into_boxed_slice());
        let id = ShapeId::from_parts(leak(format!("{}#{name}", self.ns)), self.ns, leak(name));
        let mut s = Schema::new_struct(id, shape_type(shape), members);
        if let Some(ns) = &shape.xml_namespace {
            s = s.with_xml_namespace(leak(ns.uri.clone()), ns.prefix.clone().map(leak));
        }
        let s: &'static S = Box::leak(Box::new(s));
        self.structs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_string(), s);
        Ok(s)
    }

    /// An operation's input schema, with its HTTP binding for the REST protocols; built once
    /// per operation. It shares the input structure's member schemas and adds the operation's
    /// own traits (method and URI, root element name and namespace).
    fn input(&self, op: &labrun_models::Operation) -> Result<&'static S, CallError> {
        self.per_operation(format!("{}$input", op.name), || {
            let Some(r) = &op.input else { return Ok(self.empty(&format!("{}Request", op.name), Some(op))) };
            let members = self.structure(&r.shape)?.members();
            let shape = self.shape(&r.shape)?;
            let id = ShapeId::from_parts(leak(format!("{}#{}", self.ns, r.shape)), self.ns, leak(r.shape.clone()));
            let mut s = Schema::new_struct(id, ShapeType::Structure, members).with_http(http_trait(op, Some(shape)));
            if let Some(name) = &r.location_name {
                s = s.with_xml_name(leak(name.clone()));
            } else {
                s = s.with_original_name(leak(r.shape.clone()));
            }
            if let Some(ns) = r.xml_namespace.as_ref().or(shape.xml_namespace.as_ref()) {
                s = s.with_xml_namespace(leak(ns.uri.clone()), ns.prefix.clone().map(leak));
            }
            Ok(Box::leak(Box::new(s)))
        })
    }

    fn output(&self, op: &labrun_models::Operation) -> Result<&'static S, CallError> {
        match &op.output {
            Some(r) => self.structure(&r.shape),
            None => self.per_operation(format!("{}$output", op.name), || Ok(self.empty(&format!("{}Output", op.name), None))),
        }
    }

    /// Builds one of an operation's own schemas once, cached beside the structures under `key`.
    fn per_operation(&self, key: String, build: impl FnOnce() -> Result<&'static S, CallError>) -> Result<&'static S, CallError> {
        if let Some(s) = self.structs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok(s);
        }
        let s = build()?;
        Ok(*self.structs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_insert(s))
    }

    fn empty(&self, name: &str, op: Option<&labrun_models::Operation>) -> &'static S {
        let id = ShapeId::from_parts(leak(format!("{}#{name}", self.ns)), self.ns, leak(name));
        let mut s = Schema::new_struct(id, ShapeType::Structure, &[]);
        if let Some(op) = op {
            s = s.with_http(http_trait(op, None));
        }
        Box::leak(Box::new(s))
    }

    fn member(&self, owner: &str, mname: &str, m: &Member, index: usize, payload: bool) -> Result<S, CallError> {
        let target = self.shape(&m.shape)?;
        let ty = shape_type(target);
        let id = ShapeId::from_parts(leak(format!("{}#{owner}${mname}", self.ns)), self.ns, leak(owner));
        let mut s = Schema::new_member(id, ty, leak(mname), index);
        s = self.collection(s, target)?;
        match self.style {
            Style::Ec2Request => {
                let name = m.query_name.clone().or_else(|| m.location_name.as_deref().map(capitalise));
                if let Some(n) = name {
                    s = s.with_xml_name(leak(n));
                }
                if ty == ShapeType::List {
                    s = s.with_xml_flattened();
                }
            }
            Style::Ec2Response | Style::Plain => {
                match m.location.as_deref() {
                    Some("uri") => s = s.with_http_label(),
                    Some("querystring") => s = s.with_http_query(leak(m.location_name.clone().unwrap_or_else(|| mname.to_string()))),
                    Some("header") => s = s.with_http_header(leak(m.location_name.clone().unwrap_or_else(|| mname.to_string()))),
                    Some("headers") => s = s.with_http_prefix_headers(leak(m.location_name.clone().unwrap_or_default())),
                    Some("statusCode") => s = s.with_http_response_code(),
                    _ => {
                        if let Some(n) = &m.location_name {
                            s = s.with_json_name(leak(n.clone())).with_xml_name(leak(n.clone()));
                        }
                    }
                }
                if payload {
                    s = s.with_http_payload();
                }
                if m.flattened || target.flattened {
                    s = s.with_xml_flattened();
                }
                if m.xml_attribute {
                    s = s.with_xml_attribute();
                }
                if let Some(ns) = &m.xml_namespace {
                    s = s.with_xml_namespace(leak(ns.uri.clone()), ns.prefix.clone().map(leak));
                }
            }
        }
        if let Some(f) = timestamp_format(m.timestamp_format.as_deref().or(target.timestamp_format.as_deref())) {
            s = s.with_timestamp_format(f);
        }
        if m.host_label {
            s = s.with_host_label();
        }
        Ok(s)
    }

    /// Gives a list or map schema its element (key, value) schemas.
    fn collection(&self, mut s: S, target: &Shape) -> Result<S, CallError> {
        match target.kind.as_str() {
            "list" => {
                let e = target.member.as_ref().ok_or_else(|| model_error("a list without a member"))?;
                let elem = self.element(e, "member")?;
                s = s.with_list_member(Box::leak(Box::new(elem)));
            }
            "map" => {
                let k = target.key.as_ref().ok_or_else(|| model_error("a map without a key"))?;
                let v = target.value.as_ref().ok_or_else(|| model_error("a map without a value"))?;
                let key = self.element(k, "key")?;
                let value = self.element(v, "value")?;
                s = s.with_map_members(Box::leak(Box::new(key)), Box::leak(Box::new(value)));
            }
            _ => {}
        }
        Ok(s)
    }

    /// The schema of a list element or map key/value. Member-less, as generated code passes
    /// them: the collection codecs number (or name) an element only when its schema is not a
    /// named member.
    fn element(&self, e: &Member, default: &'static str) -> Result<S, CallError> {
        let target = self.shape(&e.shape)?;
        let id = ShapeId::from_parts(leak(format!("{}#{}${default}", self.ns, e.shape)), self.ns, leak(e.shape.clone()));
        let mut s = Schema::new(id, shape_type(target));
        s = self.collection(s, target)?;
        if self.style != Style::Ec2Request
            && let Some(n) = &e.location_name
        {
            s = s.with_xml_name(leak(n.clone()));
        }
        if let Some(f) = timestamp_format(e.timestamp_format.as_deref().or(target.timestamp_format.as_deref())) {
            s = s.with_timestamp_format(f);
        }
        Ok(s)
    }
}

fn model_error(what: &str) -> CallError {
    CallError::new(ErrorKind::Client, "ModelError", format!("the model has {what}"))
}

fn http_trait(op: &labrun_models::Operation, input: Option<&Shape>) -> HttpTrait<'static> {
    let method = if op.http.method.is_empty() { "POST" } else { leak(op.http.method.clone()) };
    let mut uri = if op.http.request_uri.is_empty() { "/".to_string() } else { op.http.request_uri.clone() };
    // botocore names a URI label by the member's `locationName` (`{restapi_id}`); the SDK's
    // binding looks labels up by member name (`restApiId`), as the Smithy model writes them.
    for (name, m) in input.map(|s| &s.members).into_iter().flatten() {
        if m.location.as_deref() == Some("uri")
            && let Some(label) = &m.location_name
            && label != name
        {
            uri = uri.replace(&format!("{{{label}}}"), &format!("{{{name}}}")).replace(&format!("{{{label}+}}"), &format!("{{{name}+}}"));
        }
    }
    HttpTrait::new(method, leak(uri), None)
}

// ---------------------------------------------------------------- JSON → wire

/// A JSON object serialised through a structure's runtime schema.
struct JsonStruct<'a> {
    schemas: &'a Schemas,
    schema: &'static S,
    shape: &'a Shape,
    value: &'a Map<String, Value>,
}

impl SerializableStruct for JsonStruct<'_> {
    fn schema(&self) -> &Schema<'_> {
        self.schema
    }
    fn serialize_members(&self, s: &mut dyn ShapeSerializer) -> Result<(), SerdeError> {
        for m in self.schema.members() {
            let name = m.member_name().unwrap_or_default();
            let (Some(v), Some(member)) = (self.value.get(name), self.shape.members.get(name)) else { continue };
            if v.is_null() {
                continue;
            }
            write_value(self.schemas, s, m, &member.shape, v, name)?;
        }
        Ok(())
    }
}

/// A scalar parameter, converted as the typed bindings convert theirs.
fn scalar<T: crate::json::FromJson>(v: &Value, path: &str) -> Result<T, SerdeError> {
    T::from_json(v, &format!("`{path}`")).map_err(SerdeError::custom)
}

fn bad(path: &str, want: &str, v: &Value) -> SerdeError {
    SerdeError::custom(format!("`{path}` must be {want}, found {}", crate::json::kind(v)))
}

fn write_value(sc: &Schemas, s: &mut dyn ShapeSerializer, schema: &S, target: &str, v: &Value, path: &str) -> Result<(), SerdeError> {
    let shape = sc.shape(target).map_err(|e| SerdeError::custom(e.message))?;
    match shape_type(shape) {
        ShapeType::Structure | ShapeType::Union => {
            let Value::Object(map) = v else { return Err(bad(path, "a mapping", v)) };
            let st = sc.structure(target).map_err(|e| SerdeError::custom(e.message))?;
            let value = JsonStruct { schemas: sc, schema: st, shape, value: map };
            // As generated code does: a member is written with its member schema (which names
            // it), a list element or map value with the structure's own schema.
            s.write_struct(if schema.member_name().is_some() { schema } else { st }, &value)
        }
        ShapeType::List => {
            let items: Vec<Value> = match v {
                Value::Array(a) => a.clone(),
                // One value where a list is expected: the AWS CLI accepts it; so does labrun.
                other => vec![other.clone()],
            };
            let elem = schema.member_borrowed().ok_or_else(|| SerdeError::custom("list schema without a member"))?;
            let etarget = shape.member.as_ref().map(|m| m.shape.clone()).unwrap_or_default();
            s.write_list(schema, &|s| {
                for (i, item) in items.iter().enumerate() {
                    write_value(sc, s, elem, &etarget, item, &format!("{path}[{i}]"))?;
                }
                Ok(())
            })
        }
        ShapeType::Map => {
            let Value::Object(map) = v else { return Err(bad(path, "a mapping", v)) };
            let key = schema.key_borrowed().ok_or_else(|| SerdeError::custom("map schema without a key"))?;
            let value = schema.member_borrowed().ok_or_else(|| SerdeError::custom("map schema without a value"))?;
            let vtarget = shape.value.as_ref().map(|m| m.shape.clone()).unwrap_or_default();
            s.write_map(schema, &|s| {
                for (k, item) in map {
                    s.write_string(key, k)?;
                    write_value(sc, s, value, &vtarget, item, &format!("{path}.{k}"))?;
                }
                Ok(())
            })
        }
        ShapeType::Boolean => s.write_boolean(schema, scalar(v, path)?),
        ShapeType::Integer | ShapeType::Byte | ShapeType::Short => s.write_integer(schema, scalar(v, path)?),
        ShapeType::Long | ShapeType::BigInteger => s.write_long(schema, scalar(v, path)?),
        ShapeType::Float => s.write_float(schema, scalar::<f64>(v, path)? as f32),
        ShapeType::Double | ShapeType::BigDecimal => s.write_double(schema, scalar(v, path)?),
        ShapeType::Timestamp => {
            let t = match v {
                Value::Number(n) => n.as_f64().map(DateTime::from_secs_f64),
                Value::String(t) => {
                    DateTime::from_str(t, Format::DateTime).ok().or_else(|| t.parse::<f64>().ok().map(DateTime::from_secs_f64))
                }
                _ => None,
            }
            .ok_or_else(|| bad(path, "a date-time (RFC 3339) or epoch seconds", v))?;
            s.write_timestamp(schema, &t)
        }
        ShapeType::Blob => {
            let Value::String(t) = v else { return Err(bad(path, "a base64 string", v)) };
            let bytes = aws_smithy_types::base64::decode(t).map_err(|_| SerdeError::custom(format!("`{path}` is not valid base64")))?;
            s.write_blob(schema, Blob::new(bytes))
        }
        ShapeType::Document => s.write_document(schema, &to_document(v)),
        // A policy document (or any JSON) given as a mapping is sent as its JSON text.
        _ => s.write_string(schema, &scalar::<String>(v, path)?),
    }
}

fn to_document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Document::Number(Number::PosInt(u)),
            (_, Some(i)) => Document::Number(Number::NegInt(i)),
            _ => Document::Number(Number::Float(n.as_f64().unwrap_or_default())),
        },
        Value::String(s) => Document::String(s.clone()),
        Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        Value::Object(m) => Document::Object(m.iter().map(|(k, v)| (k.clone(), to_document(v))).collect()),
    }
}

fn from_document(d: &Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(*b),
        Document::Number(Number::PosInt(u)) => Value::from(*u),
        Document::Number(Number::NegInt(i)) => Value::from(*i),
        Document::Number(Number::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Document::String(s) => Value::String(s.clone()),
        Document::Array(a) => Value::Array(a.iter().map(from_document).collect()),
        Document::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), from_document(v))).collect()),
    }
}

// ---------------------------------------------------------------- wire → JSON

fn read_struct(sc: &Schemas, d: &mut dyn ShapeDeserializer, schema: &Schema<'_>, shape_name: &str) -> Result<Value, SerdeError> {
    let shape = sc.shape(shape_name).map_err(|e| SerdeError::custom(e.message))?;
    let mut out = Map::new();
    d.read_struct(schema, &mut |m, d| {
        let name = m.member_name().unwrap_or_default().to_string();
        let Some(member) = shape.members.get(&name) else { return d.skip_value() };
        if d.is_null() {
            return d.read_null();
        }
        let v = read_value(sc, d, m, &member.shape)?;
        out.insert(name, v);
        Ok(())
    })?;
    Ok(Value::Object(out))
}

fn read_value(sc: &Schemas, d: &mut dyn ShapeDeserializer, schema: &Schema<'_>, target: &str) -> Result<Value, SerdeError> {
    let shape = sc.shape(target).map_err(|e| SerdeError::custom(e.message))?;
    Ok(match shape_type(shape) {
        ShapeType::Structure | ShapeType::Union => {
            let st = sc.structure(target).map_err(|e| SerdeError::custom(e.message))?;
            read_struct(sc, d, st, target)?
        }
        ShapeType::List => {
            let elem = schema.member().ok_or_else(|| SerdeError::custom("list schema without a member"))?;
            let etarget = shape.member.as_ref().map(|m| m.shape.clone()).unwrap_or_default();
            let mut items = Vec::new();
            d.read_list(schema, &mut |d| {
                if d.is_null() {
                    d.read_null()?;
                    items.push(Value::Null);
                } else {
                    items.push(read_value(sc, d, elem, &etarget)?);
                }
                Ok(())
            })?;
            Value::Array(items)
        }
        ShapeType::Map => {
            let value = schema.member().ok_or_else(|| SerdeError::custom("map schema without a value"))?;
            let vtarget = shape.value.as_ref().map(|m| m.shape.clone()).unwrap_or_default();
            let mut out = Map::new();
            d.read_map(schema, &mut |k, d| {
                let v = if d.is_null() {
                    d.read_null()?;
                    Value::Null
                } else {
                    read_value(sc, d, value, &vtarget)?
                };
                out.insert(k, v);
                Ok(())
            })?;
            Value::Object(out)
        }
        ShapeType::Boolean => Value::Bool(d.read_boolean(schema)?),
        ShapeType::Integer | ShapeType::Byte | ShapeType::Short => Value::from(d.read_integer(schema)?),
        ShapeType::Long | ShapeType::BigInteger => Value::from(d.read_long(schema)?),
        ShapeType::Float => serde_json::Number::from_f64(f64::from(d.read_float(schema)?)).map_or(Value::Null, Value::Number),
        ShapeType::Double | ShapeType::BigDecimal => {
            serde_json::Number::from_f64(d.read_double(schema)?).map_or(Value::Null, Value::Number)
        }
        ShapeType::Timestamp => {
            let t = d.read_timestamp(schema)?;
            Value::String(t.fmt(Format::DateTime).map_err(|e| SerdeError::custom(e.to_string()))?)
        }
        ShapeType::Blob => Value::String(aws_smithy_types::base64::encode(d.read_blob(schema)?.as_ref())),
        ShapeType::Document => from_document(&d.read_document(schema)?),
        _ => Value::String(d.read_string(schema)?),
    })
}

// ---------------------------------------------------------------- protocols

enum Protocol {
    Json(AwsJsonRpcProtocol),
    RestJson(AwsRestJsonProtocol),
    Query(AwsQueryProtocol),
    RestXml(AwsRestXmlProtocol),
    /// ec2Query: awsQuery requests with EC2's naming; plain XML answers.
    Ec2(AwsQueryProtocol),
}

impl Protocol {
    fn of(svc: &Service) -> Result<Self, CallError> {
        let m = &svc.metadata;
        // CloudWatch prefers CBOR (smithy-rpc-v2-cbor) and also speaks awsJson 1.0 and query:
        // take the first protocol labrun's crates speak.
        let mut candidates: Vec<&str> = m.protocols.iter().map(String::as_str).collect();
        candidates.push(m.protocol.as_str());
        for p in candidates {
            let proto = match p {
                "json" => {
                    let base = if m.json_version.as_deref() == Some("1.0") {
                        AwsJsonRpcProtocol::aws_json_1_0()
                    } else {
                        AwsJsonRpcProtocol::aws_json_1_1()
                    };
                    Protocol::Json(match &m.target_prefix {
                        Some(t) => base.with_target_prefix(t.clone()),
                        None => base,
                    })
                }
                "rest-json" => Protocol::RestJson(AwsRestJsonProtocol::new()),
                "query" => Protocol::Query(AwsQueryProtocol::new().with_service_version(m.api_version.clone())),
                "rest-xml" => Protocol::RestXml(AwsRestXmlProtocol::new()),
                "ec2" => Protocol::Ec2(AwsQueryProtocol::new().with_service_version(m.api_version.clone())),
                _ => continue,
            };
            return Ok(proto);
        }
        Err(CallError::new(
            ErrorKind::NotCallable,
            "UnsupportedProtocol",
            format!("{} speaks {}, which labrun cannot call", m.service_id, m.protocols.join(", ")),
        ))
    }

    fn request_style(&self) -> Style {
        if matches!(self, Protocol::Ec2(_)) { Style::Ec2Request } else { Style::Plain }
    }

    fn response_style(&self) -> Style {
        if matches!(self, Protocol::Ec2(_)) { Style::Ec2Response } else { Style::Plain }
    }

    fn serialize(&self, input: &dyn SerializableStruct, schema: &S, cfg: &ConfigBag) -> Result<HttpRequest, SerdeError> {
        match self {
            Protocol::Json(p) => p.serialize_request(input, schema, "", cfg),
            Protocol::RestJson(p) => p.serialize_request(input, schema, "", cfg),
            Protocol::Query(p) | Protocol::Ec2(p) => p.serialize_request(input, schema, "", cfg),
            Protocol::RestXml(p) => p.serialize_request(input, schema, "", cfg),
        }
    }

    fn read(&self, sc: &Schemas, resp: &HttpResponse, schema: &S, shape: Option<&str>, cfg: &ConfigBag) -> Result<Value, SerdeError> {
        let Some(shape) = shape else { return Ok(Value::Object(Map::new())) };
        let mut d: Box<dyn ShapeDeserializer + '_> = match self {
            Protocol::Json(p) => p.deserialize_response(resp, schema, cfg)?,
            Protocol::RestJson(p) => p.deserialize_response(resp, schema, cfg)?,
            Protocol::Query(p) => p.deserialize_response(resp, schema, cfg)?,
            Protocol::RestXml(p) => p.deserialize_response(resp, schema, cfg)?,
            Protocol::Ec2(_) => {
                let body = resp.body().bytes().unwrap_or_default();
                let codec = XmlCodec::new(XmlCodecSettings::builder().default_timestamp_format(Format::DateTime).build());
                Box::new(aws_smithy_schema::codec::Codec::create_deserializer(&codec, body))
            }
        };
        read_struct(sc, d.as_mut(), schema, shape)
    }

    fn error(&self, resp: &HttpResponse, cfg: &ConfigBag) -> (Option<String>, Option<String>) {
        let meta = match self {
            Protocol::Json(p) => p.parse_error_metadata(resp, cfg),
            Protocol::RestJson(p) => p.parse_error_metadata(resp, cfg),
            Protocol::Query(p) | Protocol::Ec2(p) => p.parse_error_metadata(resp, cfg),
            Protocol::RestXml(p) => p.parse_error_metadata(resp, cfg),
        };
        match meta.map(|b| b.build()) {
            Ok(m) if m.code().is_some() => (m.code().map(str::to_string), m.message().map(str::to_string)),
            _ => {
                // EC2 nests its error one level deeper (`<Response><Errors><Error>`) than awsQuery.
                let body = resp.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
                (
                    xml_text(&body, "Code").or_else(|| json_text(&body, &["__type", "code", "Code"])),
                    xml_text(&body, "Message").or_else(|| json_text(&body, &["message", "Message"])),
                )
            }
        }
    }
}

fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

fn json_text(body: &str, keys: &[&str]) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str)).map(|s| s.rsplit('#').next().unwrap_or(s).to_string())
}

/// What the SDKs fill in that a step may leave out: an unset client token gets a fresh one
/// (labrun's engine sets one per step; this covers direct calls), flexible checksums default to
/// CRC32 and an answer's checksum is asked for, as botocore and the Rust SDK do.
fn prepare<'a>(svc: &Service, op: &labrun_models::Operation, value: &'a mut Map<String, Value>) -> &'a Map<String, Value> {
    if let Some(input) = op.input.as_ref().and_then(|r| svc.shape(&r.shape)) {
        for (name, m) in &input.members {
            if m.idempotency_token && !value.contains_key(name) {
                value.insert(name.clone(), Value::String(uuid_v4()));
            }
        }
    }
    if let Some(c) = &op.http_checksum {
        if let Some(m) = &c.request_algorithm_member
            && !value.contains_key(m)
        {
            value.insert(m.clone(), Value::String("CRC32".into()));
        }
        if let Some(m) = &c.request_validation_mode_member
            && !value.contains_key(m)
        {
            value.insert(m.clone(), Value::String("ENABLED".into()));
        }
    }
    value
}

/// Headers the SDKs add beside the protocol's own: the body's CRC32 when the request names
/// that algorithm, and the awsQuery-compatibility mode of services that once spoke awsQuery.
fn finish_request(svc: &Service, op: &labrun_models::Operation, value: &Map<String, Value>, request: &mut HttpRequest) {
    if let Some(member) = op.http_checksum.as_ref().and_then(|c| c.request_algorithm_member.as_ref())
        && value.get(member).and_then(Value::as_str) == Some("CRC32")
        && let Some(body) = request.body().bytes()
    {
        let crc = crc32fast::hash(body).to_be_bytes();
        request.headers_mut().insert("x-amz-checksum-crc32", aws_smithy_types::base64::encode(crc));
    }
    if svc.metadata.aws_query_compatible.is_some() {
        request.headers_mut().insert("x-amzn-query-mode", "true");
    }
    match svc.metadata.protocol.as_str() {
        // Form bodies are UTF-8; botocore says so, and AWS accepts either form.
        "query" | "ec2" => {
            request.headers_mut().insert("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
        }
        // botocore sends REST-XML bodies (S3's tagging, bucket configuration) without a
        // Content-Type; S3 reads them either way.
        // (A `Content-Type` the step sets, S3 `PutObject`'s `ContentType`, stays.)
        "rest-xml" if request.headers().get("Content-Type") == Some("application/xml") => {
            request.headers_mut().remove("Content-Type");
        }
        _ => {}
    }
}

/// IAM answers policy documents URL-encoded; like the AWS CLI, boto3 and labrun's typed IAM
/// binding, they are given back decoded (as JSON when they parse as JSON).
fn decode_policy_documents(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(raw) if k.ends_with("PolicyDocument") => *x = crate::json::policy_document(Some(raw)),
                    other => decode_policy_documents(other),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(decode_policy_documents),
        _ => {}
    }
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

// ---------------------------------------------------------------- sending

/// What the model-driven path needs from the SDK config: the same HTTP client, credentials,
/// sleep and clock the typed clients use.
pub(crate) struct ModelClient {
    pub(crate) config: aws_config::SdkConfig,
    pub(crate) kind: TargetKind,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: String,
}

/// Services whose API lives at one global endpoint, signed for us-east-1.
const GLOBAL: &[(&str, &str)] =
    &[("iam", "iam.amazonaws.com"), ("cloudfront", "cloudfront.amazonaws.com"), ("route53", "route53.amazonaws.com")];

#[derive(Debug)]
struct Raw(HttpResponse);

impl ModelClient {
    fn endpoint_and_region(&self, svc: &Service) -> (String, String) {
        if let Some(e) = &self.endpoint {
            return (e.clone(), self.region.clone());
        }
        let prefix = &svc.metadata.endpoint_prefix;
        if let Some((_, host)) = GLOBAL.iter().find(|(s, _)| s == prefix) {
            return (format!("https://{host}"), "us-east-1".to_string());
        }
        (format!("https://{prefix}.{}.amazonaws.com", self.region), self.region.clone())
    }

    /// Calls `service:operation` with `params` (JSON keyed by the model's member names).
    pub(crate) async fn call(&self, service: &str, operation: &str, params: &Value) -> Result<Value, CallError> {
        let svc = labrun_models::load(service).map_err(|e| CallError::new(ErrorKind::Client, "UnknownService", e.to_string()))?;
        let op = svc.operations.get(operation).ok_or_else(|| {
            CallError::new(ErrorKind::Client, "UnknownOperation", format!("the {service} model has no operation `{operation}`"))
        })?;
        let proto = Protocol::of(&svc)?;
        let req_schemas = schemas(service, &svc, proto.request_style());
        let resp_schemas = schemas(service, &svc, proto.response_style());

        let mut layer = Layer::new("labrun-model-call");
        layer.store_put(Metadata::new(operation.to_string(), service.to_string()));
        layer.store_put(ServiceVersion::new(svc.metadata.api_version.clone()));
        let cfg = ConfigBag::of_layers(vec![layer]);

        let mut value = match params {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(CallError::new(
                    ErrorKind::Client,
                    "InvalidParameters",
                    format!("parameters must be a mapping, found {}", crate::json::kind(other)),
                ));
            }
        };
        let value = &*prepare(&svc, op, &mut value);
        let input_schema = req_schemas.input(op)?;
        let empty_shape = Shape::default();
        let input_shape = match &op.input {
            Some(r) => req_schemas.shape(&r.shape)?,
            None => &empty_shape,
        };
        let input = JsonStruct { schemas: &req_schemas, schema: input_schema, shape: input_shape, value };
        let request = proto
            .serialize(&input, input_schema, &cfg)
            .map_err(|e| CallError::new(ErrorKind::Client, "InvalidParameters", format!("{service}:{operation}: {e}")))?;

        let mut request = request;
        finish_request(&svc, op, value, &mut request);
        let (endpoint, signing_region) = self.endpoint_and_region(&svc);
        let signing_name = svc.metadata.signing_name.clone().unwrap_or_else(|| svc.metadata.endpoint_prefix.clone());
        let answer =
            self.send(service, operation, request, &endpoint, signing_region, signing_name, op.authtype.as_deref() == Some("none")).await?;

        let status = answer.status().as_u16();
        if !(200..300).contains(&status) {
            let (code, message) = proto.error(&answer, &cfg);
            let code = code.unwrap_or_else(|| if status == 404 { "NotFound".into() } else { format!("HTTP{status}") });
            return Err(classify(code, message.unwrap_or_else(|| format!("HTTP {status}")), Some(status)));
        }
        let output_schema = resp_schemas.output(op)?;
        let mut v = proto.read(&resp_schemas, &answer, output_schema, op.output.as_ref().map(|r| r.shape.as_str()), &cfg).map_err(|e| {
            CallError::new(ErrorKind::Lost, "ResponseUnreadable", format!("{service}:{operation}: the answer could not be read: {e}"))
        })?;
        if service == "iam" {
            decode_policy_documents(&mut v);
        }
        Ok(v)
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        service: &str,
        operation: &str,
        request: HttpRequest,
        endpoint: &str,
        signing_region: String,
        signing_name: String,
        unsigned: bool,
    ) -> Result<HttpResponse, CallError> {
        let mut builder = RtOperation::builder()
            .service_name(service.to_string())
            .operation_name(operation.to_string())
            .endpoint_url(endpoint)
            // labrun's engine owns retries (labrun_exec::retry), as for the typed clients.
            .no_retry()
            .timeout_config(self.config.timeout_config().cloned().unwrap_or_else(aws_smithy_types::timeout::TimeoutConfig::disabled));
        if let Some(c) = self.config.http_client() {
            builder = builder.http_client(c);
        }
        if let Some(s) = self.config.sleep_impl() {
            builder = builder.sleep_impl(s);
        }
        if let Some(t) = self.config.time_source() {
            builder = builder.time_source(t);
        }
        if unsigned || self.config.credentials_provider().is_none() && self.kind == TargetKind::Emulator {
            builder = builder.no_auth();
        } else {
            let creds = self.config.credentials_provider().ok_or_else(|| {
                CallError::new(ErrorKind::Environment, "NoCredentials", "no AWS credentials: run `aws configure` or pass --profile")
            })?;
            let mut layer = Layer::new("labrun-sigv4");
            let mut options = SigningOptions::default();
            if service == "s3" {
                // S3 signs the payload hash as a header and its paths as they are.
                options.content_sha256_header = true;
                options.double_uri_encode = false;
                options.normalize_uri_path = false;
            }
            layer.store_put(SigV4OperationSigningConfig {
                region: Some(aws_types::region::SigningRegion::from(aws_types::region::Region::new(signing_region))),
                name: Some(aws_types::SigningName::from(signing_name)),
                signing_options: options,
                ..Default::default()
            });
            layer.store_put(AuthSchemeOptionResolverParams::new(()));
            let mut components = RuntimeComponentsBuilder::new("labrun-sigv4")
                .with_auth_scheme(SharedAuthScheme::new(sigv4::SigV4AuthScheme::new()))
                .with_auth_scheme_option_resolver(Some(SharedAuthSchemeOptionResolver::new(StaticAuthSchemeOptionResolver::new(vec![
                    sigv4::SCHEME_ID,
                ]))))
                .with_identity_resolver(sigv4::SCHEME_ID, SharedIdentityResolver::new(creds));
            if let Some(cache) = self.config.identity_cache() {
                components = components.with_identity_cache(Some(cache));
            }
            builder = builder.runtime_plugin(StaticRuntimePlugin::new().with_config(layer.freeze()).with_runtime_components(components));
        }
        let operation = builder
            .serializer(|req: Request| Ok(req.0))
            .deserializer(|resp: &HttpResponse| -> Result<Raw, OrchestratorError<std::io::Error>> {
                let mut copy = HttpResponse::new(resp.status(), SdkBody::from(resp.body().bytes().unwrap_or_default().to_vec()));
                for (k, v) in resp.headers() {
                    copy.headers_mut().append(k.to_string(), v.to_string());
                }
                Ok(Raw(copy))
            })
            .build();
        match operation.invoke(Request(request)).await {
            Ok(Raw(r)) => Ok(r),
            // The deserializer never fails, so every error here is a transport one.
            Err(e) => Err(crate::transport_error(e)),
        }
    }
}

/// A serialised request handed to the orchestrator as its input.
#[derive(Debug)]
struct Request(HttpRequest);
