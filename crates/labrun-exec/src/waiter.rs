//! Waiters from the service models (botocore's `waiters-2`): how often to poll an operation, for
//! how long, and which answers mean success, failure or "not yet".
//!
//! Acceptors are tried in order and the first that matches decides:
//! - `path`: the JMESPath `argument` over the response equals `expected`;
//! - `pathAll`: it is a non-empty list whose every element equals `expected` (an empty list
//!   does not match: no instance is not "every instance running");
//! - `pathAny`: it is a non-empty list with some element equal to `expected`;
//! - `error`: the call failed with the error code `expected` (`true`: with any error; `false`:
//!   the call succeeded);
//! - `status`: the HTTP status. The engine sees errors, not statuses, so this is approximated:
//!   2xx matches a successful call, 404 an error of kind `NotFound`, 403 `AccessDenied` or
//!   `Forbidden`, 301 `PermanentRedirect`, and any status an error whose code is that number
//!   (what SDKs report for a bodiless HEAD answer).
//!
//! No acceptor matching a response means "not yet"; no acceptor matching an error is a failure
//! (botocore: "unexpected error"). Path matchers never match an error.

use crate::backend::{CallError, ErrorKind};
use labrun_lab::catalog::Operation;
use labrun_lab::model::Matcher;
use serde_json::Value;
use std::time::Duration;

/// One waiter, parsed and checked.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub name: String,
    /// The operation it polls, as the model names it (`DescribeInstances`).
    pub operation: String,
    /// Between polls.
    pub delay: Duration,
    pub max_attempts: u32,
    pub acceptors: Vec<Acceptor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Acceptor {
    pub test: Test,
    pub state: State,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Path {
        argument: String,
        expected: Value,
    },
    PathAll {
        argument: String,
        expected: Value,
    },
    PathAny {
        argument: String,
        expected: Value,
    },
    /// An HTTP status (see the module's note on how it is approximated).
    Status(u16),
    /// The call failed with this error code.
    Error(String),
    /// `error: true`: the call failed, whatever the code.
    AnyError,
    /// `error: false`: the call succeeded.
    NoError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Success,
    Failure,
    Retry,
}

/// What one poll says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Stop waiting: the thing will not get there (the reason, for the learner).
    Failure(String),
    /// Not yet (what was seen).
    Retry(String),
}

impl Waiter {
    /// Parses a `waiters-2` entry. Anything it does not understand is an error, never a guess.
    pub fn parse(name: &str, definition: &Value) -> Result<Waiter, String> {
        let bad = |why: String| format!("waiter `{name}`: {why}");
        let operation = definition.get("operation").and_then(Value::as_str).ok_or_else(|| bad("no `operation`".into()))?;
        let delay = definition.get("delay").and_then(Value::as_f64).filter(|d| d.is_finite() && *d >= 0.0);
        let delay = delay.ok_or_else(|| bad("no `delay` in seconds".into()))?;
        let max_attempts = definition.get("maxAttempts").and_then(Value::as_u64).filter(|n| *n >= 1);
        let max_attempts = max_attempts.ok_or_else(|| bad("no `maxAttempts` of at least 1".into()))?;
        let list = definition.get("acceptors").and_then(Value::as_array).ok_or_else(|| bad("no `acceptors`".into()))?;
        let mut acceptors = Vec::with_capacity(list.len());
        for (i, a) in list.iter().enumerate() {
            acceptors.push(Acceptor::parse(a).map_err(|e| bad(format!("acceptor {}: {e}", i + 1)))?);
        }
        if acceptors.is_empty() {
            return Err(bad("no acceptors".into()));
        }
        Ok(Waiter {
            name: name.to_string(),
            operation: operation.to_string(),
            delay: Duration::from_secs_f64(delay.min(labrun_lab::limits::MAX_INTERVAL.as_secs_f64())),
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            acceptors,
        })
    }

    /// How long the model lets it wait: `delay` × `maxAttempts`, within labrun's bounds.
    pub fn timeout(&self) -> Duration {
        self.delay.saturating_mul(self.max_attempts).min(labrun_lab::limits::MAX_TIMEOUT)
    }

    /// The first acceptor that matches this poll's answer.
    pub fn first_match(&self, poll: Result<&Value, &CallError>) -> Option<&Acceptor> {
        self.acceptors.iter().find(|a| a.test.matches(poll))
    }

    /// What this poll's answer means.
    pub fn judge(&self, poll: Result<&Value, &CallError>) -> Verdict {
        match self.first_match(poll) {
            Some(a) => match a.state {
                State::Success => Verdict::Success,
                State::Failure => Verdict::Failure(a.test.describe(poll)),
                State::Retry => Verdict::Retry(a.test.describe(poll)),
            },
            None => match poll {
                Err(e) => Verdict::Failure(format!("unexpected error {}: {}", e.code, e.message)),
                Ok(response) => Verdict::Retry(self.seen(response)),
            },
        }
    }

    /// What the success acceptors look at, as found in a response that matched none.
    fn seen(&self, response: &Value) -> String {
        let mut shown: Vec<String> = Vec::new();
        for a in self.acceptors.iter().filter(|a| a.state == State::Success) {
            if let Test::Path { argument, .. } | Test::PathAll { argument, .. } | Test::PathAny { argument, .. } = &a.test {
                let line = format!("`{argument}` is {}", crate::assert::short(&search(argument, response)));
                if !shown.contains(&line) {
                    shown.push(line);
                }
            }
        }
        if shown.is_empty() { "no acceptor matched the answer".into() } else { shown.join("; ") }
    }
}

impl Acceptor {
    fn parse(a: &Value) -> Result<Acceptor, String> {
        let state = match a.get("state").and_then(Value::as_str) {
            Some("success") => State::Success,
            Some("failure") => State::Failure,
            Some("retry") => State::Retry,
            other => return Err(format!("unknown state {}", other.map_or("(none)".into(), |s| format!("`{s}`")))),
        };
        let expected = a.get("expected").cloned().ok_or("no `expected`")?;
        let argument = || -> Result<String, String> {
            let arg = a.get("argument").and_then(Value::as_str).ok_or("a path matcher needs an `argument`")?;
            labrun_lab::limits::compile_jmespath(arg).map_err(|e| format!("argument `{arg}`: {e}"))?;
            Ok(arg.to_string())
        };
        let test = match a.get("matcher").and_then(Value::as_str) {
            Some("path") => Test::Path { argument: argument()?, expected },
            Some("pathAll") => Test::PathAll { argument: argument()?, expected },
            Some("pathAny") => Test::PathAny { argument: argument()?, expected },
            Some("status") => {
                Test::Status(expected.as_u64().and_then(|s| u16::try_from(s).ok()).ok_or("`status` expects an HTTP status number")?)
            }
            Some("error") => match expected {
                Value::String(code) => Test::Error(code),
                Value::Bool(true) => Test::AnyError,
                Value::Bool(false) => Test::NoError,
                _ => return Err("`error` expects an error code, true or false".into()),
            },
            Some(other) => return Err(format!("unknown matcher `{other}`")),
            None => return Err("no `matcher`".into()),
        };
        Ok(Acceptor { test, state })
    }
}

/// JMESPath over a response; an expression that fails on this data finds nothing.
fn search(expr: &str, response: &Value) -> Value {
    crate::assert::search(expr, response).unwrap_or(Value::Null)
}

fn equal(a: &Value, b: &Value) -> bool {
    crate::assert::matches(&Matcher::Equals(b.clone()), a)
}

impl Test {
    pub fn matches(&self, poll: Result<&Value, &CallError>) -> bool {
        match (self, poll) {
            (Test::Path { argument, expected }, Ok(r)) => equal(&search(argument, r), expected),
            (Test::PathAll { argument, expected }, Ok(r)) => {
                search(argument, r).as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|x| equal(x, expected)))
            }
            (Test::PathAny { argument, expected }, Ok(r)) => {
                search(argument, r).as_array().is_some_and(|l| l.iter().any(|x| equal(x, expected)))
            }
            (Test::Path { .. } | Test::PathAll { .. } | Test::PathAny { .. }, Err(_)) => false,
            (Test::Status(s), Ok(_)) => (200..300).contains(s),
            (Test::Status(s), Err(e)) => status_of(e, *s),
            (Test::Error(code), Err(e)) => &e.code == code,
            (Test::AnyError, Err(_)) | (Test::NoError, Ok(_)) => true,
            (Test::Error(_) | Test::AnyError, Ok(_)) | (Test::NoError, Err(_)) => false,
        }
    }

    /// The matched condition, worded for a learner.
    fn describe(&self, poll: Result<&Value, &CallError>) -> String {
        let j = crate::assert::short;
        match (self, poll) {
            (Test::Path { argument, expected }, _) => format!("`{argument}` is {}", j(expected)),
            (Test::PathAll { argument, expected }, _) => format!("every `{argument}` is {}", j(expected)),
            (Test::PathAny { argument, expected }, _) => format!("some `{argument}` is {}", j(expected)),
            (_, Err(e)) => format!("{}: {}", e.code, e.message),
            (Test::Status(s), Ok(_)) => format!("the call answered (HTTP {s})"),
            (_, Ok(_)) => "the call answered".into(),
        }
    }
}

/// Whether an error stands for this HTTP status (see the module's note).
fn status_of(e: &CallError, status: u16) -> bool {
    e.code == status.to_string()
        || match status {
            404 => e.kind == ErrorKind::NotFound,
            403 => matches!(e.code.as_str(), "AccessDenied" | "Forbidden"),
            301 => matches!(e.code.as_str(), "PermanentRedirect" | "MovedPermanently"),
            _ => false,
        }
}

/// The waiter `name` of `op`'s service model, checked to poll `op` (validation checks this
/// too; the engine does not trust a step built some other way).
pub fn for_operation(op: &Operation, name: &str) -> Result<Waiter, String> {
    let service = labrun_lab::modelled::service(op).ok_or_else(|| format!("`{}` has no service model, so no waiters", op.name))?;
    let definition = service.waiters.get(name).ok_or_else(|| format!("`{}` has no waiter `{name}`", op.service()))?;
    let w = Waiter::parse(name, definition)?;
    if w.operation != op.action() {
        return Err(format!("waiter `{name}` polls `{}:{}`, not `{}`", op.service(), w.operation, op.name));
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn waiter(service: &str, name: &str) -> Waiter {
        Waiter::parse(name, &labrun_models::load(service).unwrap().waiters[name]).unwrap()
    }

    fn err(kind: ErrorKind, code: &str) -> CallError {
        CallError::new(kind, code, "said the service")
    }

    fn instances(states: &[&str]) -> Value {
        json!({"Reservations": [{"Instances": states.iter().map(|s| json!({"State": {"Name": s}})).collect::<Vec<_>>()}]})
    }

    #[test]
    fn ec2_instance_running() {
        let w = waiter("ec2", "InstanceRunning");
        assert_eq!((w.operation.as_str(), w.delay, w.max_attempts), ("DescribeInstances", Duration::from_secs(15), 40));
        assert_eq!(w.timeout(), Duration::from_secs(600));
        assert_eq!(w.judge(Ok(&instances(&["running", "running"]))), Verdict::Success);
        assert_eq!(
            w.judge(Ok(&instances(&["running", "pending"]))),
            Verdict::Retry(r#"`Reservations[].Instances[].State.Name` is ["running","pending"]"#.into())
        );
        assert_eq!(
            w.judge(Ok(&instances(&["pending", "terminated"]))),
            Verdict::Failure(r#"some `Reservations[].Instances[].State.Name` is "terminated""#.into())
        );
        // pathAll over no instances is not success: nothing to say yet.
        assert!(matches!(w.judge(Ok(&json!({"Reservations": []}))), Verdict::Retry(_)));
        // Its `error` acceptor: the new instance is not visible yet.
        let nf = err(ErrorKind::NotFound, "InvalidInstanceID.NotFound");
        assert_eq!(w.judge(Err(&nf)), Verdict::Retry("InvalidInstanceID.NotFound: said the service".into()));
        // An error no acceptor names ends the wait.
        let denied = err(ErrorKind::Client, "UnauthorizedOperation");
        assert_eq!(w.judge(Err(&denied)), Verdict::Failure("unexpected error UnauthorizedOperation: said the service".into()));
    }

    #[test]
    fn dynamodb_table_exists_and_not_exists() {
        let w = waiter("dynamodb", "TableExists");
        assert_eq!(w.judge(Ok(&json!({"Table": {"TableStatus": "ACTIVE"}}))), Verdict::Success);
        assert!(matches!(w.judge(Ok(&json!({"Table": {"TableStatus": "CREATING"}}))), Verdict::Retry(_)));
        let gone = err(ErrorKind::NotFound, "ResourceNotFoundException");
        assert!(matches!(w.judge(Err(&gone)), Verdict::Retry(_)));
        let w = waiter("dynamodb", "TableNotExists");
        assert_eq!(w.judge(Err(&gone)), Verdict::Success);
        assert!(matches!(w.judge(Ok(&json!({"Table": {"TableStatus": "DELETING"}}))), Verdict::Retry(_)));
    }

    #[test]
    fn lambda_function_active_and_exists() {
        let w = waiter("lambda", "FunctionActiveV2");
        assert_eq!(w.timeout(), Duration::from_secs(300));
        assert_eq!(w.judge(Ok(&json!({"Configuration": {"State": "Active"}}))), Verdict::Success);
        assert_eq!(
            w.judge(Ok(&json!({"Configuration": {"State": "Failed"}}))),
            Verdict::Failure(r#"`Configuration.State` is "Failed""#.into())
        );
        assert_eq!(
            w.judge(Ok(&json!({"Configuration": {"State": "Pending"}}))),
            Verdict::Retry(r#"`Configuration.State` is "Pending""#.into())
        );
        // `error: false`: any answer at all is success.
        let w = waiter("lambda", "FunctionExists");
        assert_eq!(w.judge(Ok(&json!({}))), Verdict::Success);
        assert!(matches!(w.judge(Err(&err(ErrorKind::NotFound, "ResourceNotFoundException"))), Verdict::Retry(_)));
    }

    #[test]
    fn status_matchers_are_read_from_errors() {
        let exists = waiter("s3", "BucketExists");
        assert_eq!(exists.judge(Ok(&json!({}))), Verdict::Success);
        let nf = err(ErrorKind::NotFound, "NotFound");
        assert!(matches!(exists.judge(Err(&nf)), Verdict::Retry(_)));
        assert_eq!(exists.judge(Err(&err(ErrorKind::Client, "403"))), Verdict::Success, "403: it exists, someone else's");
        let not_exists = waiter("s3", "BucketNotExists");
        assert_eq!(not_exists.judge(Err(&nf)), Verdict::Success);
        assert!(matches!(not_exists.judge(Ok(&json!({}))), Verdict::Retry(_)));
        let profile = waiter("iam", "InstanceProfileExists");
        assert!(matches!(profile.judge(Err(&err(ErrorKind::NotFound, "NoSuchEntity"))), Verdict::Retry(_)));
        assert_eq!(profile.judge(Ok(&json!({"InstanceProfile": {}}))), Verdict::Success);
    }

    #[test]
    fn path_any_matches_one_element_and_path_all_needs_them_all() {
        let w = Waiter::parse(
            "T",
            &json!({"operation": "X", "delay": 1, "maxAttempts": 2, "acceptors": [
                {"matcher": "pathAll", "argument": "a[]", "expected": 1, "state": "success"},
                {"matcher": "pathAny", "argument": "a[]", "expected": 3, "state": "failure"},
            ]}),
        )
        .unwrap();
        assert_eq!(w.judge(Ok(&json!({"a": [1, 1.0]}))), Verdict::Success, "numbers compare by value");
        assert!(matches!(w.judge(Ok(&json!({"a": [1, 2]}))), Verdict::Retry(_)));
        assert!(matches!(w.judge(Ok(&json!({"a": [2, 3]}))), Verdict::Failure(_)));
        assert!(matches!(w.judge(Ok(&json!({"a": []}))), Verdict::Retry(_)));
        assert!(matches!(w.judge(Ok(&json!({"a": "1"}))), Verdict::Retry(_)), "not a list");
    }

    #[test]
    fn what_is_not_understood_is_refused() {
        let with = |acceptor: Value| Waiter::parse("W", &json!({"operation": "X", "delay": 5, "maxAttempts": 3, "acceptors": [acceptor]}));
        let e = with(json!({"matcher": "pathSome", "argument": "a", "expected": 1, "state": "success"})).unwrap_err();
        assert_eq!(e, "waiter `W`: acceptor 1: unknown matcher `pathSome`");
        assert!(
            with(json!({"matcher": "path", "argument": "a", "expected": 1, "state": "done"})).unwrap_err().contains("unknown state `done`")
        );
        assert!(with(json!({"matcher": "path", "expected": 1, "state": "success"})).unwrap_err().contains("needs an `argument`"));
        assert!(
            with(json!({"matcher": "path", "argument": "a[", "expected": 1, "state": "success"})).unwrap_err().contains("argument `a[`")
        );
        assert!(with(json!({"matcher": "status", "expected": "ok", "state": "success"})).is_err());
        assert!(Waiter::parse("W", &json!({"operation": "X", "delay": 5, "maxAttempts": 0, "acceptors": []})).is_err());
        assert!(Waiter::parse("W", &json!({"delay": 5, "maxAttempts": 1, "acceptors": []})).unwrap_err().contains("no `operation`"));
    }

    #[test]
    fn every_waiter_in_the_models_parses() {
        let mut n = 0;
        for s in labrun_models::services() {
            for (name, definition) in &labrun_models::load(s).unwrap().waiters {
                Waiter::parse(name, definition).unwrap_or_else(|e| panic!("{s}: {e}"));
                n += 1;
            }
        }
        assert!(n > 100, "{n} waiters");
    }

    #[test]
    fn a_waiter_must_poll_the_steps_operation() {
        let op = labrun_lab::catalog::operation("ec2:DescribeInstances").unwrap();
        assert_eq!(for_operation(op, "InstanceRunning").unwrap().name, "InstanceRunning");
        let e = for_operation(op, "VpcAvailable").unwrap_err();
        assert_eq!(e, "waiter `VpcAvailable` polls `ec2:DescribeVpcs`, not `ec2:DescribeInstances`");
        assert!(for_operation(op, "Nope").is_err());
    }
}
