//! The lab model: what a workshop, a chapter and a step are once loaded and checked.

use crate::catalog::Operation;
use crate::diag::Location;
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Workshop {
    pub root: PathBuf,
    /// Identifier used in the `labrun:workshop` tag and the ledger.
    pub id: String,
    pub title: Option<String>,
    /// Region used when neither `--region` nor `AWS_REGION` says otherwise.
    pub region: String,
    pub vars: Map<String, Value>,
    /// Account ids that `--target aws` may touch.
    pub accounts: Vec<String>,
    /// Chapters in reading order (depth first, siblings by weight then number).
    pub chapters: Vec<Chapter>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chapter {
    /// `3.2.1`; `None` for the workshop's home page.
    pub number: Option<String>,
    pub dir: PathBuf,
    pub title: String,
    pub title_vi: Option<String>,
    pub weight: i64,
    /// Chapters (by number) that must be in place before this one runs.
    pub requires: Vec<String>,
    pub vars: Map<String, Value>,
    pub steps: Vec<Step>,
    /// Index of the parent chapter in `Workshop::chapters`.
    pub parent: Option<usize>,
    pub depth: usize,
    /// Removes what other chapters built: `run` does not build its prerequisites first, and
    /// `test` expects the account as it was before them.
    pub teardown: bool,
    /// `requires` as written, resolved against the whole tree once it is loaded.
    #[serde(skip)]
    pub(crate) requires_src: Vec<(String, crate::yaml::Span, std::sync::Arc<crate::diag::SourceFile>)>,
}

impl Chapter {
    /// `3.2.1`, or `(home)` for the root page.
    pub fn label(&self) -> &str {
        self.number.as_deref().unwrap_or("(home)")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub title: Option<String>,
    /// `ec2:CreateVpc`
    pub call: String,
    #[serde(skip)]
    pub op: &'static Operation,
    /// Parameters, possibly holding templates; rendered at run time.
    pub with: Value,
    /// Output name → JMESPath over the response.
    pub outputs: Vec<(String, crate::compiled::Query)>,
    /// The steps whose outputs `with` and `for_each` use (found at load).
    pub uses: Vec<String>,
    pub expect: Vec<Assertion>,
    pub until: Vec<Assertion>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub interval: Option<Duration>,
    /// Whether a read follows its model's paginator (`all`, the default) or takes one page.
    pub pages: Pages,
    /// A waiter of the call's service model (`VpcAvailable`) that polls this step's operation:
    /// the step polls until one of its acceptors says success or failure.
    pub wait: Option<String>,
    pub retry: Retry,
    pub cleanup: Cleanup,
    /// A template that must render truthy for the step to run.
    pub when: Option<String>,
    /// A list (or a template rendering to one); the step runs once per `item`.
    pub for_each: Option<Value>,
    /// Capabilities the step needs, e.g. `real-aws`.
    pub requires: Vec<crate::vocab::Capability>,
    /// Overrides whether the step runs under `labrun check`.
    pub check: Option<bool>,
    pub hint: Option<String>,
    pub location: Location,
    #[serde(skip)]
    pub span: crate::yaml::Span,
}

impl Step {
    /// Whether `labrun check` runs this step: read-only calls by default, never a mutating one.
    pub fn runs_in_check(&self) -> bool {
        self.op.read_only && self.check.unwrap_or(true)
    }
    /// Needs a real AWS account (declared, or implied by an operation no emulator implements).
    pub fn needs_real_aws(&self) -> bool {
        self.op.real_aws_only || self.requires.contains(&crate::vocab::Capability::RealAws)
    }
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// `90s` → 1m30s style text.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// Parses `500ms`, `30s`, `10m`, `1h30m`, or a bare number of seconds. A value too large to
/// represent saturates at `Duration::MAX` (validation then reports it as out of range).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(text.parse::<u64>().map_or(Duration::MAX, Duration::from_secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: Option<u64> = rest[..digits].parse().ok();
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let secs = |per: u64| n.and_then(|n| n.checked_mul(per)).map_or(Duration::MAX, Duration::from_secs);
        let part = match &rest[..unit] {
            "ms" => n.map_or(Duration::MAX, Duration::from_millis),
            "s" => secs(1),
            "m" => secs(60),
            "h" => secs(3600),
            _ => return None,
        };
        total = total.saturating_add(part);
        rest = &rest[unit..];
    }
    Some(total)
}

#[derive(Debug, Clone, Serialize)]
pub struct Assertion {
    /// JMESPath over the response, compiled.
    pub path: crate::compiled::Query,
    pub matcher: Matcher,
    pub location: Location,
    /// The key in its file, for drawing a failure at run time.
    #[serde(skip)]
    pub source: Option<crate::diag::SourceRef>,
}

/// What the value at an assertion's path must look like. Expected values may hold templates.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Matcher {
    Equals(Value),
    NotEquals(Value),
    /// A list holding an element that matches (objects match on the keys given), or a substring.
    Contains(Value),
    /// A list none of whose elements match.
    NotContains(Value),
    /// Regular expression on a string.
    Matches(crate::compiled::Pattern),
    Length(u64),
    /// Every element of a list equals the value (and the list is not empty).
    AllEqual(Value),
    /// The value is (or is not) present and non-null.
    Exists(bool),
    /// Equal to one of these (accepts either published version of a workshop).
    AnyOf(Vec<Value>),
    GreaterThan(f64),
}

impl Matcher {
    pub const NAMES: &'static [&'static str] =
        &["equals", "not_equals", "contains", "not_contains", "matches", "length", "all_equal", "exists", "any_of", "greater_than"];
}

/// `pages:` of a read whose operation the service model can paginate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pages {
    /// Follow every page and merge them (what a learner's `aws` CLI command shows).
    #[default]
    All,
    /// One request, one page (the response keeps its next-page token).
    First,
}

impl Pages {
    pub const NAMES: &'static [&'static str] = &["all", "first"];
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    #[serde(serialize_with = "ser_duration")]
    pub delay: Duration,
    /// Extra error codes to treat as transient, beyond the built-in ones.
    pub on: Vec<String>,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 5, delay: Duration::from_millis(500), on: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// The catalog's inverse (delete what was created, or restore what was changed).
    Auto,
    /// Put the previous value back (for modify-type calls; same as auto where the catalog restores).
    Restore,
    None,
    Call {
        call: String,
        with: Value,
    },
}
