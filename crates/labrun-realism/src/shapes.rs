//! Error answers in each service's own wire format, with request ids.

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use crate::proxy::ProxyBody;
use crate::wire::Kind;
use crate::xml::escape;

/// Ids for one answer, drawn from the request's seeded dice.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pub request_id: String,
    /// S3's `x-amz-id-2` / `<HostId>`.
    pub host_id: String,
}

const EC2_TYPE: &str = "text/xml;charset=UTF-8";

/// The service's throttling error (EC2 RequestLimitExceeded 503, IAM/STS Throttling 400,
/// SSM ThrottlingException 400, S3 SlowDown 503).
pub(crate) fn throttle(kind: Kind, ids: &Ids) -> Response<ProxyBody> {
    match kind {
        Kind::Ec2 => ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.", ids),
        Kind::Iam | Kind::Sts => query_error(kind, 400, "Sender", "Throttling", "Rate exceeded", ids),
        Kind::Ssm => json_error(400, "ThrottlingException", "Rate exceeded", ids),
        Kind::S3 => s3_error(503, "SlowDown", "Please reduce your request rate.", ids),
    }
}

/// A 5xx in the service's format; `unavailable` picks the 503 flavour where the service has one.
pub(crate) fn server_error(kind: Kind, unavailable: bool, ids: &Ids) -> Response<ProxyBody> {
    match (kind, unavailable) {
        (Kind::Ec2, false) => ec2_error(500, "InternalError", "An internal error has occurred.", ids),
        (Kind::Ec2, true) => ec2_error(503, "Unavailable", "The server is overloaded and can't handle the request.", ids),
        (Kind::Iam | Kind::Sts, false) => {
            query_error(kind, 500, "Receiver", "ServiceFailure", "Request processing has failed due to some unknown error.", ids)
        }
        (Kind::Iam | Kind::Sts, true) => query_error(kind, 503, "Receiver", "ServiceUnavailable", "Service is unavailable.", ids),
        (Kind::Ssm, _) => json_error(500, "InternalServerError", "An internal error occurred.", ids),
        (Kind::S3, _) => s3_error(500, "InternalError", "We encountered an internal error. Please try again.", ids),
    }
}

/// `<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors><RequestID>…</RequestID></Response>`.
pub(crate) fn ec2_error(status: u16, code: &str, message: &str, ids: &Ids) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        ids.request_id
    );
    respond(status, EC2_TYPE, body, &[("x-amzn-requestid", &ids.request_id)])
}

fn query_error(kind: Kind, status: u16, fault: &str, code: &str, message: &str, ids: &Ids) -> Response<ProxyBody> {
    let ns = if kind == Kind::Sts { "https://sts.amazonaws.com/doc/2011-06-15/" } else { "https://iam.amazonaws.com/doc/2010-05-08/" };
    let body = format!(
        "<ErrorResponse xmlns=\"{ns}\">\n  <Error>\n    <Type>{fault}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        ids.request_id
    );
    respond(status, "text/xml", body, &[("x-amzn-requestid", &ids.request_id)])
}

fn json_error(status: u16, code: &str, message: &str, ids: &Ids) -> Response<ProxyBody> {
    let body = format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}");
    respond(status, "application/x-amz-json-1.1", body, &[("x-amzn-requestid", &ids.request_id)])
}

fn s3_error(status: u16, code: &str, message: &str, ids: &Ids) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId><HostId>{}</HostId></Error>",
        ids.request_id, ids.host_id
    );
    respond(
        status,
        "application/xml",
        body,
        &[("x-amz-request-id", &ids.request_id), ("x-amzn-requestid", &ids.request_id), ("x-amz-id-2", &ids.host_id)],
    )
}

/// A 502 for an emulator that could not be reached or broke off its answer.
pub(crate) fn bad_gateway(detail: &str) -> Response<ProxyBody> {
    respond(502, "text/plain; charset=utf-8", format!("labrun-realism: the emulator did not answer: {detail}\n"), &[])
}

fn respond(status: u16, content_type: &str, body: String, headers: &[(&str, &str)]) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::full(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(CONTENT_TYPE, v);
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            h.insert(n, v);
        }
    }
    resp
}
