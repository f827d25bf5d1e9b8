//! The one retry policy. The SDK makes a single attempt per call; every retry happens here,
//! where the step's client token, the lookup after a lost answer, eventual consistency and
//! cancellation are known. (Stacking the SDK's retries under these would multiply attempts and
//! give a create a new client token per SDK retry round.)
//!
//! What AWS does that this answers is described in `shared/reference/aws-real-conditions.md`:
//! throttling and 5xx are retried with capped, jittered backoff a bounded number of times;
//! eventual-consistency answers right after a create (`*.NotFound`, an instance profile EC2
//! does not know yet) are retried while building, for a bounded time; dependencies still
//! draining (`DependencyViolation`) are retried while deleting, for a bounded time.

use crate::backend::{Backend, CallError, ErrorKind, TargetInfo};
use labrun_lab::catalog::Operation;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the caller is doing; the same answer means different things in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Building (`run`): NotFound right after a create is eventual consistency.
    Build,
    /// Checking: the current state is the answer; only throttling and lost answers are retried.
    Check,
    /// Removing (`down`, the sweep, a teardown): draining dependencies are waited for.
    Cleanup,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Throttling, 5xx, or a lost answer to a read: retry a bounded number of times.
    Retry,
    /// Not yet consistent, or a dependency still draining: retry for a bounded time.
    Wait,
    /// The answer stands.
    Fail,
}

/// Judges one failed attempt. A lost answer to a change is never judged here: the caller
/// first finds out whether the change happened (see `Engine`).
pub fn judge(e: &CallError, phase: Phase) -> Next {
    match e.kind {
        ErrorKind::Transient | ErrorKind::Lost => Next::Retry,
        _ if phase == Phase::Build && not_yet_consistent(e) => Next::Wait,
        _ if phase != Phase::Check && draining(e) => Next::Wait,
        _ => Next::Fail,
    }
}

/// Refused for rate: certainly not processed (unlike a 5xx, which may have been).
pub fn throttled(e: &CallError) -> bool {
    matches!(
        e.code.as_str(),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" | "SlowDown" | "RequestThrottled"
    )
}

/// Answers AWS gives for a while after a create, before every part of it agrees.
pub fn not_yet_consistent(e: &CallError) -> bool {
    let m = e.message.to_ascii_lowercase();
    e.kind == ErrorKind::NotFound
        || (e.code == "InvalidParameterValue" && (m.contains("invalid iam instance profile") || m.contains("iaminstanceprofile")))
        || m.contains("has no associated iam roles")
}

/// A delete refused because something that depends on the resource is still going away.
pub fn draining(e: &CallError) -> bool {
    matches!(e.code.as_str(), "DependencyViolation" | "DeleteConflict" | "IncorrectState" | "InvalidState" | "ResourceInUse")
}

/// An undo answered "nothing to undo": the resource (or what held it: a route's route table,
/// a key's user) is gone, the rule already revoked or already back, the gateway already
/// detached.
pub fn already_undone(e: &CallError) -> bool {
    e.kind == ErrorKind::NotFound
        || crate::backend::is_not_found_code(&e.code)
        || matches!(e.code.as_str(), "Gateway.NotAttached" | "InvalidPermission.Duplicate")
}

/// Deletes, terminations, detachments, revocations: repeating one is harmless, and after a
/// lost answer "nothing to remove" means the lost attempt did it.
pub fn removes(op: &Operation) -> bool {
    ["Delete", "Terminate", "Detach", "Disassociate", "Remove", "Revoke"].iter().any(|p| op.action().starts_with(p))
}

/// How long and how often to retry. `run` uses the defaults; tests shrink them.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub poll_interval: Duration,
    pub poll_max_interval: Duration,
    pub default_timeout: Duration,
    /// First retry delay when the step does not set `retry.delay`.
    pub retry_base: Duration,
    pub retry_max_delay: Duration,
    /// How long a build keeps retrying an eventual-consistency answer.
    pub consistency_patience: Duration,
    /// How long a delete keeps retrying while a dependency drains.
    pub dependency_patience: Duration,
    /// Attempts for throttling, 5xx and lost answers when the step does not set `retry.attempts`.
    pub attempts: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            poll_interval: Duration::from_secs(2),
            poll_max_interval: Duration::from_secs(15),
            default_timeout: Duration::from_secs(300),
            retry_base: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(20),
            consistency_patience: Duration::from_secs(120),
            dependency_patience: Duration::from_secs(180),
            attempts: 6,
        }
    }
}

/// Exponential backoff with jitter (half to full), capped.
pub fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(10)).min(cap);
    exp.mul_f64(rand::random::<f64>() * 0.5 + 0.5)
}

/// Ctrl-C or SIGTERM arrived while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Sleeps unless cancelled first; a cancelled wait returns at once.
pub async fn sleep(d: Duration, cancel: &CancellationToken) -> Result<(), Interrupted> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Interrupted),
    }
}

/// Counts attempts and elapsed time for one call, and says whether another attempt may follow.
/// Throttling retries are counted on their own: a delete that waited out twenty
/// `DependencyViolation` answers may still be throttled a few times.
pub struct Attempts {
    started: Instant,
    /// Attempts made so far (drives the backoff).
    pub n: u32,
    /// Attempts that failed for throttling, 5xx or a lost answer.
    failed_transiently: u32,
    max: u32,
    base: Duration,
}

impl Attempts {
    pub fn new(max: u32, base: Duration) -> Self {
        Attempts { started: Instant::now(), n: 1, failed_transiently: 0, max: max.max(1), base }
    }

    /// The delay before the next attempt, or `None` when this failure is final.
    pub fn next(&mut self, next: Next, pacing: &Pacing, phase: Phase) -> Option<Duration> {
        let allowed = match next {
            Next::Fail => false,
            Next::Retry => {
                self.failed_transiently += 1;
                self.failed_transiently < self.max
            }
            Next::Wait => {
                let patience = if phase == Phase::Cleanup { pacing.dependency_patience } else { pacing.consistency_patience };
                self.started.elapsed() < patience
            }
        };
        if !allowed {
            return None;
        }
        let delay = backoff(self.base, self.n, pacing.retry_max_delay);
        self.n += 1;
        Some(delay)
    }
}

/// A backend whose calls follow the policy for `phase` (used for the sweep, whose every call
/// is a read or a delete: both safe to repeat).
pub struct Retrying<'a> {
    pub inner: &'a dyn Backend,
    pub pacing: Pacing,
    pub phase: Phase,
    pub cancel: CancellationToken,
}

#[async_trait::async_trait]
impl Backend for Retrying<'_> {
    fn target(&self) -> &TargetInfo {
        self.inner.target()
    }
    async fn call(&self, op: &'static Operation, params: &Value) -> Result<Value, CallError> {
        let mut attempts = Attempts::new(self.pacing.attempts, self.pacing.retry_base);
        let mut unsure = false;
        loop {
            let err = match self.inner.call(op, params).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            // A removal whose answer was lost, now answered "nothing to remove": it happened.
            if unsure && removes(op) && already_undone(&err) {
                return Ok(Value::Object(serde_json::Map::new()));
            }
            unsure |= err.kind == ErrorKind::Lost;
            let Some(delay) = attempts.next(judge(&err, self.phase), &self.pacing, self.phase) else { return Err(err) };
            if sleep(delay, &self.cancel).await.is_err() {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind, code: &str, message: &str) -> CallError {
        CallError::new(kind, code, message)
    }

    #[test]
    fn each_phase_reads_an_answer_its_own_way() {
        let throttled = err(ErrorKind::Transient, "RequestLimitExceeded", "Request limit exceeded.");
        let lost = err(ErrorKind::Lost, "ResponseLost", "connection closed");
        let not_found = err(ErrorKind::NotFound, "InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist");
        let profile = err(
            ErrorKind::Client,
            "InvalidParameterValue",
            "Value (SSM-Role) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
        );
        let depends = err(ErrorKind::Client, "DependencyViolation", "The vpc 'vpc-1' has dependencies and cannot be deleted.");
        let refused = err(ErrorKind::Client, "InvalidParameterValue", "CIDR block is malformed");
        for phase in [Phase::Build, Phase::Check, Phase::Cleanup] {
            assert_eq!(judge(&throttled, phase), Next::Retry);
            assert_eq!(judge(&lost, phase), Next::Retry);
            assert_eq!(judge(&refused, phase), Next::Fail);
        }
        assert_eq!(judge(&not_found, Phase::Build), Next::Wait);
        assert_eq!(judge(&not_found, Phase::Check), Next::Fail, "in check mode NotFound is the answer");
        assert_eq!(judge(&profile, Phase::Build), Next::Wait);
        assert_eq!(judge(&profile, Phase::Check), Next::Fail);
        assert_eq!(judge(&depends, Phase::Cleanup), Next::Wait);
        assert_eq!(judge(&depends, Phase::Build), Next::Wait, "a teardown chapter deletes while building");
        assert_eq!(judge(&depends, Phase::Check), Next::Fail);
    }

    #[test]
    fn what_counts_as_already_undone() {
        let nf = |code: &str| err(ErrorKind::NotFound, code, "gone");
        assert!(already_undone(&nf("InvalidVpcEndpointId.NotFound")));
        assert!(already_undone(&nf("InvalidRouteTableID.NotFound")), "a route whose table is gone is gone");
        assert!(already_undone(&err(ErrorKind::Client, "InvalidAssociationID.NotFound", "gone")));
        assert!(already_undone(&nf("NoSuchEntity")));
        assert!(already_undone(&err(ErrorKind::Client, "InvalidPermission.Duplicate", "already")));
        assert!(already_undone(&err(ErrorKind::Client, "Gateway.NotAttached", "detached")));
        assert!(!already_undone(&err(ErrorKind::Client, "DependencyViolation", "in use")));
        assert!(!already_undone(&err(ErrorKind::Lost, "ResponseLost", "reset")));
    }

    #[test]
    fn attempts_are_bounded_by_count_or_by_time() {
        let pacing = Pacing { retry_max_delay: Duration::from_millis(1), consistency_patience: Duration::ZERO, ..Pacing::default() };
        let mut a = Attempts::new(3, Duration::from_millis(1));
        assert!(a.next(Next::Retry, &pacing, Phase::Build).is_some());
        assert!(a.next(Next::Retry, &pacing, Phase::Build).is_some());
        assert!(a.next(Next::Retry, &pacing, Phase::Build).is_none(), "three attempts in all");
        let mut w = Attempts::new(3, Duration::from_millis(1));
        assert!(w.next(Next::Wait, &pacing, Phase::Build).is_none(), "no patience left");
        // Waiting for consistency does not use up the throttling retries.
        let patient = Pacing { dependency_patience: Duration::from_secs(60), ..pacing };
        let mut d = Attempts::new(2, Duration::from_millis(1));
        for _ in 0..10 {
            assert!(d.next(Next::Wait, &patient, Phase::Cleanup).is_some());
        }
        assert!(d.next(Next::Retry, &patient, Phase::Cleanup).is_some());
        assert!(d.next(Next::Retry, &patient, Phase::Cleanup).is_none());
        assert!(w.next(Next::Fail, &Pacing::default(), Phase::Build).is_none());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(20);
        let base = Duration::from_millis(500);
        assert!(backoff(base, 1, cap) <= base && backoff(base, 1, cap) >= base / 2);
        assert!(backoff(base, 4, cap) >= Duration::from_secs(2));
        assert!(backoff(base, 30, cap) <= cap);
    }

    #[tokio::test]
    async fn a_cancelled_wait_returns_at_once() {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.cancel();
        });
        let started = std::time::Instant::now();
        assert_eq!(sleep(Duration::from_secs(3600), &cancel).await, Err(Interrupted));
        // An hour-long sleep ended by the cancel, not by its clock.
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
