//! The server loop, the per-request decisions and the forwarding to the emulator.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::oneshot;

use crate::consistency::Accounts;
use crate::shapes::{self, Ids};
use crate::wire::{self, Call};
use crate::{Config, Stats};

/// How long open connections get to be dropped when the proxy stops.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How long the first part of a lost answer stays on the wire before the connection is closed.
const PARTIAL_HOLD: Duration = Duration::from_millis(30);

/// The emulator's base URL.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    authority: String,
    prefix: String,
}

impl Upstream {
    pub fn parse(s: &str) -> io::Result<Self> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, format!("upstream {s:?}: {why}"));
        let uri: Uri = s.trim().parse().map_err(|e| invalid(format!("{e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid("only plain http:// upstreams are supported".into()));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host".into()))?.to_string();
        Ok(Upstream { authority, prefix: uri.path().trim_end_matches('/').to_string() })
    }

    fn uri(&self, path_and_query: &str) -> Option<Uri> {
        format!("http://{}{}{}", self.authority, self.prefix, path_and_query).parse().ok()
    }
}

/// The error that makes hyper close a connection without (finishing) an answer.
#[derive(Debug)]
pub(crate) struct Abort;

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Abort {}

/// An answer body: complete, or the first part of a lost answer followed by a broken connection.
pub(crate) enum ProxyBody {
    Full(Option<Bytes>),
    Partial { data: Option<Bytes>, hold: Option<Pin<Box<tokio::time::Sleep>>> },
}

impl ProxyBody {
    pub fn full(data: Bytes) -> Self {
        ProxyBody::Full(Some(data).filter(|d| !d.is_empty()))
    }

    fn partial(data: Bytes) -> Self {
        ProxyBody::Partial { data: Some(data), hold: None }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = Abort;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Abort>>> {
        match self.get_mut() {
            ProxyBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ProxyBody::Partial { data, hold } => {
                if let Some(d) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                // Let hyper flush the part already sent, then break the connection.
                let sleep = hold.get_or_insert_with(|| Box::pin(tokio::time::sleep(PARTIAL_HOLD)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(Abort)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ProxyBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
            ProxyBody::Partial { .. } => SizeHint::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Throttle,
    ServerError,
    Reset,
    Lost,
}

/// Everything decided for one request, drawn from its seeded dice.
struct Plan {
    latency: Duration,
    fault: Option<Fault>,
    /// 503 rather than 500 for a server error.
    unavailable: bool,
    /// For a lost answer: send the head and part of the body rather than nothing.
    partial: bool,
    /// How much of the body a partial answer sends.
    fraction: f64,
    ids: Ids,
}

#[derive(Debug, Default)]
struct Occurrence {
    /// Requests of this (account, service, action) seen so far.
    n: u64,
    /// Faults injected on the latest consecutive occurrences.
    consecutive: u32,
}

#[derive(Debug, Default)]
struct State {
    occurrences: HashMap<(String, String, String), Occurrence>,
    accounts: Accounts,
}

pub(crate) struct Shared {
    upstream: Upstream,
    config: Config,
    client: Client<HttpConnector, Full<Bytes>>,
    state: Mutex<State>,
    stats: Arc<Mutex<Stats>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The proxy thread: its own runtime, the accept loop until `stop`, then a bounded shutdown.
pub(crate) fn run(
    listener: std::net::TcpListener,
    upstream: Upstream,
    config: Config,
    stats: Arc<Mutex<Stats>>,
    stop: oneshot::Receiver<()>,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(2))
            .http1_preserve_header_case(true)
            .build(connector);
        let shared = Arc::new(Shared { upstream, config, client, state: Mutex::new(State::default()), stats });
        let _ = ready.send(Ok(()));
        let mut stop = stop;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve(stream, Arc::clone(&shared)));
                    }
                    // Out of file descriptors and the like: wait a little rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
    });
    // Drops the listener's connections still open (their tasks) and any blocking DNS lookup.
    rt.shutdown_timeout(SHUTDOWN_GRACE);
}

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let svc = service_fn(move |req| handle(Arc::clone(&shared), req));
    // Errors (a malformed request, a dropped client, an Abort) end this connection only.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Abort> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Abort)?.to_bytes();
    let call = wire::recognise(&parts, &body);
    let plan = shared.plan(call.as_ref());
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let head = parts.method == Method::HEAD;
    let lost = plan.fault == Some(Fault::Lost);
    let consistency = shared.config.faults.consistency.enabled;

    if let Some(call) = &call {
        if let Some(kind) = call.kind {
            match plan.fault {
                Some(Fault::Throttle) => {
                    shared.count(call, "throttled", 1, |s| s.throttled += 1);
                    return Ok(shapes::throttle(kind, &plan.ids));
                }
                Some(Fault::ServerError) => {
                    shared.count(call, "server_error", 1, |s| s.server_errors += 1);
                    return Ok(shapes::server_error(kind, plan.unavailable, &plan.ids));
                }
                Some(Fault::Reset) => {
                    shared.count(call, "reset", 1, |s| s.resets += 1);
                    return Err(Abort);
                }
                Some(Fault::Lost) | None => {}
            }
        }
        if consistency {
            let answer = lock(&shared.state).accounts.precheck(call, Instant::now());
            if let Some(answer) = answer {
                shared.count(call, "not_yet_consistent", 1, |s| s.not_yet_consistent += 1);
                if lost {
                    // The "processing" was this answer, and it is lost too.
                    shared.count(call, "lost_response", 1, |s| s.lost_responses += 1);
                    return Err(Abort);
                }
                return Ok(shapes::ec2_error(400, &answer.code, &answer.message, &plan.ids));
            }
        }
    }

    let (mut resp, mut resp_body) = match shared.forward(parts, body).await {
        Ok(answer) => answer,
        Err(detail) => return Ok(shapes::bad_gateway(&detail)),
    };
    lock(&shared.stats).forwarded += 1;
    if let Some(call) = &call
        && consistency
        && resp.status == StatusCode::OK
        && identity_encoded(&resp.headers)
        && let Ok(text) = std::str::from_utf8(&resp_body)
    {
        let now = Instant::now();
        let mut state = lock(&shared.state);
        state.accounts.observe(&shared.config.faults.consistency, call, text, now);
        let rewrite = if lost { None } else { state.accounts.rewrite(call, text, now) };
        drop(state);
        if let Some((new_body, n)) = rewrite {
            shared.count(call, "rewritten_state", n, |s| s.rewritten_states += n);
            resp_body = Bytes::from(new_body);
        }
    }
    strip_hop_by_hop(&mut resp.headers);
    // The body is complete in hand: its length is the truth (a HEAD keeps the emulator's header,
    // which describes the object rather than this empty body).
    let bodiless = head || resp.status == StatusCode::NO_CONTENT || resp.status == StatusCode::NOT_MODIFIED;
    if !head {
        if bodiless && resp_body.is_empty() {
            resp.headers.remove(header::CONTENT_LENGTH);
        } else {
            resp.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(resp_body.len()));
        }
    }

    if lost {
        if let Some(call) = &call {
            shared.count(call, "lost_response", 1, |s| s.lost_responses += 1);
        }
        let len = resp_body.len();
        if !plan.partial || bodiless || len < 2 {
            return Err(Abort);
        }
        let sent = ((len as f64 * plan.fraction) as usize).clamp(1, len - 1);
        resp.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        return Ok(Response::from_parts(resp, ProxyBody::partial(resp_body.slice(..sent))));
    }
    Ok(Response::from_parts(resp, ProxyBody::full(resp_body)))
}

impl Shared {
    /// Rolls the dice for one request: `hash(seed, account, service, action, n)`.
    fn plan(&self, call: Option<&Call>) -> Plan {
        let (account, service, action) = call.map_or(("", "", ""), |c| (c.account.as_str(), c.service.as_str(), c.action.as_str()));
        let faults = &self.config.faults;
        lock(&self.stats).requests += 1;
        let mut state = lock(&self.state);
        let occurrence = state.occurrences.entry((account.to_string(), service.to_string(), action.to_string())).or_default();
        let n = occurrence.n;
        occurrence.n += 1;
        let mut rng =
            StdRng::seed_from_u64(dice_seed(self.config.seed, dice_account(account, self.config.account_suffix), service, action, n));
        // Always draw everything, in this order, so one decision never shifts another.
        let roll: f64 = rng.random();
        let (lo, hi) = (faults.latency_ms.0.min(faults.latency_ms.1), faults.latency_ms.0.max(faults.latency_ms.1));
        let latency = Duration::from_millis(rng.random_range(lo..=hi));
        let unavailable: bool = rng.random();
        let partial: bool = rng.random();
        let fraction: f64 = rng.random_range(0.1..0.9);
        let ids = Ids { request_id: uuid(rng.random()), host_id: host_id(&mut rng) };

        let mut fault = if call.is_some_and(|c| c.kind.is_some()) { pick(roll, faults) } else { None };
        if fault.is_some() {
            if occurrence.consecutive >= faults.max_consecutive {
                fault = None;
                occurrence.consecutive = 0;
            } else {
                occurrence.consecutive += 1;
            }
        } else {
            occurrence.consecutive = 0;
        }
        Plan { latency, fault, unavailable, partial, fraction, ids }
    }

    fn count(&self, call: &Call, event: &str, n: u64, f: impl FnOnce(&mut Stats)) {
        let mut stats = lock(&self.stats);
        f(&mut stats);
        *stats.by_action.entry(format!("{} {event}", call.label())).or_default() += n;
    }

    /// Sends the request on unchanged (same headers, same body) and reads the whole answer.
    async fn forward(&self, mut parts: request::Parts, body: Bytes) -> Result<(hyper::http::response::Parts, Bytes), String> {
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = self.upstream.uri(path_and_query).ok_or_else(|| format!("cannot build a URI for {path_and_query:?}"))?;
        let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
        strip_hop_by_hop(&mut parts.headers);
        // The body is complete already: nothing to wait for.
        parts.headers.remove(header::EXPECT);
        if chunked || (!body.is_empty() && !parts.headers.contains_key(header::CONTENT_LENGTH)) {
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        parts.version = Version::HTTP_11;
        let resp = self.client.request(Request::from_parts(parts, Full::new(body))).await.map_err(|e| format!("{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts, body))
    }
}

fn pick(roll: f64, faults: &crate::Faults) -> Option<Fault> {
    let p = |x: f64| if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 };
    let mut edge = 0.0;
    for (prob, fault) in [
        (faults.throttle, Fault::Throttle),
        (faults.server_error, Fault::ServerError),
        (faults.reset, Fault::Reset),
        (faults.lost_response, Fault::Lost),
    ] {
        edge += p(prob);
        if roll < edge {
            return Some(fault);
        }
    }
    None
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

fn identity_encoded(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).is_none_or(|v| v.trim().eq_ignore_ascii_case("identity"))
}

/// FNV-1a over the fields (length-prefixed), finished with SplitMix64: stable across platforms
/// and releases, unlike `std`'s hasher.
/// The part of the account id the dice read: all of it, or its last `suffix` characters.
fn dice_account(account: &str, suffix: Option<usize>) -> &str {
    match suffix {
        Some(k) if k > 0 => account.char_indices().rev().nth(k - 1).map_or(account, |(i, _)| &account[i..]),
        _ => account,
    }
}

fn dice_seed(seed: u64, account: &str, service: &str, action: &str, n: u64) -> u64 {
    fn eat(h: &mut u64, bytes: &[u8]) {
        for &b in bytes {
            *h ^= u64::from(b);
            *h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    eat(&mut h, &seed.to_le_bytes());
    for field in [account, service, action] {
        eat(&mut h, &(field.len() as u64).to_le_bytes());
        eat(&mut h, field.as_bytes());
    }
    eat(&mut h, &n.to_le_bytes());
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version-4 UUID in its usual text form.
fn uuid(bits: u128) -> String {
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An S3 `x-amz-id-2`-like token.
fn host_id(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s: String = (0..76).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    s.push('=');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Faults;

    #[test]
    fn dice_can_read_only_the_end_of_the_account() {
        assert_eq!(dice_account("123456000007", Some(6)), "000007");
        assert_eq!(dice_account("987654000007", Some(6)), "000007");
        assert_eq!(dice_account("123456000007", None), "123456000007");
        assert_eq!(dice_account("12", Some(6)), "12");
        assert_eq!(dice_account("ééééééé", Some(3)), "ééé", "never splits a character");
    }

    #[test]
    fn dice_seed_separates_fields() {
        let a = dice_seed(1, "ab", "c", "X", 0);
        assert_ne!(a, dice_seed(1, "a", "bc", "X", 0));
        assert_ne!(a, dice_seed(2, "ab", "c", "X", 0));
        assert_ne!(a, dice_seed(1, "ab", "c", "X", 1));
        assert_eq!(a, dice_seed(1, "ab", "c", "X", 0));
    }

    #[test]
    fn pick_by_cumulative_ranges() {
        let f = Faults { throttle: 0.1, server_error: 0.1, reset: 0.1, lost_response: 0.1, ..Faults::none() };
        assert_eq!(pick(0.05, &f), Some(Fault::Throttle));
        assert_eq!(pick(0.15, &f), Some(Fault::ServerError));
        assert_eq!(pick(0.25, &f), Some(Fault::Reset));
        assert_eq!(pick(0.35, &f), Some(Fault::Lost));
        assert_eq!(pick(0.45, &f), None);
        let nan = Faults { throttle: f64::NAN, server_error: 7.0, ..Faults::none() };
        assert_eq!(pick(0.99, &nan), Some(Fault::ServerError));
    }

    #[test]
    fn uuid_shape() {
        let u = uuid(u128::MAX);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_eq!(uuid(0), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn upstream_parsing() {
        let u = Upstream::parse("http://127.0.0.1:4566/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.uri("/a?b=c").map(|u| u.to_string()), Some("http://127.0.0.1:4566/a?b=c".into()));
        let u = Upstream::parse("http://localhost:4566/base").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.uri("/").map(|u| u.to_string()), Some("http://localhost:4566/base/".into()));
        assert!(Upstream::parse("https://127.0.0.1:4566").is_err());
        assert!(Upstream::parse("not a url").is_err());
        assert!(Upstream::parse("").is_err());
    }
}
