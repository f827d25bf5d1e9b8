//! The only crate that links the AWS SDK. It turns catalog operations with JSON parameters
//! into SDK calls, and SDK responses into JSON in the API's own shape. One SDK config and one
//! connection pool per process: the clients share both.

mod ec2;
mod iam;
mod json;
mod model_call;
mod s3;
mod ssm;

use aws_config::BehaviorVersion;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use json::Params;
pub use labrun_exec::{Backend, CallError, ErrorKind, TargetInfo, TargetKind};
use labrun_lab::catalog::Operation;
use serde_json::Value;
use std::collections::HashSet;

/// How to reach the target.
#[derive(Debug, Clone)]
pub struct Connect {
    pub kind: TargetKind,
    /// Emulator endpoint URL (required for an emulator).
    pub endpoint: Option<String>,
    /// Region; for AWS, falls back to the profile's or `AWS_REGION`.
    pub region: Option<String>,
    /// Named profile for AWS (`AWS_PROFILE` is honoured by the SDK when this is None).
    pub profile: Option<String>,
    /// Emulator account: LocalStack takes a 12-digit access key id as the account id.
    pub account: Option<String>,
    /// Tests only: where `sts:GetCallerIdentity` goes for an AWS target, so the account guard
    /// sees a real caller identity from an emulator. Every other call still goes to AWS.
    pub identity_endpoint: Option<String>,
}

impl Connect {
    /// An emulator endpoint, in `account` (a 12-digit id, or the default account).
    pub fn emulator(endpoint: &str, region: &str, account: Option<&str>) -> Self {
        Connect {
            kind: TargetKind::Emulator,
            endpoint: Some(endpoint.to_string()),
            region: Some(region.to_string()),
            profile: None,
            account: account.map(str::to_string),
            identity_endpoint: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no region: pass --region, set AWS_REGION, or set one in the profile")]
    NoRegion,
    #[error("an emulator target needs an endpoint URL")]
    NoEndpoint,
    #[error("could not identify the AWS account (sts:GetCallerIdentity): {0}")]
    Identity(String),
}

pub struct AwsBackend {
    target: TargetInfo,
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    sts: aws_sdk_sts::Client,
    /// Every other modeled operation, through the SDK's schema-driven protocols.
    model: model_call::ModelClient,
}

/// The default emulator account when none is given.
pub const DEFAULT_EMULATOR_ACCOUNT: &str = "000000000000";

impl AwsBackend {
    pub async fn connect(c: Connect) -> Result<Self, ConnectError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &c.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        // One attempt per call: labrun's engine owns every retry (labrun_exec::retry), so that a
        // create keeps its client token and a lost answer is looked up before a second try.
        loader = loader.retry_config(aws_config::retry::RetryConfig::disabled());
        // No call may hang forever: a connection that never answers becomes a lost answer.
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .operation_attempt_timeout(std::time::Duration::from_secs(120))
                .build(),
        );
        let account = c.account.clone().unwrap_or_else(|| DEFAULT_EMULATOR_ACCOUNT.to_string());
        match c.kind {
            TargetKind::Emulator => {
                let endpoint = c.endpoint.clone().ok_or(ConnectError::NoEndpoint)?;
                // Emulator credentials are not secrets: the access key id selects the account.
                let creds = aws_credential_types::Credentials::from_keys(account.clone(), "test", None);
                loader = loader.endpoint_url(endpoint).credentials_provider(creds);
            }
            TargetKind::Aws => {
                if let Some(p) = &c.profile {
                    loader = loader.profile_name(p);
                }
            }
        }
        let config = loader.load().await;
        let region = config.region().map(|r| r.to_string()).ok_or(ConnectError::NoRegion)?;
        let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(c.kind == TargetKind::Emulator).build();
        let mut backend = AwsBackend {
            target: TargetInfo { kind: c.kind, endpoint: c.endpoint.clone(), account, region: region.clone() },
            ec2: aws_sdk_ec2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            ssm: aws_sdk_ssm::Client::new(&config),
            model: model_call::ModelClient { config: config.clone(), kind: c.kind, endpoint: c.endpoint.clone(), region: region.clone() },
            sts: match &c.identity_endpoint {
                Some(e) => aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(&config).endpoint_url(e).build()),
                None => aws_sdk_sts::Client::new(&config),
            },
        };
        if c.kind == TargetKind::Aws {
            let id = backend.sts.get_caller_identity().send().await.map_err(|e| ConnectError::Identity(sdk_error(e).to_string()))?;
            backend.target.account = id.account().unwrap_or_default().to_string();
        }
        Ok(backend)
    }

    /// Calls any operation of an embedded service model (`lambda`, `CreateFunction`) with
    /// parameters keyed by the model's member names, without a typed binding: the request is
    /// serialised through the SDK's schema-driven protocol for that service. Blobs are base64
    /// strings both ways; timestamps come back as RFC 3339 strings.
    pub async fn call_model(&self, service: &str, operation: &str, params: &Value) -> Result<Value, CallError> {
        self.model.call(service, operation, params).await
    }

    /// Calls an operation and also returns the parameter names the binding read (for the
    /// test that keeps catalog and bindings in step).
    pub async fn call_traced(&self, op: &'static Operation, params: &Value) -> (Result<Value, CallError>, HashSet<String>) {
        let mut p = match Params::new(op.name, params) {
            Ok(p) => p,
            Err(e) => return (Err(e), HashSet::new()),
        };
        let result = self.dispatch(op, &mut p).await.and_then(|v| Self::refused_in_body(op, v));
        (result, p.taken().clone())
    }

    /// Whether `params` can go through the typed SDK binding: the operation is curated and the
    /// step passes only parameters that binding reads. Otherwise the model-driven path calls it.
    fn typed(op: &Operation, params: &Value) -> bool {
        match (op.bound, params) {
            (Some(bound), Value::Object(m)) => m.keys().all(|k| bound.contains(&k.as_str())),
            (Some(_), _) => true,
            (None, _) => false,
        }
    }

    async fn dispatch(&self, op: &'static Operation, p: &mut Params) -> Result<Value, CallError> {
        let action = op.action();
        let v = match op.service() {
            "ec2" => ec2::call(&self.ec2, action, p).await?,
            "iam" => iam::call(&self.iam, action, p).await?,
            "s3" => s3::call(&self.s3, action, p).await?,
            "ssm" => ssm::call(&self.ssm, action, p).await?,
            "sts" => ssm::call_sts(&self.sts, action, p).await?,
            other => return Err(unbound(other, action)),
        };
        Ok(v)
    }

    /// `ec2:DeleteVpcEndpoints` answers 200 with a list of the endpoints it could not delete:
    /// that is a failure, whichever path made the call.
    fn refused_in_body(op: &Operation, v: Value) -> Result<Value, CallError> {
        match (op.name, ec2::unsuccessful(&v)) {
            ("ec2:DeleteVpcEndpoints", Some(e)) => Err(e),
            _ => Ok(v),
        }
    }
}

#[async_trait::async_trait]
impl Backend for AwsBackend {
    fn target(&self) -> &TargetInfo {
        &self.target
    }

    async fn call(&self, op: &'static Operation, params: &Value) -> Result<Value, CallError> {
        let v = if !op.synthetic && !Self::typed(op, params) {
            self.model.call(op.service(), op.action(), params).await?
        } else {
            self.dispatch(op, &mut Params::new(op.name, params)?).await?
        };
        Self::refused_in_body(op, v)
    }
}

fn unbound(service: &str, action: &str) -> CallError {
    CallError::new(ErrorKind::NotCallable, "UnboundOperation", format!("{service}:{action} has no SDK binding in labrun-aws"))
}

/// Maps an SDK error to the engine's kinds.
pub(crate) fn sdk_error<E>(e: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            let err = s.err();
            let code =
                err.code().map(str::to_string).unwrap_or_else(|| if status == 404 { "NotFound".into() } else { format!("HTTP{status}") });
            let message = err.message().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}"));
            classify(code, message, Some(status))
        }
        _ => transport_error(e),
    }
}

/// An SDK error that carries no service answer: no connection, a lost or unreadable answer, a
/// timeout, missing credentials. Shared by the typed clients and the model-driven path.
pub(crate) fn transport_error<E>(e: SdkError<E, HttpResponse>) -> CallError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let full = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
    match &e {
        // The request may have been processed; only the answer is missing.
        SdkError::TimeoutError(_) => CallError::new(ErrorKind::Lost, "Timeout", full),
        SdkError::DispatchFailure(_) if never_connected(&e) => {
            CallError::new(ErrorKind::Environment, "ConnectionFailed", format!("cannot reach the endpoint: {full}"))
        }
        // A request the client itself could not build (a bad endpoint URL, say).
        SdkError::DispatchFailure(d) if d.is_user() => CallError::new(ErrorKind::Environment, "DispatchFailure", full),
        // Connected, sent, and then the connection broke (reset, closed before the answer
        // was complete, timed out): hyper reports these as io, timeout or "other" errors.
        SdkError::DispatchFailure(_) => CallError::new(ErrorKind::Lost, "ResponseLost", full),
        // An answer that was cut or cannot be read: whatever the request did is unknown.
        SdkError::ResponseError(_) => CallError::new(ErrorKind::Lost, "ResponseLost", full),
        _ if full.contains("credentials") => CallError::new(ErrorKind::Environment, "NoCredentials", full),
        _ => CallError::new(ErrorKind::Client, "RequestFailed", full),
    }
}

/// The connection itself failed (refused, no route, no such host): nothing was sent.
fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as Io;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), Io::ConnectionRefused | Io::AddrNotAvailable | Io::HostUnreachable | Io::NetworkUnreachable)
        {
            return true;
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("connection refused") || text.contains("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Classifies a service error code the way the engine needs it.
pub(crate) fn classify(code: String, message: String, status: Option<u16>) -> CallError {
    const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottled",
        "ServiceUnavailable",
        "InternalError",
    ];
    const AUTH: &[&str] = &[
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AuthFailure",
        "ExpiredToken",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    ];
    let lower = message.to_lowercase();
    // LocalStack 4.13 answers iam:RemoveRoleFromInstanceProfile for a role that is not in the
    // profile with a 500 ("list.remove(x): x not in list") where AWS answers NoSuchEntity.
    if status == Some(500) && lower.contains("x not in list") {
        return CallError { kind: ErrorKind::NotFound, code: "NoSuchEntity".into(), message };
    }
    let kind = if status == Some(501) || lower.contains("not implemented") || lower.contains("not yet implemented") {
        ErrorKind::Unsupported
    } else if THROTTLING.contains(&code.as_str()) || status.is_some_and(|s| s >= 500) {
        ErrorKind::Transient
    } else if AUTH.contains(&code.as_str()) {
        ErrorKind::Environment
    } else if labrun_exec::backend::is_not_found_code(&code) || status == Some(404) {
        ErrorKind::NotFound
    } else {
        ErrorKind::Client
    };
    CallError { kind, code, message }
}
