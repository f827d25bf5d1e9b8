//! A recording proxy: listens on 127.0.0.1 only, forwards every request to the emulator
//! unchanged (the client's Host header included, so URLs the emulator builds name the proxy),
//! answers with the emulator's answer, and records what was sent. It stops when dropped: the
//! accept loop owns the connection tasks, and aborting it drops them all.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::{Arc, Mutex};

/// Headers that say how a request was serialised; the rest (signature, date, user agent,
/// invocation ids, lengths) differ between any two clients and between any two runs.
pub fn header_matters(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    const SIGNING: &[&str] = &["x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "x-amz-user-agent"];
    matches!(name.as_str(), "content-type" | "x-amz-target" | "x-amzn-query-mode" | "content-encoding")
        || (name.starts_with("x-amz-") && !SIGNING.contains(&name.as_str()))
}

/// One request as the emulator received it, and the status it answered with.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lower-cased names of the headers that matter, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub status: u16,
}

type Records = Arc<Mutex<Vec<Recorded>>>;

pub struct RecordingProxy {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    records: Records,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let upstream: Uri =
            upstream.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let authority = upstream.authority().map(|a| a.to_string()).unwrap_or_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let records: Records = Arc::default();
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let rec = records.clone();
        let task = tokio::spawn(async move {
            // Dropped with this task: every open connection goes with it.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (client, rec, authority) = (client.clone(), rec.clone(), authority.clone());
                connections.spawn(async move {
                    let service = service_fn(move |req| forward(req, client.clone(), rec.clone(), authority.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(RecordingProxy { url, records, task })
    }

    /// The requests recorded since the last call, oldest first.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    req: Request<Incoming>,
    client: Client<HttpConnector, Full<Bytes>>,
    records: Records,
    authority: String,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the request body: {e}"))),
    };
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
    let mut record = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .filter(|(n, _)| header_matters(n.as_str()))
            .map(|(n, v)| (n.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.clone(),
        status: 0,
    };
    let Ok(uri) = format!("http://{authority}{path_and_query}").parse::<Uri>() else {
        return Ok(bad_gateway(format!("cannot forward {path_and_query}")));
    };
    let mut upstream = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        // The body is forwarded whole: no 100-continue handshake upstream.
        if name != hyper::header::EXPECT {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(Full::new(body)) {
        Ok(r) => client.request(r).await,
        Err(e) => return Ok(bad_gateway(format!("building the upstream request: {e}"))),
    };
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            record.status = 502;
            records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
            return Ok(bad_gateway(format!("the emulator did not answer: {e}")));
        }
    };
    let (mut head, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the emulator's answer: {e}"))),
    };
    record.status = head.status.as_u16();
    records.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    // The body is re-framed with its exact length.
    head.headers.remove(hyper::header::TRANSFER_ENCODING);
    head.headers.remove(hyper::header::CONNECTION);
    Ok(Response::from_parts(head, Full::new(body)))
}

fn bad_gateway(why: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("recording proxy: {why}"))));
    *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    r
}
