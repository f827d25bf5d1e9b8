//! AWS's published service models, as the botocore package carries them (Apache-2.0; see
//! `models/LICENSE.txt` and `models/NOTICE`), for the services workshops use.
//!
//! The files are embedded gzip-compressed (`scripts/refresh-models.py` refreshes them, without
//! the API reference's prose) and a service is decompressed and parsed only when first asked
//! for, then kept for the process: a workshop that uses EC2 and IAM pays for those two, not for
//! the other thirty. Within a service, its metadata, operations, paginators and waiters are
//! parsed then; a shape is parsed when first asked for (EC2 has 3,900 shapes, a workshop's steps
//! reach a few hundred), from the decompressed JSON the service keeps. Nothing here does I/O or
//! prints.
//!
//! The shapes are kept close to the JSON model: names as AWS spells them (`CidrBlock`), the
//! wire details (`location`, `locationName`, `flattened`) as they are, so the protocol layer
//! can serialise from them and validation can check against them.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("no model for service `{name}`; labrun has: {}", available.join(", "))]
    UnknownService { name: String, available: Vec<&'static str> },
    #[error("the embedded model of `{service}` ({file}) is damaged: {reason}")]
    Damaged { service: String, file: &'static str, reason: String },
}

/// One service: its metadata, operations, shapes, paginators and waiters.
#[derive(Debug)]
pub struct Service {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    /// By name, each parsed on first use: [`Service::shape`].
    shapes: Shapes,
    pub paginators: BTreeMap<String, Paginator>,
    pub waiters: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub api_version: String,
    pub endpoint_prefix: String,
    /// `ec2`, `query`, `json`, `rest-json`, `rest-xml` or `smithy-rpc-v2-cbor` (CloudWatch).
    pub protocol: String,
    /// Every protocol the service speaks, preferred first (CloudWatch: CBOR, JSON, query).
    #[serde(default)]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub json_version: Option<String>,
    #[serde(default)]
    pub target_prefix: Option<String>,
    #[serde(default)]
    pub signing_name: Option<String>,
    pub service_id: String,
    #[serde(default)]
    pub xml_namespace: Option<String>,
    /// JSON services that once spoke awsQuery (SQS): clients say so in `x-amzn-query-mode`.
    #[serde(default)]
    pub aws_query_compatible: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub input: Option<ShapeRef>,
    #[serde(default)]
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
    #[serde(default)]
    pub deprecated: bool,
    /// `none` for the few operations called without signing (Cognito sign-up, say).
    #[serde(default)]
    pub authtype: Option<String>,
    /// A prefix put before the endpoint's host name, with `{Member}` labels.
    #[serde(default)]
    pub endpoint: Option<EndpointTrait>,
    /// Flexible checksums (S3): which member names the algorithm, whether one is required,
    /// which member asks for the answer's checksum.
    #[serde(default, rename = "httpChecksum")]
    pub http_checksum: Option<HttpChecksum>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpChecksum {
    #[serde(default)]
    pub request_algorithm_member: Option<String>,
    #[serde(default)]
    pub request_checksum_required: bool,
    #[serde(default)]
    pub request_validation_mode_member: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointTrait {
    pub host_prefix: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub request_uri: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    /// Query protocols wrap some outputs in an element of this name.
    #[serde(default)]
    pub result_wrapper: Option<String>,
    /// REST-XML: the root element's name, when it is not the shape's.
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<XmlNamespace>,
}

/// A member of a structure (or the element of a list, a key or value of a map).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub shape: String,
    /// `uri`, `querystring`, `header`, `headers`, `statusCode`; absent: the body.
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    /// A client token: the SDKs fill it when unset; labrun sets one per step.
    #[serde(default)]
    pub idempotency_token: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// `iso8601`, `rfc822` or `unixTimestamp`, where the member overrides its protocol's default.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    /// XML: the member is an attribute of its parent element, not a child.
    #[serde(default)]
    pub xml_attribute: bool,
    #[serde(default)]
    pub xml_namespace: Option<XmlNamespace>,
    /// A string member that carries a JSON document (REST headers, base64-encoded).
    #[serde(default)]
    pub jsonvalue: bool,
    /// The member is also part of the endpoint's host name.
    #[serde(default)]
    pub host_label: bool,
}

/// An XML namespace declared on a member or shape.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct XmlNamespace {
    #[serde(default)]
    pub prefix: Option<String>,
    pub uri: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
    #[serde(default)]
    pub required: Vec<String>,
    /// For lists.
    #[serde(default)]
    pub member: Option<Member>,
    /// For maps.
    #[serde(default)]
    pub key: Option<Member>,
    #[serde(default)]
    pub value: Option<Member>,
    #[serde(default, rename = "enum")]
    pub enum_values: Vec<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub exception: bool,
    /// For an exception: the code the service answers with, where it is not the shape's name
    /// (IAM's `EntityAlreadyExistsException` answers `EntityAlreadyExists`).
    #[serde(default)]
    pub error: Option<ErrorTrait>,
    #[serde(default)]
    pub payload: Option<String>,
    /// A blob or string that is the whole body, streamed (S3 `GetObject`'s `Body`).
    #[serde(default)]
    pub streaming: bool,
    /// A structure or union of event messages (event streams): labrun cannot call these.
    #[serde(default)]
    pub eventstream: bool,
    /// An open JSON value (Smithy `document`).
    #[serde(default)]
    pub document: bool,
    /// A structure of which exactly one member is set.
    #[serde(default)]
    pub union: bool,
    #[serde(default)]
    pub timestamp_format: Option<String>,
    #[serde(default)]
    pub xml_namespace: Option<XmlNamespace>,
}

/// An exception's wire details.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub sender_fault: bool,
}

/// How to follow pages: the token(s) in and out, the page size member, the result keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Paginator {
    pub input_token: OneOrMany,
    pub output_token: OneOrMany,
    #[serde(default)]
    pub limit_key: Option<String>,
    #[serde(default)]
    pub result_key: Option<OneOrMany>,
    #[serde(default)]
    pub more_results: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn all(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl Service {
    /// The shape `name`, parsed the first time it is asked for.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }
    /// Every shape's name, in no particular order.
    pub fn shape_names(&self) -> impl Iterator<Item = &str> {
        self.shapes.by_name.keys().map(|k| &**k)
    }
    /// The input structure of an operation, if it takes one.
    pub fn input(&self, operation: &str) -> Option<&Shape> {
        self.shape(&self.operations.get(operation)?.input.as_ref()?.shape)
    }
    pub fn output(&self, operation: &str) -> Option<&Shape> {
        self.shape(&self.operations.get(operation)?.output.as_ref()?.shape)
    }
    /// The member that carries the operation's client token, if it has one.
    pub fn idempotency_token(&self, operation: &str) -> Option<&str> {
        self.input(operation)?.members.iter().find(|(_, m)| m.idempotency_token).map(|(n, _)| n.as_str())
    }
}

/// The services labrun carries a model of, in order.
pub fn services() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(s, ..)| *s)
}

/// The model of `name` (botocore's folder name: `ec2`, `cognito-idp`, ...), decompressed and
/// parsed on first use (each shape when first asked for) and shared afterwards.
pub fn load(name: &str) -> Result<Arc<Service>, ModelError> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Service>>>> = OnceLock::new();
    let Some(&(key, _, service, paginators, waiters)) = EMBEDDED.iter().find(|(s, ..)| *s == name) else {
        return Err(ModelError::UnknownService { name: name.to_string(), available: services().collect() });
    };
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(s) = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key) {
        return Ok(s.clone());
    }
    // Parsed outside the lock: two threads may both parse a service once; neither waits.
    let mut parsed = parse_service(key, gunzip(key, "service-2", service)?)?;
    if let Some(p) = paginators {
        #[derive(Deserialize)]
        struct File {
            pagination: BTreeMap<String, Paginator>,
        }
        parsed.paginators = parse::<File>(key, "paginators-1", p)?.pagination;
    }
    if let Some(w) = waiters {
        #[derive(Deserialize)]
        struct File {
            waiters: BTreeMap<String, serde_json::Value>,
        }
        parsed.waiters = parse::<File>(key, "waiters-2", w)?.waiters;
    }
    let parsed = Arc::new(parsed);
    cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_insert_with(|| parsed.clone());
    Ok(parsed)
}

fn gunzip(service: &str, file: &'static str, gz: &[u8]) -> Result<Vec<u8>, ModelError> {
    // The gzip trailer ends with the text's size: one allocation, no copying as it grows.
    let size = gz.last_chunk::<4>().map_or(0, |n| u32::from_le_bytes(*n) as usize);
    let mut text = Vec::with_capacity(size.min(64 << 20));
    flate2::read::GzDecoder::new(gz).read_to_end(&mut text).map_err(|e| ModelError::Damaged {
        service: service.to_string(),
        file,
        reason: e.to_string(),
    })?;
    Ok(text)
}

fn parse<T: serde::de::DeserializeOwned>(service: &str, file: &'static str, gz: &[u8]) -> Result<T, ModelError> {
    serde_json::from_slice(&gunzip(service, file, gz)?).map_err(|e| ModelError::Damaged {
        service: service.to_string(),
        file,
        reason: e.to_string(),
    })
}

/// A service-2 file: its metadata and operations parsed, its shapes only found (where each one's
/// JSON is), so that a service of thousands of shapes costs one pass of serde_json over its
/// text: `RawValue` checks and delimits each part without building it.
fn parse_service(service: &str, json: Vec<u8>) -> Result<Service, ModelError> {
    use serde_json::value::RawValue;
    #[derive(Deserialize)]
    struct Parts<'a> {
        #[serde(borrow)]
        metadata: Option<&'a RawValue>,
        #[serde(borrow)]
        operations: Option<&'a RawValue>,
        #[serde(borrow)]
        shapes: Option<HashMap<std::borrow::Cow<'a, str>, &'a RawValue>>,
    }
    let damaged = |reason: String| ModelError::Damaged { service: service.to_string(), file: "service-2", reason };
    let parts: Parts = serde_json::from_slice(&json).map_err(|e| damaged(format!("not a JSON object of the expected form: {e}")))?;
    // Where a part lies in the text: RawValue borrows it from `json`.
    let at = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - json.as_ptr() as usize;
        start..start + raw.get().len()
    };
    let metadata = parts.metadata.ok_or_else(|| damaged("no `metadata`".into()))?;
    let operations = parts.operations.ok_or_else(|| damaged("no `operations`".into()))?;
    let shapes = parts.shapes.ok_or_else(|| damaged("no `shapes`".into()))?;
    let metadata = serde_json::from_str(metadata.get()).map_err(|e| damaged(format!("metadata: {e}")))?;
    let operations = serde_json::from_str(operations.get()).map_err(|e| damaged(format!("operations: {e}")))?;
    let by_name: HashMap<Box<str>, LazyShape> =
        shapes.into_iter().map(|(name, raw)| (name.into(), LazyShape { at: at(raw), parsed: OnceLock::new() })).collect();
    Ok(Service {
        metadata,
        operations,
        shapes: Shapes { json: json.into_boxed_slice(), by_name },
        paginators: BTreeMap::new(),
        waiters: BTreeMap::new(),
    })
}

/// A service's shapes: the service-2 text, and where in it each shape is.
struct Shapes {
    json: Box<[u8]>,
    by_name: HashMap<Box<str>, LazyShape>,
}

struct LazyShape {
    at: Range<usize>,
    /// None: the shape's JSON is not a shape (the tests parse every embedded one). Boxed: a
    /// shape is large, and most are never parsed.
    parsed: OnceLock<Option<Box<Shape>>>,
}

impl Shapes {
    fn get(&self, name: &str) -> Option<&Shape> {
        let lazy = self.by_name.get(name)?;
        lazy.parsed.get_or_init(|| serde_json::from_slice(&self.json[lazy.at.clone()]).ok()).as_deref()
    }
}

impl std::fmt::Debug for Shapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parsed = self.by_name.values().filter(|s| s.parsed.get().is_some()).count();
        write!(f, "Shapes {{ {} shapes, {parsed} parsed }}", self.by_name.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: &str) -> Result<Service, ModelError> {
        parse_service("test", json.as_bytes().to_vec())
    }

    const META: &str = r#""metadata":{"apiVersion":"1","endpointPrefix":"t","protocol":"json","serviceId":"T"}"#;

    /// Finding the shapes in the text and parsing them one at a time gives what parsing the
    /// whole file at once gives, for every shape of every embedded service.
    #[test]
    fn shapes_parsed_one_by_one_are_the_shapes_of_the_whole_file() {
        #[derive(Deserialize)]
        struct Whole {
            shapes: HashMap<String, Shape>,
        }
        for &(name, _, gz, ..) in EMBEDDED {
            let json = gunzip(name, "service-2", gz).unwrap();
            let whole: Whole = serde_json::from_slice(&json).unwrap();
            let svc = parse_service(name, json).unwrap();
            assert_eq!(svc.shape_names().count(), whole.shapes.len(), "{name}");
            for (shape, expected) in &whole.shapes {
                let got = svc.shape(shape).unwrap_or_else(|| panic!("{name}: {shape} does not parse"));
                assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{name}: {shape}");
            }
        }
    }

    #[test]
    fn parts_are_found_through_strings_escapes_nesting_and_white_space() {
        let svc = service(&format!(
            r#" {{ "version" : "2.0", "n": -1.5e3, "t": true, "x": [ {{}}, [], "]}}\"{{" ] , {META},
                "operations" : {{ }},
                "shapes" : {{
                    "A" : {{ "type" : "structure", "members" : {{ "B\"]}}" : {{ "shape" : "Str\\ing" }} }} }},
                    "Str\u0069ng" : {{"type":"string","enum":["}}","\\"]}},
                    "E": {{"type":"structure","members":{{}}}}
                }} }}
            "#
        ))
        .unwrap();
        let mut names: Vec<&str> = svc.shape_names().collect();
        names.sort();
        assert_eq!(names, ["A", "E", "String"]);
        assert_eq!(svc.shape("A").unwrap().members["B\"]}"].shape, "Str\\ing");
        assert_eq!(svc.shape("String").unwrap().enum_values, ["}", "\\"]);
        assert!(svc.shape("E").unwrap().members.is_empty());
        assert_eq!(svc.metadata.endpoint_prefix, "t");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_panic() {
        let cases = [
            String::new(),
            "[]".into(),
            "{".into(),
            format!(r#"{{{META},"operations":{{}},"shapes":{{"A":{{"type":"string"}}"#),
            format!(r#"{{{META},"operations":{{}},"shapes":{{"A":"#),
            format!(r#"{{{META},"operations":{{}},"shapes":{{"A":{{"type":"str"#),
            format!(r#"{{{META},"operations":{{}},"shapes":{{}}}} trailing"#),
            format!(r#"{{{META},"operations":{{}}}}"#),
            format!(r#"{{{META},"operations":[],"shapes":{{}}}}"#),
            r#"{"operations":{},"shapes":{}}"#.into(),
        ];
        for json in &cases {
            let e = service(json).map(|_| ()).unwrap_err();
            assert!(matches!(&e, ModelError::Damaged { file: "service-2", .. }), "{json}: {e}");
        }
        // A shape is parsed when asked for: one that is not a shape is not there.
        let svc = service(&format!(r#"{{{META},"operations":{{}},"shapes":{{"A":{{"type":1}},"B":{{"type":"string"}}}}}}"#)).unwrap();
        assert!(svc.shape("A").is_none());
        assert_eq!(svc.shape("B").unwrap().kind, "string");
    }
}
