//! A fault-and-realism HTTP proxy in front of an AWS emulator (LocalStack).
//!
//! LocalStack answers every call at once, never throttles, never loses a response and moves every
//! resource to its final state instantly. This proxy makes it behave like real AWS
//! (`shared/reference/aws-real-conditions.md`): throttling and 5xx answers in each service's own
//! error format, connection resets, responses lost after the request was processed, added latency,
//! and eventual consistency (see [`Consistency`]).
//!
//! Every decision is reproducible from [`Config::seed`]: the dice for a request are seeded by
//! `hash(seed, account, service, action, n)`, where `n` counts the earlier requests of the same
//! `(account, service, action)`. The proxy listens on 127.0.0.1 only, runs on its own thread with
//! its own tokio runtime, and stops when the [`Realism`] handle is dropped.

mod consistency;
mod proxy;
mod shapes;
mod wire;
mod xml;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

/// Per-request fault probabilities (each `0.0..=1.0`) and the eventual-consistency windows.
///
/// Faults apply to requests the proxy recognises (EC2, IAM, STS, SSM and S3 calls signed with
/// SigV4); anything else is forwarded untouched apart from the latency.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Answer with the service's throttling error; the request is not forwarded.
    pub throttle: f64,
    /// Answer 500/503 in the service's error format; the request is not forwarded.
    pub server_error: f64,
    /// Close the connection without answering; the request is not forwarded.
    pub reset: f64,
    /// Forward, let the emulator process the request, then drop the answer: either close the
    /// connection, or send the status line, the headers and part of the body, then close.
    pub lost_response: f64,
    /// Uniform added delay in milliseconds (inclusive bounds), before anything is answered.
    pub latency_ms: (u64, u64),
    /// Never inject a throttle/5xx/reset/lost fault on more than this many consecutive
    /// occurrences of the same `(account, service, action)`, so a client that retries progresses.
    pub max_consecutive: u32,
    /// Eventual consistency.
    pub consistency: Consistency,
}

/// Eventual-consistency windows, per account (the access key id LocalStack takes as the account).
///
/// Each window starts when the emulator answered the triggering call with 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistency {
    /// Whether any of the behaviours below is active.
    pub enabled: bool,
    /// After IAM `CreateInstanceProfile` / `AddRoleToInstanceProfile`, EC2 `RunInstances` and
    /// `AssociateIamInstanceProfile` naming that profile answer `InvalidParameterValue`.
    pub profile_propagation: Duration,
    /// After an EC2 create, a describe naming the new id explicitly answers `Invalid…ID.NotFound`.
    pub describe_not_found: Duration,
    /// After `RunInstances`, `DescribeInstances` shows the new instances `pending` (code 0).
    pub instance_pending: Duration,
    /// After `CreateVpcEndpoint` (interface or load-balancer type), `DescribeVpcEndpoints` shows it `pending`.
    pub endpoint_pending: Duration,
    /// After `TerminateInstances` or `DeleteVpcEndpoints`, `DeleteVpc`, `DeleteSubnet` and
    /// `DeleteSecurityGroup` in the same account answer `DependencyViolation`.
    pub dependency_drain: Duration,
}

impl Consistency {
    /// No eventual consistency: the emulator's own behaviour.
    pub fn off() -> Self {
        Consistency {
            enabled: false,
            profile_propagation: Duration::ZERO,
            describe_not_found: Duration::ZERO,
            instance_pending: Duration::ZERO,
            endpoint_pending: Duration::ZERO,
            dependency_drain: Duration::ZERO,
        }
    }
}

impl Default for Consistency {
    fn default() -> Self {
        Consistency::off()
    }
}

impl Faults {
    /// No faults, no latency, no eventual consistency: a transparent proxy.
    ///
    /// `max_consecutive` is 2 so that `Faults { throttle: 1.0, ..Faults::none() }` still progresses.
    pub fn none() -> Self {
        Faults {
            throttle: 0.0,
            server_error: 0.0,
            reset: 0.0,
            lost_response: 0.0,
            latency_ms: (0, 0),
            max_consecutive: 2,
            consistency: Consistency::off(),
        }
    }

    /// Rates in the range a busy real account meets, and consistency windows of a few seconds.
    pub fn realistic() -> Self {
        Faults {
            throttle: 0.04,
            server_error: 0.02,
            reset: 0.01,
            lost_response: 0.02,
            latency_ms: (20, 150),
            max_consecutive: 2,
            consistency: Consistency {
                enabled: true,
                profile_propagation: Duration::from_secs(5),
                describe_not_found: Duration::from_secs(2),
                instance_pending: Duration::from_secs(4),
                endpoint_pending: Duration::from_secs(4),
                dependency_drain: Duration::from_secs(3),
            },
        }
    }

    /// The rates of [`Faults::realistic`] with short latency and windows of one to two seconds, for CI.
    pub fn quick() -> Self {
        Faults {
            latency_ms: (1, 20),
            consistency: Consistency {
                enabled: true,
                profile_propagation: Duration::from_secs(2),
                describe_not_found: Duration::from_secs(1),
                instance_pending: Duration::from_millis(1500),
                endpoint_pending: Duration::from_millis(1500),
                dependency_drain: Duration::from_secs(1),
            },
            ..Faults::realistic()
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}

/// What to inject, and the seed that makes it reproducible.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub seed: u64,
    pub faults: Faults,
    /// When set, the dice read only the last N characters of the account id. `labrun test`
    /// gives chapter k an account whose last six digits are k and whose prefix is new every
    /// run: reading only the chapter's part replays a seed's faults in fresh accounts.
    pub account_suffix: Option<usize>,
}

/// Counters since the proxy started; `by_action` keys read `"ec2:CreateVpc lost_response"`.
///
/// Event names in `by_action`: `throttled`, `server_error`, `reset`, `lost_response`,
/// `not_yet_consistent`, `rewritten_state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Requests whose body was read completely (malformed requests answered by the HTTP layer are not counted).
    pub requests: u64,
    /// Requests sent to the emulator that it answered (lost responses included).
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub resets: u64,
    pub lost_responses: u64,
    /// Eventual-consistency answers of any kind (NotFound, InvalidParameterValue, DependencyViolation).
    pub not_yet_consistent: u64,
    /// Resources shown in an earlier state than the emulator's (pending instances and endpoints).
    pub rewritten_states: u64,
    pub by_action: BTreeMap<String, u64>,
}

/// The running proxy. Dropping it stops the listener and its thread.
pub struct Realism {
    endpoint: String,
    addr: SocketAddr,
    stats: Arc<Mutex<Stats>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the proxy in front of `upstream` (a plain-HTTP base URL such as `http://127.0.0.1:4566`).
///
/// Binds 127.0.0.1 on a free port and returns once listening. The proxy runs on its own thread
/// with its own tokio runtime, so this works from sync code and from inside another runtime.
pub fn start(upstream: &str, config: Config) -> std::io::Result<Realism> {
    let upstream = proxy::Upstream::parse(upstream)?;
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let (stop_tx, stop_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::Builder::new().name(format!("labrun-realism-{}", addr.port())).spawn({
        let stats = Arc::clone(&stats);
        move || proxy::run(listener, upstream, config, stats, stop_rx, ready_tx)
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(std::io::Error::other("the realism proxy thread stopped while starting"));
        }
    }
    Ok(Realism { endpoint: format!("http://{addr}"), addr, stats, stop: Some(stop_tx), thread: Some(thread) })
}

impl Realism {
    /// `http://127.0.0.1:PORT`, to use as the AWS endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The address the proxy listens on (always on 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl std::fmt::Debug for Realism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realism").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl Drop for Realism {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The thread leaves its accept loop at once and gives open connections at most
            // `proxy::SHUTDOWN_GRACE` to be dropped, so this join is bounded.
            let _ = thread.join();
        }
    }
}
