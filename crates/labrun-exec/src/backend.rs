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
    /// A file-name-safe key: one ledger per resolved target (host, account, region), so
    /// `localhost:4610` and `127.0.0.1:4610` share one ledger.
    pub fn ledger_key(&self) -> String {
        let place = self.endpoint.as_deref().map_or_else(|| "aws".to_string(), canonical_endpoint);
        let clean: String = place.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        format!("{clean}-{}-{}", self.account, self.region)
    }
}

/// `http://localhost:4610/` → `loopback:4610`; other hosts by the address they resolve to.
pub fn canonical_endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default_port)),
            None => (v6.to_string(), default_port),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.parse().unwrap_or(default_port)),
            _ => (authority.to_string(), default_port),
        },
    };
    let host = host.to_ascii_lowercase();
    let addrs: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).map(|a| a.map(|s| s.ip()).collect()).unwrap_or_default(),
    };
    let place = if !addrs.is_empty() && addrs.iter().all(|a| a.is_loopback()) {
        "loopback".to_string()
    } else {
        addrs.iter().min().map_or(host, ToString::to_string)
    };
    format!("{place}:{port}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Throttling, 5xx: the request was refused before it did anything; worth retrying.
    Transient,
    /// No complete answer (connection reset, cut body, timeout): the request may or may not
    /// have taken effect. Reads are simply retried; a change is first looked up.
    Lost,
    /// The resource does not exist (may be eventual consistency right after a create).
    NotFound,
    /// The service refused the request (bad parameters, conflicts, permissions).
    Client,
    /// The emulator or service does not implement the operation (its own answer: HTTP 501, "not
    /// enabled", "not implemented"). On an emulator target the step is a gap.
    Unsupported,
    /// labrun cannot make the call at all (no binding, a protocol it does not speak, a test
    /// fake without that operation): a failure on any target.
    NotCallable,
    /// No connection, no credentials: nothing a retry of this step fixes.
    Environment,
}

/// Codes that mean "no such resource" where the name does not end in `NotFound` (EC2's
/// `InvalidVpcID.NotFound`) or `NotFoundException` (DynamoDB, Lambda, Logs, Secrets Manager).
pub const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "NoSuchBucket",
    "NoSuchKey",
    "ParameterNotFound",
    "InvalidDocument",
    "NoSuchTagSet",
    "NoSuchPublicAccessBlockConfiguration",
];

/// Whether a service's error code says the resource does not exist.
pub fn is_not_found_code(code: &str) -> bool {
    code.ends_with("NotFound") || code.ends_with("NotFoundException") || NOT_FOUND_CODES.contains(&code)
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
        mask_path(response, &path.split('.').collect::<Vec<_>>());
    }
}

/// Masks the value at a dotted path; a step `Name[]` stands for every item of the list `Name`
/// (`Functions[].Environment`).
fn mask_path(value: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        if !value.is_null() {
            *value = Value::String("********".into());
        }
        return;
    };
    let (name, each) = first.strip_suffix("[]").map_or((*first, false), |n| (n, true));
    let Some(child) = value.get_mut(name) else { return };
    match child {
        Value::Array(items) if each => items.iter_mut().for_each(|i| mask_path(i, rest)),
        _ if each => {}
        _ => mask_path(child, rest),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_through_structures_and_lists() {
        static OP: std::sync::LazyLock<Operation> = std::sync::LazyLock::new(|| Operation {
            secrets: &["Credentials.SecretAccessKey", "Functions[].Environment", "Items[]", "Missing.Deep"],
            ..*labrun_lab::catalog::operation("sts:GetCallerIdentity").unwrap()
        });
        let mut v = serde_json::json!({
            "Credentials": {"AccessKeyId": "AKIA", "SecretAccessKey": "s3cr3t"},
            "Functions": [{"Environment": {"A": "b"}, "FunctionName": "f"}, {"FunctionName": "g"}],
            "Items": ["x", null],
        });
        mask_secrets(&OP, &mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "Credentials": {"AccessKeyId": "AKIA", "SecretAccessKey": "********"},
                "Functions": [{"Environment": "********", "FunctionName": "f"}, {"FunctionName": "g"}],
                "Items": ["********", null],
            })
        );
    }

    #[test]
    fn one_ledger_per_resolved_target() {
        let t = |e: &str| TargetInfo { kind: TargetKind::Emulator, endpoint: Some(e.into()), account: "1".into(), region: "r".into() };
        let a = t("http://127.0.0.1:4610").ledger_key();
        assert_eq!(a, t("http://localhost:4610").ledger_key());
        assert_eq!(a, t("http://localhost:4610/").ledger_key());
        assert_eq!(a, t("http://[::1]:4610").ledger_key());
        assert_ne!(a, t("http://127.0.0.1:4611").ledger_key());
        assert_eq!(canonical_endpoint("https://example.invalid"), "example.invalid:443");
        let aws = TargetInfo { kind: TargetKind::Aws, endpoint: None, account: "1".into(), region: "r".into() };
        assert_eq!(aws.ledger_key(), "aws-1-r");
    }
}
