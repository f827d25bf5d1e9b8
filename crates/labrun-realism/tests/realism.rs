//! The proxy against a tiny fake emulator, driven by raw HTTP/1.1 over TCP.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use labrun_realism::{Config, Consistency, Faults, Realism, start};
use tokio::sync::oneshot;

// ---------------------------------------------------------------------------------------------
// The fake emulator: canned EC2/IAM/SSM/S3 answers, and a record of what it received.

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn action(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            return t.rsplit('.').next().unwrap_or("").to_string();
        }
        form(&self.body).into_iter().find(|(k, _)| k == "Action").map(|(_, v)| v).unwrap_or_default()
    }
}

fn form(s: &str) -> Vec<(String, String)> {
    s.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_string(), v.replace("%2F", "/").replace("%3A", ":"))).collect()
}

struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn actions(&self) -> Vec<String> {
        self.seen().iter().map(Seen::action).collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

fn canned(seen: &Seen, method: &str) -> (u16, &'static str, String) {
    let xml = "text/xml;charset=UTF-8";
    if seen.header("x-amz-target").is_some() {
        return (200, "application/x-amz-json-1.1", r#"{"DocumentDescription":{"Name":"doc","Status":"Creating"}}"#.into());
    }
    let action = seen.action();
    let body = match action.as_str() {
        "CreateVpc" => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateVpcResponse xmlns=\"{EC2_NS}\">\n    <requestId>up-1</requestId>\n    <vpc>\n        <vpcId>vpc-new1</vpcId>\n        <state>pending</state>\n        <cidrBlock>10.0.0.0/16</cidrBlock>\n        <dhcpOptionsId>dopt-1</dhcpOptionsId>\n        <instanceTenancy>default</instanceTenancy>\n        <isDefault>false</isDefault>\n    </vpc>\n</CreateVpcResponse>"
        ),
        "CreateSubnet" => format!(
            "<CreateSubnetResponse xmlns=\"{EC2_NS}\"><requestId>up-2</requestId><subnet><subnetId>subnet-new1</subnetId><state>available</state><vpcId>vpc-old</vpcId></subnet></CreateSubnetResponse>"
        ),
        "RunInstances" => format!(
            "<RunInstancesResponse xmlns=\"{EC2_NS}\"><requestId>up-3</requestId><reservationId>r-1</reservationId><instancesSet>\
             <item><instanceId>i-new1</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item>\
             <item><instanceId>i-new2</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item>\
             </instancesSet></RunInstancesResponse>"
        ),
        "DescribeInstances" => format!(
            "<DescribeInstancesResponse xmlns=\"{EC2_NS}\"><requestId>up-4</requestId><reservationSet>\
             <item><reservationId>r-0</reservationId><instancesSet><item><instanceId>i-old</instanceId><imageId>ami-1</imageId>\
             <instanceState><code>16</code><name>running</name></instanceState><groupSet><item><groupId>sg-1</groupId></item></groupSet></item></instancesSet></item>\
             <item><reservationId>r-1</reservationId><instancesSet><item><instanceId>i-new1</instanceId><imageId>ami-1</imageId>\
             <instanceState><code>16</code><name>running</name></instanceState><groupSet><item><groupId>sg-1</groupId></item></groupSet></item></instancesSet></item>\
             </reservationSet></DescribeInstancesResponse>"
        ),
        "CreateVpcEndpoint" => format!(
            "<CreateVpcEndpointResponse xmlns=\"{EC2_NS}\"><requestId>up-5</requestId><vpcEndpoint><vpcEndpointId>vpce-new1</vpcEndpointId>\
             <vpcEndpointType>Interface</vpcEndpointType><vpcId>vpc-old</vpcId><state>available</state></vpcEndpoint></CreateVpcEndpointResponse>"
        ),
        "DescribeVpcEndpoints" => format!(
            "<DescribeVpcEndpointsResponse xmlns=\"{EC2_NS}\"><requestId>up-6</requestId><vpcEndpointSet>\
             <item><vpcEndpointId>vpce-old</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><state>available</state></item>\
             <item><vpcEndpointId>vpce-new1</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><state>Available</state></item>\
             </vpcEndpointSet></DescribeVpcEndpointsResponse>"
        ),
        "CreateInstanceProfile" | "AddRoleToInstanceProfile" => format!(
            "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result><InstanceProfile><InstanceProfileName>p</InstanceProfileName></InstanceProfile></{action}Result><ResponseMetadata><RequestId>up-7</RequestId></ResponseMetadata></{action}Response>"
        ),
        "" => {
            // S3 (no Action): ListBuckets for GET /, empty 200 otherwise.
            if method == "GET" && seen.path == "/" {
                return (200, "application/xml", "<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>".into());
            }
            return (200, "application/xml", String::new());
        }
        _ => format!(
            "<{action}Response xmlns=\"{EC2_NS}\"><requestId>up-9</requestId><return>true</return><vpcSet><item><vpcId>vpc-old</vpcId></item></vpcSet></{action}Response>"
        ),
    };
    (200, xml, body)
}

async fn fake_answer(req: Request<Incoming>, log: Arc<Mutex<Vec<Seen>>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let seen = Seen {
        path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: parts.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, content_type, text) = canned(&seen, parts.method.as_str());
    log.lock().unwrap().push(seen);
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-upstream", "yes")
        .header("x-amzn-requestid", "up-request");
    if parts.method == hyper::Method::HEAD {
        // HeadObject: the length of the object, not of this (empty) body.
        resp = resp.header("content-length", "42");
    }
    Ok(resp.body(Full::new(Bytes::from(text))).unwrap())
}

fn fake() -> Fake {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let log = Arc::clone(&seen);
    let thread = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    Ok((stream, _)) = listener.accept() => {
                        let log = Arc::clone(&log);
                        tokio::spawn(async move {
                            let svc = service_fn(move |req| fake_answer(req, Arc::clone(&log)));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                        });
                    }
                }
            }
        });
        rt.shutdown_timeout(Duration::from_millis(200));
    });
    Fake { addr, seen, stop: Some(stop_tx), thread: Some(thread) }
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client.

const A1: &str = "111111111111";
const A2: &str = "222222222222";

#[derive(Debug, Default)]
struct Answer {
    /// Bytes received at all.
    raw: usize,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: String,
    /// Head parsed and the body as long as its Content-Length.
    complete: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn code(&self) -> u16 {
        self.status.unwrap_or(0)
    }
}

fn parse(bytes: &[u8], head_request: bool) -> Answer {
    let mut a = Answer { raw: bytes.len(), ..Answer::default() };
    let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else { return a };
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let body = &bytes[split + 4..];
    let mut lines = head.split("\r\n");
    a.status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok());
    a.headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    a.body = String::from_utf8_lossy(body).into_owned();
    a.complete = head_request || a.header("content-length").and_then(|l| l.parse::<usize>().ok()).is_none_or(|l| l == body.len());
    a
}

/// Sends one request with `Connection: close` and reads until the proxy closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    parse(&buf, request.starts_with(b"HEAD "))
}

fn auth(account: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={account}/20240101/us-east-1/{service}/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=0123abcd"
    )
}

fn query_request(service: &str, account: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: {service}.us-east-1.example.test\r\nAuthorization: {}\r\nX-Amz-Date: 20240101T000000Z\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        auth(account, service),
        body.len()
    )
    .into_bytes()
}

fn ec2(p: &Realism, account: &str, body: &str) -> Answer {
    exchange(p.addr(), &query_request("ec2", account, &format!("{body}&Version=2016-11-15")))
}

fn iam(p: &Realism, account: &str, body: &str) -> Answer {
    exchange(p.addr(), &query_request("iam", account, &format!("{body}&Version=2010-05-08")))
}

fn sts(p: &Realism, account: &str, body: &str) -> Answer {
    exchange(p.addr(), &query_request("sts", account, &format!("{body}&Version=2011-06-15")))
}

fn ssm(p: &Realism, account: &str, action: &str) -> Answer {
    let body = r#"{"Name":"doc","Content":"{}"}"#;
    let req = format!(
        "POST / HTTP/1.1\r\nHost: ssm.us-east-1.example.test\r\nAuthorization: {}\r\nX-Amz-Target: AmazonSSM.{action}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        auth(account, "ssm"),
        body.len()
    );
    exchange(p.addr(), req.as_bytes())
}

fn s3(p: &Realism, account: &str, method: &str, path: &str) -> Answer {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        auth(account, "s3")
    );
    exchange(p.addr(), req.as_bytes())
}

fn proxy(fake: &Fake, seed: u64, faults: Faults) -> Realism {
    start(&fake.url(), Config { seed, faults, account_suffix: None }).unwrap()
}

/// Every fault at probability `p` for one kind, and no consecutive limit in the way.
fn always(f: impl FnOnce(&mut Faults)) -> Faults {
    let mut faults = Faults { max_consecutive: 1000, ..Faults::none() };
    f(&mut faults);
    faults
}

fn consistency(f: impl FnOnce(&mut Consistency)) -> Faults {
    let mut c = Consistency { enabled: true, ..Consistency::off() };
    f(&mut c);
    Faults { consistency: c, ..Faults::none() }
}

fn error_code(a: &Answer) -> String {
    let b = &a.body;
    let start = b.find("<Code>").map(|i| i + 6);
    let end = b.find("</Code>");
    match (start, end) {
        (Some(s), Some(e)) if s <= e => b[s..e].to_string(),
        _ => String::new(),
    }
}

const WINDOW: Duration = Duration::from_millis(1000);
const AFTER_WINDOW: Duration = Duration::from_millis(1200);

// ---------------------------------------------------------------------------------------------

#[test]
fn binds_loopback_and_forwards_untouched() {
    let fake = fake();
    let p = proxy(&fake, 1, Faults::none());
    assert!(p.endpoint().starts_with("http://127.0.0.1:"), "{}", p.endpoint());
    assert!(p.addr().ip().is_loopback());
    assert_eq!(p.endpoint(), format!("http://{}", p.addr()));

    let a = ec2(&p, A1, "Action=CreateVpc&CidrBlock=10.0.0.0%2F16");
    assert_eq!(a.code(), 200);
    assert!(a.complete);
    assert_eq!(a.header("x-upstream"), Some("yes"));
    assert!(a.body.contains("<vpcId>vpc-new1</vpcId>"));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.body, "Action=CreateVpc&CidrBlock=10.0.0.0%2F16&Version=2016-11-15");
    assert_eq!(s.header("host"), Some("ec2.us-east-1.example.test"));
    assert_eq!(s.header("authorization"), Some(auth(A1, "ec2").as_str()));
    assert_eq!(s.header("x-amz-date"), Some("20240101T000000Z"));
    assert_eq!(s.path, "/");

    let a = s3(&p, A1, "GET", "/");
    assert_eq!(a.code(), 200);
    assert!(a.body.contains("ListAllMyBucketsResult"));
    let a = s3(&p, A1, "HEAD", "/bucket-1/key");
    assert_eq!((a.code(), a.header("content-length")), (200, Some("42")));

    // A chunked request body reaches the emulator whole, with its length.
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nAuthorization: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\nAction=\r\nC\r\nDescribeVpcs\r\n0\r\n\r\n",
        auth(A1, "ec2")
    );
    assert_eq!(exchange(p.addr(), chunked.as_bytes()).code(), 200);
    let last = fake.seen().pop().unwrap();
    assert_eq!(
        (last.body.as_str(), last.header("content-length"), last.header("transfer-encoding")),
        ("Action=DescribeVpcs", Some("19"), None)
    );

    let stats = p.stats();
    assert_eq!((stats.requests, stats.forwarded), (4, 4));
    assert!(stats.by_action.is_empty(), "{:?}", stats.by_action);
}

#[test]
fn throttling_in_each_services_shape_is_not_forwarded() {
    let fake = fake();
    let p = proxy(&fake, 2, always(|f| f.throttle = 1.0));

    let a = ec2(&p, A1, "Action=DescribeVpcs");
    assert_eq!(a.code(), 503);
    assert_eq!(a.header("content-type"), Some("text/xml;charset=UTF-8"));
    assert!(a.body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(a.body.contains(
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>"
    ));
    let rid = a.header("x-amzn-requestid").unwrap().to_string();
    assert_eq!(rid.len(), 36);
    assert!(a.body.contains(&format!("<RequestID>{rid}</RequestID>")));

    let a = iam(&p, A1, "Action=CreateRole&RoleName=r");
    assert_eq!(a.code(), 400);
    assert_eq!(a.header("content-type"), Some("text/xml"));
    assert!(a.body.contains(r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">"#));
    assert!(a.body.contains("<Type>Sender</Type>") && a.body.contains("<Message>Rate exceeded</Message>"));
    assert_eq!(error_code(&a), "Throttling");
    assert!(a.header("x-amzn-requestid").is_some_and(|r| a.body.contains(&format!("<RequestId>{r}</RequestId>"))));

    let a = sts(&p, A1, "Action=GetCallerIdentity");
    assert_eq!(a.code(), 400);
    assert!(a.body.contains(r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#));
    assert_eq!(error_code(&a), "Throttling");

    let a = ssm(&p, A1, "CreateDocument");
    assert_eq!(a.code(), 400);
    assert_eq!(a.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(a.body, r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#);
    assert!(a.header("x-amzn-requestid").is_some());

    let a = s3(&p, A1, "PUT", "/bucket-1");
    assert_eq!(a.code(), 503);
    assert_eq!(a.header("content-type"), Some("application/xml"));
    assert_eq!(error_code(&a), "SlowDown");
    assert!(a.body.contains("<Message>Please reduce your request rate.</Message>"));
    let rid = a.header("x-amz-request-id").unwrap();
    assert!(a.body.contains(&format!("<RequestId>{rid}</RequestId>")));
    assert!(a.header("x-amz-id-2").is_some_and(|h| a.body.contains(&format!("<HostId>{h}</HostId>"))));

    // A HEAD gets the status without a body.
    let a = s3(&p, A1, "HEAD", "/bucket-1");
    assert_eq!(a.code(), 503);
    assert!(a.body.is_empty());

    assert!(fake.seen().is_empty(), "{:?}", fake.actions());
    let stats = p.stats();
    assert_eq!((stats.requests, stats.throttled, stats.forwarded), (6, 6, 0));
    assert_eq!(stats.by_action.get("ec2:DescribeVpcs throttled"), Some(&1));
    assert_eq!(stats.by_action.get("s3:CreateBucket throttled"), Some(&1));
    assert_eq!(stats.by_action.get("s3:HeadBucket throttled"), Some(&1));
}

#[test]
fn server_errors_in_each_services_shape_are_not_forwarded() {
    let fake = fake();
    let p = proxy(&fake, 3, always(|f| f.server_error = 1.0));
    let mut ec2_codes = BTreeSet::new();
    for _ in 0..16 {
        let a = ec2(&p, A1, "Action=DescribeSubnets");
        let code = error_code(&a);
        match a.code() {
            500 => assert_eq!(code, "InternalError"),
            503 => assert_eq!(code, "Unavailable"),
            other => panic!("EC2 5xx answered {other}"),
        }
        assert!(a.body.contains("<Response><Errors><Error>"));
        ec2_codes.insert(code);
    }
    assert_eq!(ec2_codes.len(), 2, "both 500 and 503 should occur: {ec2_codes:?}");

    let mut iam_codes = BTreeSet::new();
    for _ in 0..16 {
        let a = iam(&p, A1, "Action=GetRole&RoleName=r");
        let code = error_code(&a);
        match a.code() {
            500 => assert_eq!(code, "ServiceFailure"),
            503 => assert_eq!(code, "ServiceUnavailable"),
            other => panic!("IAM 5xx answered {other}"),
        }
        assert!(a.body.contains("<Type>Receiver</Type>"));
        iam_codes.insert(code);
    }
    assert_eq!(iam_codes.len(), 2);

    let a = ssm(&p, A1, "GetDocument");
    assert_eq!(a.code(), 500);
    assert!(a.body.contains(r#""__type":"InternalServerError""#));
    assert_eq!(a.header("content-type"), Some("application/x-amz-json-1.1"));

    let a = s3(&p, A1, "GET", "/");
    assert_eq!(a.code(), 500);
    assert_eq!(error_code(&a), "InternalError");

    assert!(fake.seen().is_empty());
    assert_eq!(p.stats().server_errors, 34);
}

#[test]
fn reset_closes_without_answer_and_is_not_forwarded() {
    let fake = fake();
    let p = proxy(&fake, 4, always(|f| f.reset = 1.0));
    for _ in 0..3 {
        let a = ec2(&p, A1, "Action=CreateVpc&CidrBlock=10.0.0.0%2F16");
        assert_eq!(a.raw, 0, "a reset must not answer: {a:?}");
    }
    assert_eq!(ssm(&p, A1, "CreateDocument").raw, 0);
    assert!(fake.seen().is_empty());
    let stats = p.stats();
    assert_eq!((stats.resets, stats.forwarded), (4, 0));
    assert_eq!(stats.by_action.get("ec2:CreateVpc reset"), Some(&3));
}

#[test]
fn lost_response_is_processed_but_never_answered_completely() {
    let fake = fake();
    let p = proxy(&fake, 5, always(|f| f.lost_response = 1.0));
    let (mut closed, mut partial) = (0, 0);
    for _ in 0..16 {
        let a = ec2(&p, A1, "Action=CreateVpc&CidrBlock=10.0.0.0%2F16");
        assert!(!a.complete, "a lost response must not arrive complete: {a:?}");
        if a.raw == 0 {
            closed += 1;
        } else {
            partial += 1;
            assert_eq!(a.code(), 200);
            let expected: usize = a.header("content-length").unwrap().parse().unwrap();
            assert!(!a.body.is_empty() && a.body.len() < expected, "{} of {expected}", a.body.len());
        }
    }
    assert!(closed > 0 && partial > 0, "both ways of losing an answer should occur: {closed} closed, {partial} partial");
    assert_eq!(fake.actions(), vec!["CreateVpc".to_string(); 16], "every lost request reaches the emulator");
    let stats = p.stats();
    assert_eq!((stats.lost_responses, stats.forwarded), (16, 16));
    assert_eq!(stats.by_action.get("ec2:CreateVpc lost_response"), Some(&16));
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["by_action"]["ec2:CreateVpc lost_response"], 16);
}

#[test]
fn max_consecutive_guarantees_progress() {
    let fake = fake();
    let p = proxy(&fake, 6, Faults { throttle: 1.0, max_consecutive: 2, ..Faults::none() });
    let codes: Vec<u16> = (0..7).map(|_| ec2(&p, A1, "Action=DescribeVpcs").code()).collect();
    assert_eq!(codes, vec![503, 503, 200, 503, 503, 200, 503]);
    // Counted per (account, service, action).
    assert_eq!(ec2(&p, A1, "Action=DescribeSubnets").code(), 503);
    assert_eq!(ec2(&p, A2, "Action=DescribeVpcs").code(), 503);
    assert_eq!(fake.actions(), vec!["DescribeVpcs", "DescribeVpcs"]);

    let p = proxy(&fake, 6, Faults { reset: 1.0, max_consecutive: 0, ..Faults::none() });
    assert_eq!(ec2(&p, A1, "Action=DescribeVpcs").code(), 200, "max_consecutive 0 never injects");
}

fn decisions(fake: &Fake, seed: u64, interleave: bool) -> Vec<u16> {
    let p = proxy(
        fake,
        seed,
        always(|f| {
            f.throttle = 0.25;
            f.server_error = 0.25;
        }),
    );
    (0..24)
        .map(|_| {
            if interleave {
                ec2(&p, A1, "Action=DescribeSubnets");
                iam(&p, A1, "Action=GetRole&RoleName=x");
            }
            ec2(&p, A1, "Action=DescribeVpcs").code()
        })
        .collect()
}

#[test]
fn same_seed_same_decisions() {
    let fake = fake();
    let first = decisions(&fake, 7, false);
    assert!(first.contains(&200) && first.iter().any(|&c| c != 200), "{first:?}");
    assert_eq!(first, decisions(&fake, 7, false));
    assert_eq!(first, decisions(&fake, 7, true), "other actions' calls must not shift the decisions");
    assert_ne!(first, decisions(&fake, 8, false));
}

#[test]
fn latency_is_added() {
    let fake = fake();
    let p = proxy(&fake, 9, Faults { latency_ms: (250, 300), ..Faults::none() });
    let t = Instant::now();
    assert_eq!(ec2(&p, A1, "Action=DescribeVpcs").code(), 200);
    assert!(t.elapsed() >= Duration::from_millis(240), "{:?}", t.elapsed());
    // Unrecognised requests are delayed too.
    let t = Instant::now();
    let a = exchange(p.addr(), b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(a.code(), 200);
    assert!(t.elapsed() >= Duration::from_millis(240), "{:?}", t.elapsed());
}

#[test]
fn unrecognised_requests_are_forwarded_untouched() {
    let fake = fake();
    let p = proxy(&fake, 10, always(|f| f.throttle = 1.0));
    let a = exchange(p.addr(), b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\nConnection: close\r\n\r\nAction=CreateVpc");
    assert_eq!(a.code(), 200);
    let a = exchange(p.addr(), &query_request("sqs", A1, "Action=ListQueues"));
    assert_eq!(a.code(), 200);
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(p.stats().throttled, 0);
}

#[test]
fn new_instance_profile_is_not_usable_at_once() {
    let fake = fake();
    let p = proxy(&fake, 11, consistency(|c| c.profile_propagation = WINDOW));
    assert_eq!(iam(&p, A1, "Action=CreateInstanceProfile&InstanceProfileName=prof").code(), 200);

    let a = ec2(&p, A1, "Action=RunInstances&ImageId=ami-1&MinCount=1&MaxCount=1&IamInstanceProfile.Name=prof");
    assert_eq!(a.code(), 400);
    assert_eq!(error_code(&a), "InvalidParameterValue");
    assert!(
        a.body.contains(
            "<Message>Value (prof) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name</Message>"
        ),
        "{}",
        a.body
    );
    let a = ec2(
        &p,
        A1,
        "Action=AssociateIamInstanceProfile&InstanceId=i-1&IamInstanceProfile.Arn=arn%3Aaws%3Aiam%3A%3A111111111111%3Ainstance-profile%2Fprof",
    );
    assert_eq!(error_code(&a), "InvalidParameterValue");
    assert!(a.body.contains("arn:aws:iam::111111111111:instance-profile/prof"), "{}", a.body);
    assert!(fake.actions().iter().all(|a| a == "CreateInstanceProfile"), "{:?}", fake.actions());

    // Another profile, another account: not affected.
    assert_eq!(ec2(&p, A1, "Action=RunInstances&IamInstanceProfile.Name=other").code(), 200);
    assert_eq!(ec2(&p, A2, "Action=RunInstances&IamInstanceProfile.Name=prof").code(), 200);

    // Adding a role restarts the propagation.
    thread::sleep(AFTER_WINDOW);
    assert_eq!(ec2(&p, A1, "Action=RunInstances&IamInstanceProfile.Name=prof").code(), 200);
    assert_eq!(iam(&p, A1, "Action=AddRoleToInstanceProfile&InstanceProfileName=prof&RoleName=r").code(), 200);
    assert_eq!(ec2(&p, A1, "Action=RunInstances&IamInstanceProfile.Name=prof").code(), 400);
    thread::sleep(AFTER_WINDOW);
    assert_eq!(ec2(&p, A1, "Action=RunInstances&IamInstanceProfile.Name=prof").code(), 200);

    let stats = p.stats();
    assert_eq!(stats.not_yet_consistent, 3);
    assert_eq!(stats.by_action.get("ec2:RunInstances not_yet_consistent"), Some(&2));
}

#[test]
fn describe_right_after_create_answers_not_found() {
    let fake = fake();
    let p = proxy(&fake, 12, consistency(|c| c.describe_not_found = WINDOW));
    assert_eq!(ec2(&p, A1, "Action=CreateVpc&CidrBlock=10.0.0.0%2F16").code(), 200);
    let a = ec2(&p, A1, "Action=DescribeVpcs&VpcId.1=vpc-new1");
    assert_eq!(a.code(), 400);
    assert_eq!(error_code(&a), "InvalidVpcID.NotFound");
    assert!(a.body.contains("<Message>The vpc ID &apos;vpc-new1&apos; does not exist</Message>"), "{}", a.body);
    // By filter: not affected. Another account: not affected.
    assert_eq!(ec2(&p, A1, "Action=DescribeVpcs&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-new1").code(), 200);
    assert_eq!(ec2(&p, A2, "Action=DescribeVpcs&VpcId.1=vpc-new1").code(), 200);

    // CreateSubnet's answer names an old VPC: only the subnet is new.
    assert_eq!(ec2(&p, A1, "Action=CreateSubnet&VpcId=vpc-old&CidrBlock=10.0.1.0%2F24").code(), 200);
    assert_eq!(ec2(&p, A1, "Action=DescribeVpcs&VpcId.1=vpc-old").code(), 200);
    assert_eq!(error_code(&ec2(&p, A1, "Action=DescribeSubnets&SubnetId.1=subnet-new1")), "InvalidSubnetID.NotFound");

    assert_eq!(ec2(&p, A1, "Action=RunInstances&ImageId=ami-1").code(), 200);
    let a = ec2(&p, A1, "Action=DescribeInstances&InstanceId.1=i-old&InstanceId.2=i-new2");
    assert_eq!(error_code(&a), "InvalidInstanceID.NotFound");
    assert!(a.body.contains("i-new2"));

    thread::sleep(AFTER_WINDOW);
    assert_eq!(ec2(&p, A1, "Action=DescribeVpcs&VpcId.1=vpc-new1").code(), 200);
    assert_eq!(ec2(&p, A1, "Action=DescribeSubnets&SubnetId.1=subnet-new1").code(), 200);
    assert_eq!(ec2(&p, A1, "Action=DescribeInstances&InstanceId.1=i-new2").code(), 200);
    assert_eq!(p.stats().not_yet_consistent, 3);
}

#[test]
fn new_instances_are_pending_before_running() {
    let fake = fake();
    let p = proxy(&fake, 13, consistency(|c| c.instance_pending = WINDOW));
    assert_eq!(ec2(&p, A1, "Action=RunInstances&ImageId=ami-1").code(), 200);
    let a = ec2(&p, A1, "Action=DescribeInstances");
    assert_eq!(a.code(), 200);
    assert!(a.complete, "Content-Length must match the rewritten body");
    assert!(
        a.body.contains(
            "<instanceId>i-new1</instanceId><imageId>ami-1</imageId><instanceState><code>0</code><name>pending</name></instanceState>"
        ),
        "{}",
        a.body
    );
    assert!(
        a.body.contains(
            "<instanceId>i-old</instanceId><imageId>ami-1</imageId><instanceState><code>16</code><name>running</name></instanceState>"
        ),
        "{}",
        a.body
    );
    assert_eq!(a.body.matches("<name>running</name>").count(), 1);
    // Another account sees the emulator's answer.
    assert_eq!(ec2(&p, A2, "Action=DescribeInstances").body.matches("<name>running</name>").count(), 2);
    assert_eq!(p.stats().rewritten_states, 1);

    thread::sleep(AFTER_WINDOW);
    let a = ec2(&p, A1, "Action=DescribeInstances");
    assert_eq!(a.body.matches("<code>16</code><name>running</name>").count(), 2);
    assert_eq!(p.stats().by_action.get("ec2:DescribeInstances rewritten_state"), Some(&1));
}

#[test]
fn new_interface_endpoints_are_pending_before_available() {
    let fake = fake();
    let p = proxy(&fake, 14, consistency(|c| c.endpoint_pending = WINDOW));
    assert_eq!(
        ec2(&p, A1, "Action=CreateVpcEndpoint&VpcEndpointType=Interface&VpcId=vpc-old&ServiceName=com.amazonaws.us-east-1.ssm").code(),
        200
    );
    let a = ec2(&p, A1, "Action=DescribeVpcEndpoints");
    assert!(a.complete);
    assert!(
        a.body.contains("<vpcEndpointId>vpce-new1</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><state>Pending</state>"),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("<vpcEndpointId>vpce-old</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><state>available</state>"),
        "{}",
        a.body
    );
    thread::sleep(AFTER_WINDOW);
    let a = ec2(&p, A1, "Action=DescribeVpcEndpoints");
    assert!(a.body.contains("<state>Available</state>") && !a.body.contains("Pending"), "{}", a.body);
    assert_eq!(p.stats().rewritten_states, 1);
}

#[test]
fn dependencies_drain_after_terminate_and_endpoint_deletion() {
    let fake = fake();
    let p = proxy(&fake, 15, consistency(|c| c.dependency_drain = WINDOW));
    assert_eq!(ec2(&p, A1, "Action=DeleteVpc&VpcId=vpc-0").code(), 200);
    assert_eq!(ec2(&p, A1, "Action=TerminateInstances&InstanceId.1=i-1").code(), 200);

    let a = ec2(&p, A1, "Action=DeleteVpc&VpcId=vpc-1");
    assert_eq!(a.code(), 400);
    assert_eq!(error_code(&a), "DependencyViolation");
    assert!(a.body.contains("The vpc &apos;vpc-1&apos; has dependencies and cannot be deleted."), "{}", a.body);
    let a = ec2(&p, A1, "Action=DeleteSecurityGroup&GroupId=sg-1");
    assert!(a.body.contains("<Message>resource sg-1 has a dependent object</Message>"), "{}", a.body);
    assert_eq!(error_code(&ec2(&p, A1, "Action=DeleteSubnet&SubnetId=subnet-1")), "DependencyViolation");
    assert_eq!(ec2(&p, A2, "Action=DeleteVpc&VpcId=vpc-2").code(), 200);
    thread::sleep(AFTER_WINDOW);
    assert_eq!(ec2(&p, A1, "Action=DeleteVpc&VpcId=vpc-1").code(), 200);

    assert_eq!(ec2(&p, A1, "Action=DeleteVpcEndpoints&VpcEndpointId.1=vpce-1").code(), 200);
    assert_eq!(error_code(&ec2(&p, A1, "Action=DeleteSubnet&SubnetId=subnet-1")), "DependencyViolation");
    assert_eq!(
        fake.actions(),
        vec!["DeleteVpc", "TerminateInstances", "DeleteVpc", "DeleteVpc", "DeleteVpcEndpoints"],
        "answers inside the window are not forwarded"
    );
    assert_eq!(p.stats().not_yet_consistent, 4);
}

#[test]
fn drop_stops_the_proxy_without_hanging() {
    let fake = fake();
    let p = proxy(&fake, 16, Faults { latency_ms: (5_000, 5_000), ..Faults::none() });
    let addr = p.addr();
    // An idle connection and one waiting on its latency must not hold the drop up.
    let _idle = TcpStream::connect(addr).unwrap();
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(&query_request("ec2", A1, "Action=DescribeVpcs")).unwrap();
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    drop(p);
    assert!(t.elapsed() < Duration::from_secs(3), "drop took {:?}", t.elapsed());
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(), "still listening after drop");
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = busy.read_to_end(&mut buf);
    assert!(buf.is_empty());
}

#[test]
fn malformed_input_does_not_break_the_proxy() {
    let fake = fake();
    let p = proxy(&fake, 17, Faults::quick());
    let garbage: [&[u8]; 5] = [
        b"\x00\x01\x02garbage\xff\xfe\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"NOT HTTP AT ALL",
        b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=//////\r\nContent-Length: 5\r\nConnection: close\r\n\r\n%%%&=",
    ];
    for g in garbage {
        let mut s = TcpStream::connect(p.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = s.write_all(g);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    // Odd but well-formed calls are forwarded or answered.
    let a = ec2(&p, A1, "Action=Describe%ZZ&VpcId.x=%&=&&");
    assert!(a.raw == 0 || a.status.is_some());
    let a = exchange(p.addr(), &query_request("ec2", "", "Action=DescribeVpcs"));
    assert_eq!(a.code(), 200);
    let mut ok = 0;
    for _ in 0..6 {
        if ec2(&p, A1, "Action=DescribeVpcs").code() == 200 {
            ok += 1;
        }
    }
    assert!(ok > 0, "the proxy stopped answering after garbage");

    // An emulator that breaks off its answer, and one that is not there: 502, and the proxy lives on.
    let bad = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bad_addr = bad.local_addr().unwrap();
    let server = thread::spawn(move || {
        for _ in 0..2 {
            if let Ok((mut s, _)) = bad.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
            }
        }
    });
    let p2 = start(&format!("http://{bad_addr}"), Config { seed: 1, faults: Faults::none(), account_suffix: None }).unwrap();
    assert_eq!(ec2(&p2, A1, "Action=DescribeVpcs").code(), 502);
    assert_eq!(ec2(&p2, A1, "Action=DescribeVpcs").code(), 502);
    server.join().unwrap();
    drop(p2);
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let p3 = start(&format!("http://{gone_addr}"), Config { seed: 1, faults: Faults::none(), account_suffix: None }).unwrap();
    assert_eq!(ec2(&p3, A1, "Action=DescribeVpcs").code(), 502);
    assert_eq!(ec2(&p3, A1, "Action=DescribeVpcs").code(), 502);

    assert!(start("https://127.0.0.1:1", Config { seed: 1, faults: Faults::none(), account_suffix: None }).is_err());
}

#[test]
fn keeps_connections_alive() {
    let fake = fake();
    let p = proxy(&fake, 18, Faults::none());
    let mut s = TcpStream::connect(p.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let first = String::from_utf8(query_request("ec2", A1, "Action=DescribeVpcs")).unwrap().replace("Connection: close\r\n", "");
    s.write_all(first.as_bytes()).unwrap();
    // Read exactly one answer.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after the first answer");
        buf.extend_from_slice(&chunk[..n]);
        let a = parse(&buf, false);
        if a.status.is_some() && a.complete {
            assert_eq!(a.code(), 200);
            break;
        }
    }
    s.write_all(&query_request("ec2", A1, "Action=DescribeSubnets")).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let a = parse(&rest, false);
    assert_eq!(a.code(), 200);
    assert!(a.body.contains("DescribeSubnetsResponse"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_inside_a_tokio_runtime() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = fake();
    let p = proxy(&fake, 19, Faults::quick());
    let mut s = tokio::net::TcpStream::connect(p.addr()).await.unwrap();
    s.write_all(&query_request("sts", A1, "Action=GetCallerIdentity&Version=2011-06-15")).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let a = parse(&buf, false);
    assert!(a.raw == 0 || a.status.is_some());
    assert_eq!(p.stats().requests, 1);
    // Dropping inside a runtime must neither panic nor hang.
    drop(p);
    drop(fake);
}

#[test]
fn presets() {
    let r = Faults::realistic();
    assert!(r.throttle > 0.0 && r.throttle < 0.1 && r.max_consecutive == 2 && r.consistency.enabled);
    assert!(r.consistency.profile_propagation >= Duration::from_secs(2));
    let q = Faults::quick();
    assert_eq!((q.throttle, q.server_error, q.reset, q.lost_response), (r.throttle, r.server_error, r.reset, r.lost_response));
    assert!(q.latency_ms.1 <= 20 && q.consistency.profile_propagation <= Duration::from_secs(2));
    let n = Faults::none();
    assert!(!n.consistency.enabled && n.throttle == 0.0 && n.latency_ms == (0, 0));
}
