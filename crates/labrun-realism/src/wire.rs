//! Recognising an AWS call on the wire: account, service and action, without an SDK.

use hyper::http::request::Parts;
use hyper::{Method, header};

/// The services whose error formats the proxy knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ec2,
    Iam,
    Sts,
    Ssm,
    S3,
}

/// A recognised call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The access key id of the SigV4 credential (LocalStack's account id).
    pub account: String,
    /// The service of the credential scope, lower case (`ec2`, `iam`, ...).
    pub service: String,
    pub action: String,
    /// Query-protocol parameters (URL query, then the form body), decoded, in order.
    pub params: Vec<(String, String)>,
    /// `None` for a service whose error format the proxy does not know: only latency applies.
    pub kind: Option<Kind>,
}

impl Call {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `ec2:CreateVpc`, the prefix of the `Stats::by_action` keys.
    pub fn label(&self) -> String {
        format!("{}:{}", self.service, self.action)
    }
}

/// Recognises a SigV4-signed call; `None` when no credential or no action can be read.
pub(crate) fn recognise(parts: &Parts, body: &[u8]) -> Option<Call> {
    let query = parts.uri.query().unwrap_or("");
    let (account, service) = credential(parts, query)?;
    let kind = match service.as_str() {
        "ec2" => Some(Kind::Ec2),
        "iam" => Some(Kind::Iam),
        "sts" => Some(Kind::Sts),
        "ssm" => Some(Kind::Ssm),
        "s3" => Some(Kind::S3),
        _ => None,
    };
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).filter(|t| !t.is_empty());
    let (action, params) = if let Some(target) = target {
        // awsJson: `AmazonSSM.CreateDocument`.
        let action = target.rsplit('.').next().unwrap_or(target).to_string();
        (action, Vec::new())
    } else if kind == Some(Kind::S3) {
        (s3_action(parts, query), Vec::new())
    } else {
        // Query protocol: `Action=...` in the form body (POST) or the URL query (GET).
        let mut params = parse_form(query.as_bytes());
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        if form || (parts.method == Method::POST && body.starts_with(b"Action=")) {
            params.extend(parse_form(body));
        }
        let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
        (action, params)
    };
    // A JSON-protocol service without a target, or a query service without an action, is not a
    // call the proxy can name; so is an SSM call sent any other way.
    let ok_protocol = match kind {
        Some(Kind::Ssm) => target.is_some(),
        _ => true,
    };
    if action.is_empty() || !ok_protocol || !action.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    Some(Call { account, service, action, params, kind })
}

/// `(access key id, service)` from `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...`,
/// or from a presigned URL's `X-Amz-Credential`.
fn credential(parts: &Parts, query: &str) -> Option<(String, String)> {
    let scope = if let Some(auth) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let start = auth.find("Credential=")? + "Credential=".len();
        let rest = &auth[start..];
        let end = rest.find([',', ' ']).unwrap_or(rest.len());
        rest[..end].to_string()
    } else {
        parse_form(query.as_bytes()).into_iter().find(|(k, _)| k == "X-Amz-Credential")?.1
    };
    let fields: Vec<&str> = scope.split('/').collect();
    if fields.len() < 5 || fields[0].is_empty() || fields[3].is_empty() {
        return None;
    }
    Some((fields[0].to_string(), fields[3].to_ascii_lowercase()))
}

/// Decodes `application/x-www-form-urlencoded` (percent escapes, `+` as space); never fails.
pub(crate) fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Sub-resources that name an S3 operation (`PUT /bucket?tagging` is PutBucketTagging).
const S3_SUBRESOURCES: &[&str] = &[
    "tagging",
    "policy",
    "acl",
    "versioning",
    "lifecycle",
    "cors",
    "website",
    "encryption",
    "notification",
    "logging",
    "replication",
    "ownershipControls",
    "publicAccessBlock",
    "accelerate",
    "requestPayment",
    "object-lock",
    "policyStatus",
    "analytics",
    "metrics",
    "inventory",
    "intelligent-tiering",
    "retention",
    "legal-hold",
    "attributes",
    "torrent",
];

/// A rough S3 operation name from method, path and query: good enough for counting and keys.
fn s3_action(parts: &Parts, query: &str) -> String {
    let keys: Vec<String> = parse_form(query.as_bytes()).into_iter().map(|(k, _)| k).collect();
    let has = |name: &str| keys.iter().any(|k| k == name);
    let sub = keys.iter().find(|k| S3_SUBRESOURCES.contains(&k.as_str())).map(|k| pascal(k));
    let segments: Vec<&str> = parts.uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let virtual_host = host.contains(".s3.") || host.contains(".s3-");
    let (bucket, object) = if virtual_host { (true, !segments.is_empty()) } else { (!segments.is_empty(), segments.len() > 1) };
    let copy = parts.headers.contains_key("x-amz-copy-source");
    let m = &parts.method;
    let name = if !bucket {
        if *m == Method::GET { "ListBuckets".to_string() } else { format!("{m}Service") }
    } else if !object {
        match (m, sub) {
            (&Method::GET, _) if has("location") => "GetBucketLocation".into(),
            (&Method::GET, _) if has("versions") => "ListObjectVersions".into(),
            (&Method::GET, _) if has("uploads") => "ListMultipartUploads".into(),
            (&Method::GET, Some(sub)) => format!("GetBucket{sub}"),
            (&Method::GET, None) if keys.iter().any(|k| k == "list-type") => "ListObjectsV2".into(),
            (&Method::GET, None) => "ListObjects".into(),
            (&Method::PUT, Some(sub)) => format!("PutBucket{sub}"),
            (&Method::PUT, None) => "CreateBucket".into(),
            (&Method::DELETE, Some(sub)) => format!("DeleteBucket{sub}"),
            (&Method::DELETE, None) => "DeleteBucket".into(),
            (&Method::HEAD, _) => "HeadBucket".into(),
            (&Method::POST, _) if has("delete") => "DeleteObjects".into(),
            (&Method::POST, _) => "PostObject".into(),
            (m, _) => format!("{m}Bucket"),
        }
    } else {
        match (m, sub) {
            (&Method::GET, _) if has("uploadId") => "ListParts".into(),
            (&Method::GET, Some(sub)) => format!("GetObject{sub}"),
            (&Method::GET, None) => "GetObject".into(),
            (&Method::PUT, _) if has("uploadId") && copy => "UploadPartCopy".into(),
            (&Method::PUT, _) if has("uploadId") => "UploadPart".into(),
            (&Method::PUT, Some(sub)) => format!("PutObject{sub}"),
            (&Method::PUT, None) if copy => "CopyObject".into(),
            (&Method::PUT, None) => "PutObject".into(),
            (&Method::DELETE, _) if has("uploadId") => "AbortMultipartUpload".into(),
            (&Method::DELETE, Some(sub)) => format!("DeleteObject{sub}"),
            (&Method::DELETE, None) => "DeleteObject".into(),
            (&Method::HEAD, _) => "HeadObject".into(),
            (&Method::POST, _) if has("uploads") => "CreateMultipartUpload".into(),
            (&Method::POST, _) if has("uploadId") => "CompleteMultipartUpload".into(),
            (&Method::POST, _) if has("restore") => "RestoreObject".into(),
            (&Method::POST, _) if has("select") => "SelectObjectContent".into(),
            (m, _) => format!("{m}Object"),
        }
    };
    name.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// `object-lock` → `ObjectLock`, `publicAccessBlock` → `PublicAccessBlock`.
fn pascal(s: &str) -> String {
    s.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).map(|r| r.into_parts().0).unwrap_or_else(|e| panic!("{e}"))
    }

    const AUTH_EC2: &str =
        "AWS4-HMAC-SHA256 Credential=111111111111/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn form_decoding() {
        let f = parse_form(b"Action=CreateVpc&CidrBlock=10.0.0.0%2F16&Name=a+b&Bad=%zz&Trail=%4&Empty&X=%41%62");
        assert_eq!(
            f,
            vec![
                ("Action".into(), "CreateVpc".into()),
                ("CidrBlock".into(), "10.0.0.0/16".into()),
                ("Name".into(), "a b".into()),
                ("Bad".into(), "%zz".into()),
                ("Trail".into(), "%4".into()),
                ("Empty".into(), "".into()),
                ("X".into(), "Ab".into()),
            ]
        );
        assert_eq!(parse_form(b"%"), vec![("%".into(), "".into())]);
        assert_eq!(parse_form(b"a=%F"), vec![("a".into(), "%F".into())]);
        assert!(parse_form(b"").is_empty());
    }

    #[test]
    fn query_protocol_call() {
        let p = parts("POST", "/", &[("authorization", AUTH_EC2), ("content-type", "application/x-www-form-urlencoded; charset=utf-8")]);
        let c = recognise(&p, b"Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1").unwrap_or_else(|| panic!("not recognised"));
        assert_eq!(
            (c.account.as_str(), c.service.as_str(), c.action.as_str(), c.kind),
            ("111111111111", "ec2", "DescribeVpcs", Some(Kind::Ec2))
        );
        assert_eq!(c.param("VpcId.1"), Some("vpc-1"));
        assert_eq!(c.label(), "ec2:DescribeVpcs");
    }

    #[test]
    fn json_and_unknown() {
        let auth = AUTH_EC2.replace("/ec2/", "/ssm/");
        let p = parts("POST", "/", &[("authorization", &auth), ("x-amz-target", "AmazonSSM.CreateDocument")]);
        let c = recognise(&p, b"{}").unwrap_or_else(|| panic!("not recognised"));
        assert_eq!((c.action.as_str(), c.kind), ("CreateDocument", Some(Kind::Ssm)));
        // No credential: not recognised.
        assert_eq!(recognise(&parts("POST", "/", &[]), b"Action=CreateVpc"), None);
        // SSM without a target.
        assert_eq!(recognise(&parts("POST", "/", &[("authorization", &auth)]), b"{}"), None);
        // A service whose errors the proxy does not know: recognised for keys, no kind.
        let auth = AUTH_EC2.replace("/ec2/", "/sqs/");
        let c = recognise(
            &parts("POST", "/", &[("authorization", &auth), ("content-type", "application/x-www-form-urlencoded")]),
            b"Action=ListQueues",
        )
        .unwrap_or_else(|| panic!("not recognised"));
        assert_eq!(c.kind, None);
        // Garbage in the credential.
        assert_eq!(recognise(&parts("POST", "/", &[("authorization", "AWS4-HMAC-SHA256 Credential=")]), b""), None);
    }

    #[test]
    fn s3_actions() {
        let auth = AUTH_EC2.replace("/ec2/", "/s3/");
        let a = |m: &str, uri: &str, extra: &[(&str, &str)]| {
            let mut h = vec![("authorization", auth.as_str())];
            h.extend_from_slice(extra);
            if !extra.iter().any(|(k, _)| *k == "host") {
                h.push(("host", "127.0.0.1:4566"));
            }
            recognise(&parts(m, uri, &h), b"").map(|c| c.action).unwrap_or_default()
        };
        assert_eq!(a("GET", "/", &[]), "ListBuckets");
        assert_eq!(a("PUT", "/b", &[]), "CreateBucket");
        assert_eq!(a("PUT", "/b/", &[]), "CreateBucket");
        assert_eq!(a("DELETE", "/b", &[]), "DeleteBucket");
        assert_eq!(a("PUT", "/b?tagging", &[]), "PutBucketTagging");
        assert_eq!(a("GET", "/b?list-type=2&prefix=x", &[]), "ListObjectsV2");
        assert_eq!(a("GET", "/b?location", &[]), "GetBucketLocation");
        assert_eq!(a("PUT", "/b?publicAccessBlock", &[]), "PutBucketPublicAccessBlock");
        assert_eq!(a("POST", "/b?delete", &[]), "DeleteObjects");
        assert_eq!(a("HEAD", "/b", &[]), "HeadBucket");
        assert_eq!(a("PUT", "/b/k/x.txt", &[]), "PutObject");
        assert_eq!(a("PUT", "/b/k", &[("x-amz-copy-source", "/b/j")]), "CopyObject");
        assert_eq!(a("GET", "/b/k?tagging", &[]), "GetObjectTagging");
        assert_eq!(a("DELETE", "/b/k", &[]), "DeleteObject");
        assert_eq!(a("POST", "/b/k?uploads", &[]), "CreateMultipartUpload");
        assert_eq!(a("PUT", "/b/k?partNumber=1&uploadId=u", &[]), "UploadPart");
        assert_eq!(a("PUT", "/b/k?object-lock", &[]), "PutObjectObjectLock");
        assert_eq!(a("PUT", "/", &[("host", "b.s3.localhost.localstack.cloud:4566")]), "CreateBucket");
    }
}
