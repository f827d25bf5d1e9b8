//! AWS's published service models, as the botocore package carries them (Apache-2.0; see
//! `models/LICENSE.txt` and `models/NOTICE`), for the services workshops use.
//!
//! The files are embedded gzip-compressed (`scripts/refresh-models.py` refreshes them) and a
//! service is decompressed and parsed only when first asked for, then kept for the process: a
//! workshop that uses EC2 and IAM pays for those two, not for the other thirty. Nothing here
//! does I/O or prints.
//!
//! The shapes are kept close to the JSON model: names as AWS spells them (`CidrBlock`), the
//! wire details (`location`, `locationName`, `flattened`) as they are, so the protocol layer
//! can serialise from them and validation can check against them.

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
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
#[derive(Debug, Deserialize)]
pub struct Service {
    pub metadata: Metadata,
    pub operations: BTreeMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
    #[serde(skip)]
    pub paginators: BTreeMap<String, Paginator>,
    #[serde(skip)]
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
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
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
/// parsed on first use and shared afterwards.
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
    let mut parsed: Service = parse(key, "service-2", service)?;
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

fn parse<T: serde::de::DeserializeOwned>(service: &str, file: &'static str, gz: &[u8]) -> Result<T, ModelError> {
    let damaged = |reason: String| ModelError::Damaged { service: service.to_string(), file, reason };
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut text).map_err(|e| damaged(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))
}
