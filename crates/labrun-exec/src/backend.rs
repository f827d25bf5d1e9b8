//! What the engine needs from a cloud: call an operation with JSON parameters, get JSON back.
//! `labrun-aws` implements it with the AWS SDK; tests implement it in memory.

use labrun_lab::catalog::Operation;
use serde_json::Value;

/// Where calls go: shown to the user, and the key of the ledger file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetInfo {
    /// `emulator` or `aws`.
    pub kind: TargetKind,
    /// Endpoint URL for an emulator; `None` for AWS's own endpoints.
    pub endpoint: Option<String>,
    pub account: String,
    pub region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Emulator,
    Aws,
}

impl TargetInfo {
    pub fn is_emulator(&self) -> bool {
        self.kind == TargetKind::Emulator
    }
    /// A file-name-safe key: one ledger per endpoint + account + region.
    pub fn ledger_key(&self) -> String {
        let endpoint = self.endpoint.as_deref().unwrap_or("aws");
        let clean: String = endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        format!("{clean}-{}-{}", self.account, self.region)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Throttling, 5xx, timeouts: worth retrying.
    Transient,
    /// The resource does not exist (may be eventual consistency right after a create).
    NotFound,
    /// The service refused the request (bad parameters, conflicts, permissions).
    Client,
    /// The emulator or service does not implement the operation.
    Unsupported,
    /// No connection, no credentials: nothing a retry of this step fixes.
    Environment,
}

#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("{code}: {message}")]
pub struct CallError {
    pub kind: ErrorKind,
    /// The service's error code, e.g. `InvalidVpcID.NotFound`.
    pub code: String,
    pub message: String,
}

impl CallError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        CallError { kind, code: code.into(), message: message.into() }
    }
}

/// A cloud the engine can call. Implementations must be cheap to share across tasks.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    fn target(&self) -> &TargetInfo;
    /// Calls `op` with rendered parameters; returns the response in the API's JSON shape.
    async fn call(&self, op: &'static Operation, params: &Value) -> Result<Value, CallError>;
}

/// Replaces the values at the operation's secret paths, so nothing downstream sees them.
pub fn mask_secrets(op: &Operation, response: &mut Value) {
    for path in op.secrets {
        let pointer = format!("/{}", path.replace('.', "/"));
        if let Some(v) = response.pointer_mut(&pointer)
            && !v.is_null()
        {
            *v = Value::String("********".into());
        }
    }
}

/// Drops `null` members (JMESPath undo expressions produce them for absent fields).
pub fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}
