//! Turns a spanned YAML list into typed steps, reporting every problem with its place.

use crate::catalog::{self, Operation, Param, Ty};
use crate::compiled::{Pattern, Query};
use crate::diag::{Diagnostic, SourceFile};
use crate::limits::{
    self, MAX_FOR_EACH_ITEMS, MAX_INTERVAL, MAX_RETRY_ATTEMPTS, MAX_RETRY_DELAY, MAX_TIMEOUT, MIN_INTERVAL, MIN_RETRY_DELAY,
};
use crate::model::{Assertion, Cleanup, Matcher, Pages, Retry, Step, format_duration, parse_duration};
use crate::vocab::Capability;
use crate::yaml::{Kind, Node};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub const STEP_FIELDS: &[&str] = &[
    "id", "title", "call", "with", "outputs", "expect", "until", "timeout", "interval", "retry", "cleanup", "when", "for_each", "requires",
    "check", "hint", "pages", "wait",
];
pub const CAPABILITIES: &[&str] = crate::vocab::Capability::NAMES;

/// Collects diagnostics for one source file.
pub struct Sink<'a> {
    pub source: &'a Arc<SourceFile>,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl Sink<'_> {
    pub fn error(&mut self, code: &'static str, node_span: crate::yaml::Span, message: String, label: &str) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, message).at(self.source, node_span, label));
        self.diags.last_mut().expect("just pushed")
    }

    fn expect_str<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::Str(s) => Some(s),
            _ => {
                self.error(
                    "labrun::wrong-type",
                    node.span,
                    format!("{what} must be a string, found {}", node.type_name()),
                    "expected a string",
                );
                None
            }
        }
    }

    fn expect_map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            Kind::Map(m) => Some(m),
            _ => {
                self.error(
                    "labrun::wrong-type",
                    node.span,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                    "expected a mapping",
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<std::time::Duration> {
        let text = match &node.kind {
            Kind::Int(i) if *i >= 0 => return Some(std::time::Duration::from_secs(*i as u64)),
            Kind::Str(s) => s.clone(),
            _ => {
                self.error(
                    "labrun::bad-duration",
                    node.span,
                    format!("{what} must be a duration such as `30s` or `10m`"),
                    "not a duration",
                );
                return None;
            }
        };
        let d = parse_duration(&text);
        if d.is_none() {
            self.error("labrun::bad-duration", node.span, format!("`{text}` is not a duration"), "not a duration").help =
                Some("write a number with a unit: `500ms`, `30s`, `10m`, `1h30m`".into());
        }
        d
    }

    /// A duration within `[min, max]`, written in `node`.
    fn bounded_duration(&mut self, node: &Node, what: &str, min: Duration, max: Duration) -> Option<Duration> {
        let d = self.duration(node, &format!("`{what}`"))?;
        if d < min || d > max {
            let written = self.source.text.get(node.span.start..node.span.end).unwrap_or_default().trim();
            let written =
                if written.chars().count() > 40 { format!("{}…", written.chars().take(40).collect::<String>()) } else { written.into() };
            let (message, label) = if d > max {
                (format!("`{what}: {written}` is longer than labrun allows ({})", format_duration(max)), "too long")
            } else {
                (format!("`{what}: {written}` is shorter than labrun allows ({})", format_duration(min)), "too short")
            };
            self.error("labrun::out-of-range", node.span, message, label).help =
                Some(format!("`{what}` takes a duration from {} to {}", format_duration(min), format_duration(max)));
            return None;
        }
        Some(d)
    }

    fn jmespath(&mut self, node: &Node, expr: &str) -> bool {
        match limits::compile_jmespath(expr) {
            Ok(_) => true,
            Err(e) if e.is_limit() => {
                self.error("labrun::jmespath-too-complex", node.span, e.to_string(), "too complex").help =
                    Some("split it into simpler expressions (several `outputs`, or one `expect` per value)".into());
                false
            }
            Err(e) => {
                self.error("labrun::bad-jmespath", node.span, format!("invalid JMESPath expression `{expr}`"), "does not parse").help =
                    Some(e.to_string());
                false
            }
        }
    }
}

/// Reads the steps of one lab block (a YAML list of steps, or a single step mapping).
pub fn read_steps(root: &Node, sink: &mut Sink<'_>, scope: &mut Scope) -> Vec<Step> {
    let items: Vec<&Node> = match &root.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Map(_) => vec![root],
        Kind::Null => Vec::new(),
        _ => {
            sink.error(
                "labrun::wrong-type",
                root.span,
                format!("a lab block is a list of steps, found {}", root.type_name()),
                "expected a list of steps",
            );
            return Vec::new();
        }
    };
    items
        .into_iter()
        .filter_map(|n| {
            let step = read_step(n, sink);
            check_references(n, step.as_ref(), sink, scope);
            step
        })
        .collect()
}

fn read_step(node: &Node, sink: &mut Sink<'_>) -> Option<Step> {
    let entries = sink.expect_map(node, "a step")?;
    let mut ok = true;
    for (key, _) in entries {
        let name = key.key_text();
        if !STEP_FIELDS.contains(&name.as_str()) {
            ok = false;
            let d = sink.error("labrun::unknown-field", key.span, format!("unknown step field `{name}`"), "not a step field");
            d.help = Some(match catalog::did_you_mean(&name, STEP_FIELDS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("step fields are: {}", STEP_FIELDS.join(", ")),
            });
        }
    }
    let location = sink.source.location(node.span.start);
    let id = match node.get("id") {
        Some(n) => sink.expect_str(n, "`id`").map(str::to_string),
        None => {
            sink.error("labrun::missing-field", node.span, "step has no `id`".into(), "this step").help =
                Some("every step needs a unique `id`, used in output and in `steps.<id>` references".into());
            None
        }
    };
    if let (Some(id), Some(n)) = (&id, node.get("id"))
        && (id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        ok = false;
        sink.error("labrun::bad-id", n.span, format!("step id `{id}` may only use letters, digits, `-` and `_`"), "invalid id");
    }
    let (call, op) = match node.get("call") {
        Some(n) => match sink.expect_str(n, "`call`") {
            Some(name) => match catalog::operation(name) {
                Some(op) => (name.to_string(), Some(op)),
                None => {
                    unknown_operation(name, n, sink);
                    (name.to_string(), None)
                }
            },
            None => (String::new(), None),
        },
        None => {
            sink.error("labrun::missing-field", node.span, "step has no `call`".into(), "this step").help =
                Some("name the operation as IAM does, e.g. `call: ec2:DescribeVpcs`".into());
            (String::new(), None)
        }
    };
    let with = match node.get("with") {
        Some(w) => {
            if let Some(op) = op {
                check_params(op, w, sink);
            }
            w.to_json()
        }
        None => Value::Object(Default::default()),
    };
    if let (Some(op), false) = (op, node.get("with").is_some_and(|w| matches!(w.kind, Kind::Map(_))))
        && let Some(p) = op.params.iter().find(|p| p.required)
    {
        sink.error("labrun::missing-parameter", node.span, format!("`{}` needs parameter `{}`", op.name, p.name), "in this step");
    }
    let outputs = node.get("outputs").map(|n| read_outputs(n, sink)).unwrap_or_default();
    let expect = node.get("expect").map(|n| read_assertions(n, sink)).unwrap_or_default();
    let until = node.get("until").map(|n| read_assertions(n, sink)).unwrap_or_default();
    if let Some(op) = op {
        crate::response::check(op, node, sink);
    }
    let timeout = node.get("timeout").and_then(|n| sink.bounded_duration(n, "timeout", Duration::ZERO, MAX_TIMEOUT));
    let interval = node.get("interval").and_then(|n| sink.bounded_duration(n, "interval", MIN_INTERVAL, MAX_INTERVAL));
    if let (Some(t), Some(i), Some(n)) = (timeout, interval, node.get("interval"))
        && i > t
    {
        sink.error(
            "labrun::out-of-range",
            n.span,
            format!("`interval` ({}) is longer than the step's `timeout` ({})", format_duration(i), format_duration(t)),
            "longer than the timeout",
        )
        .help = Some("the condition would be checked once; make the interval shorter or the timeout longer".into());
    }
    let retry = node.get("retry").map(|n| read_retry(n, sink)).unwrap_or_default();
    let pages = node.get("pages").and_then(|n| read_pages(n, op, sink)).unwrap_or_default();
    let wait = node.get("wait").and_then(|n| read_wait(n, op, sink));
    let cleanup = node.get("cleanup").map(|n| read_cleanup(n, op, sink)).unwrap_or(Cleanup::Auto);
    if let Some(op) = op
        && cleanup == Cleanup::Auto
    {
        check_undo_known(op, node, sink);
    }
    let when = node.get("when").and_then(|n| match &n.kind {
        Kind::Str(s) => Some(s.clone()),
        Kind::Bool(b) => Some(b.to_string()),
        _ => sink.expect_str(n, "`when`").map(str::to_string),
    });
    let for_each = node.get("for_each").and_then(|n| match &n.kind {
        Kind::Seq(items) if items.len() > MAX_FOR_EACH_ITEMS => {
            sink.error(
                "labrun::out-of-range",
                n.span,
                format!("`for_each` lists {} items; labrun runs a step for at most {MAX_FOR_EACH_ITEMS}", items.len()),
                "too many items",
            )
            .help = Some("split the list over several steps".into());
            None
        }
        Kind::Seq(_) | Kind::Str(_) => Some(n.to_json()),
        _ => {
            sink.error(
                "labrun::wrong-type",
                n.span,
                format!("`for_each` must be a list or a template, found {}", n.type_name()),
                "expected a list",
            );
            None
        }
    });
    let requires = node.get("requires").map(|n| read_requires(n, sink)).unwrap_or_default();
    let check = node.get("check").and_then(|n| match n.kind {
        Kind::Bool(b) => Some(b),
        _ => {
            sink.error(
                "labrun::wrong-type",
                n.span,
                format!("`check` must be true or false, found {}", n.type_name()),
                "expected a boolean",
            );
            None
        }
    });
    if let (Some(true), Some(op), Some(n)) = (check, op, node.get("check"))
        && !op.read_only
    {
        sink.error(
            "labrun::check-mutates",
            n.span,
            format!("`{}` changes resources, so it cannot run in check mode", op.name),
            "check mode never mutates",
        );
    }
    let title = node.get("title").and_then(|n| sink.expect_str(n, "`title`")).map(str::to_string);
    let hint = node.get("hint").and_then(|n| sink.expect_str(n, "`hint`")).map(str::to_string);
    if (node.get("until").is_some()) && !op.is_none_or(|o| o.read_only) {
        // Polling a mutating call would repeat the change.
        if let Some(n) = node.get("until") {
            sink.error(
                "labrun::until-mutates",
                n.span,
                "`until` polls the call, so it must be a read-only operation".into(),
                "on a mutating call",
            );
        }
    }
    if !ok {
        return None;
    }
    let uses = uses_of(&with, for_each.as_ref());
    Some(Step {
        id: id?,
        title,
        call,
        op: op?,
        uses,
        with,
        outputs,
        expect,
        until,
        timeout,
        interval,
        pages,
        wait,
        retry,
        cleanup,
        when,
        for_each,
        requires,
        check,
        hint,
        location,
        span: node.span,
    })
}

fn unknown_operation(name: &str, node: &Node, sink: &mut Sink<'_>) {
    let (message, label, help) = match name.split_once(':') {
        None => (
            format!("unknown operation `{name}`"),
            "not in the action catalog",
            "write the operation as `service:Action`, e.g. `ec2:DescribeVpcs`".to_string(),
        ),
        Some((service, _)) if !crate::derive::known_service(service) => {
            let mut services: Vec<&str> = labrun_models::services().collect();
            services.push("labrun");
            let help = match catalog::did_you_mean(service, services.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("labrun knows these services: {}", services.join(", ")),
            };
            (format!("unknown service `{service}` in `{name}`"), "no such service", help)
        }
        Some((service, _)) => {
            let names = crate::derive::operation_names(service);
            let help = match catalog::did_you_mean(name, names.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("`labrun schema {service}` lists its operations"),
            };
            (format!("unknown operation `{name}`"), "not in the action catalog", help)
        }
    };
    sink.error("labrun::unknown-operation", node.span, message, label).help = Some(help);
}

/// A change labrun cannot undo by itself needs the author to say what `down` does.
fn check_undo_known(op: &Operation, step: &Node, sink: &mut Sink<'_>) {
    if op.read_only || op.nothing_to_undo || !matches!(op.undo, catalog::Undo::None) {
        return;
    }
    let at = step.get("call").map_or(step.span, |n| n.span);
    sink.error("labrun::no-undo", at, format!("`{}` changes resources, and labrun knows no way to undo it", op.name), "no known undo")
        .help = Some(format!(
        "say what `labrun down` should do: `cleanup: none` if nothing needs undoing, or `cleanup: {{call: {}:Action, with: {{...}}}}` with the call that reverses it",
        op.service()
    ));
}

/// Checks parameters against the catalog shape. Strings holding a template (`{{ … }}`) may
/// stand for any type: they are checked when rendered.
fn check_params(op: &Operation, with: &Node, sink: &mut Sink<'_>) {
    let Some(entries) = sink.expect_map(with, "`with`") else { return };
    check_struct(op.params, entries, with, &format!("`{}`", op.name), sink);
}

fn check_struct(params: &[Param], entries: &[(Node, Node)], whole: &Node, owner: &str, sink: &mut Sink<'_>) {
    for (key, value) in entries {
        let name = key.key_text();
        match params.iter().find(|p| p.name == name) {
            Some(param) => check_value(&param.ty, value, &format!("`{name}`"), sink),
            None => {
                let help = match catalog::did_you_mean(&name, params.iter().map(|p| p.name)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if params.is_empty() => format!("{owner} takes no parameters"),
                    None if params.len() > 12 => format!(
                        "{owner} takes: {}, … ({} more; `labrun schema` lists them)",
                        params[..12].iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
                        params.len() - 12
                    ),
                    None => format!("{owner} takes: {}", params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")),
                };
                sink.error("labrun::unknown-parameter", key.span, format!("{owner} has no parameter `{name}`"), "unknown parameter").help =
                    Some(help);
            }
        }
    }
    for p in params.iter().filter(|p| p.required) {
        if !entries.iter().any(|(k, _)| k.as_str() == Some(p.name)) {
            sink.error("labrun::missing-parameter", whole.span, format!("{owner} needs parameter `{}`", p.name), "missing here");
        }
    }
}

fn is_template(node: &Node) -> bool {
    matches!(&node.kind, Kind::Str(s) if s.contains("{{") || s.contains("{%"))
}

fn check_value(ty: &Ty, node: &Node, what: &str, sink: &mut Sink<'_>) {
    if is_template(node) {
        return;
    }
    let ok = match (ty, &node.kind) {
        (Ty::Str, Kind::Str(_)) | (Ty::Bool, Kind::Bool(_)) | (Ty::Int, Kind::Int(_)) => true,
        (Ty::Doc, Kind::Str(_) | Kind::Map(_)) => true,
        (Ty::Blob, Kind::Str(s)) => {
            use base64::Engine as _;
            if base64::engine::general_purpose::STANDARD.decode(s.trim()).is_err() {
                sink.error(
                    "labrun::not-base64",
                    node.span,
                    format!("{what} is a blob, given base64-encoded as the AWS CLI takes it"),
                    "not base64",
                )
                .help = Some("encode it in a template: `\"{{ '...' | b64encode }}\"`".into());
            }
            true
        }
        (Ty::Float, Kind::Int(_) | Kind::Float(_)) | (Ty::Any, _) => true,
        (Ty::Timestamp, Kind::Str(_) | Kind::Int(_) | Kind::Float(_)) => true,
        (Ty::Map(key, value), Kind::Map(entries)) => {
            for (k, v) in entries {
                if matches!(key, Ty::Enum(_)) {
                    check_value(key, k, &format!("a key of {what}"), sink);
                }
                check_value(value, v, &format!("`{}`", k.key_text()), sink);
            }
            true
        }
        (Ty::Enum(values), Kind::Str(s)) => {
            if !values.contains(&s.as_str()) {
                let help = match catalog::did_you_mean(s, values.iter().copied()) {
                    Some(v) => format!("did you mean `{v}`?"),
                    None => format!("one of: {}", values.join(", ")),
                };
                sink.error("labrun::bad-value", node.span, format!("`{s}` is not a valid value for {what}"), "not allowed here").help =
                    Some(help);
            }
            true
        }
        (Ty::StrListMap, Kind::Map(entries)) => {
            for (_, v) in entries {
                check_value(&Ty::List(&Ty::Str), v, what, sink);
            }
            true
        }
        (Ty::List(inner), Kind::Seq(items)) => {
            for item in items {
                check_value(inner, item, what, sink);
            }
            true
        }
        (Ty::Struct(fields), Kind::Map(entries)) => {
            check_struct(fields, entries, node, what, sink);
            true
        }
        _ => false,
    };
    if !ok {
        let want = match ty {
            Ty::Str | Ty::Enum(_) => "a string",
            Ty::Bool => "a boolean",
            Ty::Int => "an integer",
            Ty::Float => "a number",
            Ty::Timestamp => "a date and time (ISO 8601, or seconds since 1970)",
            Ty::Blob => "a base64 string",
            Ty::Map(..) => "a mapping",
            Ty::Any => "anything",
            Ty::Doc => "a mapping or a JSON string",
            Ty::StrListMap => "a mapping of lists",
            Ty::List(_) => "a list",
            Ty::Struct(_) => "a mapping",
        };
        sink.error(
            "labrun::wrong-type",
            node.span,
            format!("{what} must be {want}, found {}", node.type_name()),
            &format!("expected {want}"),
        );
    }
}

fn read_outputs(node: &Node, sink: &mut Sink<'_>) -> Vec<(String, Query)> {
    let Some(entries) = sink.expect_map(node, "`outputs`") else { return Vec::new() };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = k.key_text();
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
            sink.error("labrun::bad-id", k.span, format!("output name `{name}` may only use letters, digits and `_`"), "invalid name");
            continue;
        }
        if let Some(expr) = sink.expect_str(v, "an output")
            && sink.jmespath(v, expr)
        {
            out.push((name, Query::new(expr)));
        }
    }
    out
}

fn read_assertions(node: &Node, sink: &mut Sink<'_>) -> Vec<Assertion> {
    let Some(entries) = sink.expect_map(node, "`expect`") else { return Vec::new() };
    let mut out = Vec::new();
    for (k, v) in entries {
        let path = k.key_text();
        if !sink.jmespath(k, &path) {
            continue;
        }
        if let Some(matcher) = read_matcher(v, sink) {
            out.push(Assertion {
                path: Query::new(&path),
                matcher,
                location: sink.source.location(k.span.start),
                source: Some(crate::diag::SourceRef { file: sink.source.clone(), span: k.span }),
            });
        }
    }
    out
}

fn read_matcher(node: &Node, sink: &mut Sink<'_>) -> Option<Matcher> {
    // A one-key mapping whose key is a matcher name is a matcher; anything else is a value to equal.
    let entries = match &node.kind {
        Kind::Map(entries) if entries.len() == 1 && entries[0].0.as_str().is_some_and(|k| Matcher::NAMES.contains(&k)) => entries,
        Kind::Map(entries) if entries.len() == 1 => {
            let k = entries[0].0.key_text();
            if let Some(s) = catalog::did_you_mean(&k, Matcher::NAMES.iter().copied()) {
                sink.error("labrun::unknown-matcher", entries[0].0.span, format!("unknown matcher `{k}`"), "not a matcher").help =
                    Some(format!("did you mean `{s}`? (to compare with a mapping, write `{{equals: {{...}}}}`)"));
                return None;
            }
            return Some(Matcher::Equals(node.to_json()));
        }
        _ => return Some(Matcher::Equals(node.to_json())),
    };
    let (key, value) = &entries[0];
    let v = value.to_json();
    Some(match key.as_str()? {
        "equals" => Matcher::Equals(v),
        "not_equals" => Matcher::NotEquals(v),
        "contains" => Matcher::Contains(v),
        "not_contains" => Matcher::NotContains(v),
        "matches" => {
            let s = sink.expect_str(value, "`matches`")?;
            // A template inside is checked once rendered.
            if let Err(e) = regex_check(s).or_else(|e| if s.contains("{{") { Ok(()) } else { Err(e) }) {
                sink.error("labrun::bad-regex", value.span, format!("invalid regular expression `{s}`"), "does not compile").help = Some(e);
                return None;
            }
            Matcher::Matches(Pattern::new(s))
        }
        "length" => match value.kind {
            Kind::Int(n) if n >= 0 => Matcher::Length(n as u64),
            _ => {
                sink.error("labrun::wrong-type", value.span, "`length` takes a whole number".into(), "expected a number");
                return None;
            }
        },
        "all_equal" => Matcher::AllEqual(v),
        "exists" => match value.kind {
            Kind::Bool(b) => Matcher::Exists(b),
            _ => {
                sink.error("labrun::wrong-type", value.span, "`exists` takes true or false".into(), "expected a boolean");
                return None;
            }
        },
        "any_of" => match v {
            Value::Array(items) => Matcher::AnyOf(items),
            _ => {
                sink.error("labrun::wrong-type", value.span, "`any_of` takes a list of accepted values".into(), "expected a list");
                return None;
            }
        },
        "greater_than" => match v.as_f64() {
            Some(n) => Matcher::GreaterThan(n),
            None => {
                sink.error("labrun::wrong-type", value.span, "`greater_than` takes a number".into(), "expected a number");
                return None;
            }
        },
        _ => unreachable!("filtered by Matcher::NAMES"),
    })
}

/// Regexes are checked with the same engine the executor uses.
fn regex_check(s: &str) -> Result<(), String> {
    regex_lite::Regex::new(s).map(|_| ()).map_err(|e| e.to_string())
}

fn read_retry(node: &Node, sink: &mut Sink<'_>) -> Retry {
    let mut retry = Retry::default();
    let Some(entries) = sink.expect_map(node, "`retry`") else { return retry };
    for (k, v) in entries {
        match k.key_text().as_str() {
            "attempts" => match v.kind {
                Kind::Int(n) if (1..=MAX_RETRY_ATTEMPTS).contains(&n) => retry.attempts = n as u32,
                Kind::Int(n) => {
                    sink.error(
                        "labrun::out-of-range",
                        v.span,
                        format!("`attempts: {n}` is outside what labrun allows (1 to {MAX_RETRY_ATTEMPTS})"),
                        "out of range",
                    );
                }
                _ => {
                    sink.error(
                        "labrun::wrong-type",
                        v.span,
                        format!("`attempts` takes a whole number from 1 to {MAX_RETRY_ATTEMPTS}"),
                        "expected a number",
                    );
                }
            },
            "delay" => {
                if let Some(d) = sink.bounded_duration(v, "delay", MIN_RETRY_DELAY, MAX_RETRY_DELAY) {
                    retry.delay = d;
                }
            }
            "on" => match &v.kind {
                Kind::Seq(items) => {
                    retry.on = items.iter().filter_map(|i| sink.expect_str(i, "an error code").map(str::to_string)).collect()
                }
                _ => {
                    sink.error("labrun::wrong-type", v.span, "`on` takes a list of error codes".into(), "expected a list");
                }
            },
            other => {
                sink.error("labrun::unknown-field", k.span, format!("unknown retry field `{other}`"), "not a retry field").help =
                    Some("retry fields are: attempts, delay, on".into());
            }
        }
    }
    retry
}

/// `pages: all | first`, on a read whose service model has a paginator for it.
fn read_pages(node: &Node, op: Option<&Operation>, sink: &mut Sink<'_>) -> Option<Pages> {
    let text = sink.expect_str(node, "`pages`")?;
    let pages = match text {
        "all" => Pages::All,
        "first" => Pages::First,
        other => {
            sink.error("labrun::bad-value", node.span, format!("unknown `pages: {other}`"), "not `all` or `first`").help =
                Some("`pages: all` (the default) follows every page; `pages: first` makes one request".into());
            return None;
        }
    };
    if let Some(op) = op
        && crate::modelled::paginator(op).is_none()
    {
        let why = if !op.read_only {
            "it changes resources; only reads are paged".to_string()
        } else if crate::modelled::service(op).is_none() {
            "labrun has no service model for it".to_string()
        } else {
            "its service model has no paginator for it".to_string()
        };
        sink.error("labrun::not-paginated", node.span, format!("`{}` answers in one page: {why}", op.name), "nothing to page").help =
            Some("remove `pages:`; it applies to reads AWS answers in pages, such as `ec2:DescribeInstances`".into());
        return None;
    }
    Some(pages)
}

/// `wait: WaiterName`: a waiter of the call's service model that polls this very operation.
fn read_wait(node: &Node, op: Option<&Operation>, sink: &mut Sink<'_>) -> Option<String> {
    let name = sink.expect_str(node, "`wait`")?.to_string();
    let op = op?;
    let Some(service) = crate::modelled::service(op) else {
        sink.error(
            "labrun::unknown-waiter",
            node.span,
            format!("`{}` has no waiters: labrun has no service model for it", op.name),
            "no waiters",
        )
        .help = Some("use `until:` with the condition to wait for".into());
        return None;
    };
    let mine = crate::modelled::waiters_polling(&service, op.action());
    let theirs = |list: &[&str]| {
        if list.is_empty() {
            format!("no waiter polls `{}`", op.name)
        } else {
            format!("the waiters that poll `{}` are: {}", op.name, list.join(", "))
        }
    };
    let Some(definition) = service.waiters.get(&name) else {
        let help = match catalog::did_you_mean(&name, service.waiters.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => theirs(&mine),
        };
        sink.error(
            "labrun::unknown-waiter",
            node.span,
            format!("`{}` has no waiter `{name}`", op.service()),
            "not a waiter of this service",
        )
        .help = Some(help);
        return None;
    };
    let polls = crate::modelled::waiter_operation(definition).unwrap_or_default();
    if polls != op.action() {
        let help = match catalog::did_you_mean(&name, mine.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? Or call `{}:{polls}` in this step", op.service()),
            None => format!("call `{}:{polls}` in this step with `wait: {name}`; {}", op.service(), theirs(&mine)),
        };
        sink.error(
            "labrun::wrong-waiter",
            node.span,
            format!("waiter `{name}` polls `{}:{polls}`, not `{}`", op.service(), op.name),
            "polls another operation",
        )
        .help = Some(help);
        return None;
    }
    Some(name)
}

fn read_cleanup(node: &Node, op: Option<&Operation>, sink: &mut Sink<'_>) -> Cleanup {
    match &node.kind {
        Kind::Str(s) => match s.as_str() {
            "auto" => Cleanup::Auto,
            "none" => Cleanup::None,
            "restore" => {
                if let Some(op) = op
                    && !matches!(op.undo, catalog::Undo::Restore { .. })
                {
                    sink.error(
                        "labrun::bad-value",
                        node.span,
                        format!("`{}` has no previous value to restore", op.name),
                        "use `auto` or `none`",
                    );
                }
                Cleanup::Restore
            }
            other => {
                sink.error("labrun::bad-value", node.span, format!("unknown cleanup `{other}`"), "not a cleanup mode").help =
                    Some("use `auto`, `restore`, `none`, or `{call: ..., with: ...}`".into());
                Cleanup::Auto
            }
        },
        Kind::Map(_) => {
            let call = node.get("call").and_then(|c| sink.expect_str(c, "cleanup `call`")).unwrap_or_default().to_string();
            match catalog::operation(&call) {
                Some(cop) => {
                    if let Some(w) = node.get("with") {
                        check_params(cop, w, sink);
                    }
                }
                None => {
                    if let Some(c) = node.get("call") {
                        unknown_operation(&call, c, sink);
                    }
                }
            }
            Cleanup::Call { call, with: node.get("with").map(Node::to_json).unwrap_or(Value::Object(Default::default())) }
        }
        _ => {
            sink.error(
                "labrun::wrong-type",
                node.span,
                format!("`cleanup` must be a string or a mapping, found {}", node.type_name()),
                "expected auto, restore, none or a call",
            );
            Cleanup::Auto
        }
    }
}

fn read_requires(node: &Node, sink: &mut Sink<'_>) -> Vec<Capability> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Str(_) => vec![node],
        _ => {
            sink.error("labrun::wrong-type", node.span, "`requires` takes a list of capabilities".into(), "expected a list");
            return Vec::new();
        }
    };
    items
        .into_iter()
        .filter_map(|i| {
            let s = sink.expect_str(i, "a capability")?;
            let Some(c) = Capability::parse(s) else {
                sink.error("labrun::unknown-capability", i.span, format!("unknown capability `{s}`"), "not known").help =
                    Some(format!("known capabilities: {}", CAPABILITIES.join(", ")));
                return None;
            };
            Some(c)
        })
        .collect()
}

/// What templates in a chapter may refer to, built up step by step in document order.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    pub vars: HashSet<String>,
    /// Step id → its output names, for steps seen so far.
    pub steps: HashMap<String, (Vec<String>, crate::yaml::Span)>,
}

pub const LAB_FIELDS: &[&str] = crate::vocab::lab_field::ALL;

/// One environment for all template checks: it holds no per-step state.
fn template_env() -> &'static minijinja::Environment<'static> {
    static ENV: std::sync::LazyLock<minijinja::Environment<'static>> = std::sync::LazyLock::new(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env
    });
    &ENV
}

/// Checks templates (syntax, variables, step references), then records the step in scope.
fn check_references(node: &Node, step: Option<&Step>, sink: &mut Sink<'_>, scope: &mut Scope) {
    let env = template_env();
    let in_loop = node.get("for_each").is_some();
    let id = node.get("id").and_then(Node::as_str);
    for field in ["with", "expect", "until", "cleanup", "for_each"] {
        if let Some(n) = node.get(field) {
            // `for_each` itself cannot use `item`.
            walk_templates(n, env, sink, scope, in_loop && field != "for_each", false);
        }
    }
    if let Some(n) = node.get("when") {
        walk_templates(n, env, sink, scope, in_loop, true);
    }
    if let Some(id) = id {
        if let Some((_, first)) = scope.steps.get(id) {
            let first = *first;
            sink.error(
                "labrun::duplicate-id",
                node.get("id").map_or(node.span, |n| n.span),
                format!("step id `{id}` is used twice in this chapter"),
                "second use",
            )
            .related = Some((first, "first used here".into()));
        } else {
            let outputs = step.map(|s| s.outputs.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
            scope.steps.insert(id.to_string(), (outputs, node.get("id").map_or(node.span, |n| n.span)));
        }
    }
}

fn walk_templates(node: &Node, env: &minijinja::Environment<'static>, sink: &mut Sink<'_>, scope: &Scope, in_loop: bool, expression: bool) {
    match &node.kind {
        Kind::Str(s) if expression => check_template(s, node, env, sink, scope, in_loop, true),
        Kind::Str(s) if s.contains("{{") || s.contains("{%") => check_template(s, node, env, sink, scope, in_loop, false),
        Kind::Seq(items) => items.iter().for_each(|i| walk_templates(i, env, sink, scope, in_loop, false)),
        Kind::Map(entries) => entries.iter().for_each(|(_, v)| walk_templates(v, env, sink, scope, in_loop, false)),
        _ => {}
    }
}

fn check_template(
    text: &str,
    node: &Node,
    env: &minijinja::Environment<'static>,
    sink: &mut Sink<'_>,
    scope: &Scope,
    in_loop: bool,
    expression: bool,
) {
    let names: HashSet<String> = if expression {
        let expr = text.trim().trim_start_matches("{{").trim_end_matches("}}");
        match env.compile_expression(expr) {
            Ok(e) => e.undeclared_variables(true),
            Err(e) => {
                sink.error(
                    "labrun::template-syntax",
                    node.span,
                    format!("template does not parse: {}", e.detail().unwrap_or("syntax error")),
                    "in this expression",
                );
                return;
            }
        }
    } else {
        match env.template_from_str(text) {
            Ok(t) => t.undeclared_variables(true),
            Err(e) => {
                sink.error(
                    "labrun::template-syntax",
                    node.span,
                    format!("template does not parse: {}", e.detail().unwrap_or("syntax error")),
                    "in this template",
                );
                return;
            }
        }
    };
    for name in &names {
        let (root, field) = name.split_once('.').map_or((name.as_str(), None), |(r, f)| (r, Some(f)));
        let field_head = field.map(|f| f.split('.').next().unwrap_or(f));
        match root {
            "steps" => {}
            "item" if in_loop => {}
            "item" => {
                sink.error(
                    "labrun::undefined-variable",
                    node.span,
                    "`item` is only defined in a step with `for_each`".into(),
                    "no loop here",
                );
            }
            "vars" => {
                if let Some(v) = field_head
                    && !scope.vars.contains(v)
                {
                    let help = match crate::catalog::did_you_mean(v, scope.vars.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `vars.{s}`?"),
                        None => "declare it under `vars:` in the chapter's front matter or in workshop.yaml".into(),
                    };
                    sink.error("labrun::undefined-variable", node.span, format!("undefined variable `vars.{v}`"), "used here").help =
                        Some(help);
                }
            }
            "lab" => {
                if let Some(f) = field_head
                    && !LAB_FIELDS.contains(&f)
                {
                    sink.error("labrun::undefined-variable", node.span, format!("`lab.{f}` does not exist"), "used here").help =
                        Some(format!("lab fields are: {}", LAB_FIELDS.join(", ")));
                }
            }
            other => {
                let help = match crate::catalog::did_you_mean(other, ["vars", "steps", "lab", "item"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "templates may use `vars`, `steps`, `lab`, and `item` inside `for_each`".into(),
                };
                sink.error("labrun::undefined-variable", node.span, format!("undefined variable `{other}`"), "used here").help = Some(help);
            }
        }
    }
    for (id, output) in step_references(text) {
        match scope.steps.get(&id) {
            None => {
                sink.error("labrun::bad-reference", node.span, format!("no earlier step `{id}` in this chapter"), "referenced here").help =
                    Some("a step may only use outputs of steps above it in the same chapter".into());
            }
            Some((outputs, _)) => {
                if let Some(o) = output
                    && !outputs.contains(&o)
                {
                    let help = if outputs.is_empty() {
                        format!("step `{id}` declares no `outputs`")
                    } else {
                        format!("step `{id}` declares: {}", outputs.join(", "))
                    };
                    sink.error("labrun::bad-reference", node.span, format!("step `{id}` has no output `{o}`"), "referenced here").help =
                        Some(help);
                }
            }
        }
    }
}

/// `steps.vpc.id`, `steps['lab-vpc'].vpc_id`, `steps["x"]["y"]` → (step id, output name).
/// The steps whose outputs a step's parameters or `for_each` use, found once at load.
fn uses_of(with: &Value, for_each: Option<&Value>) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                for (id, _) in step_references(s) {
                    if !out.contains(&id) {
                        out.push(id);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(with, &mut out);
    if let Some(f) = for_each {
        walk(f, &mut out);
    }
    out
}

pub fn step_references(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("steps") {
        let before_ok = i == 0 || !rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        rest = &rest[i + 5..];
        if !before_ok {
            continue;
        }
        let Some((id, after)) = accessor(rest) else { continue };
        let output = accessor(after).map(|(o, _)| o);
        out.push((id, output));
        rest = after;
    }
    out
}

fn accessor(text: &str) -> Option<(String, &str)> {
    if let Some(r) = text.strip_prefix('.') {
        let end = r.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(r.len());
        (end > 0).then(|| (r[..end].to_string(), &r[end..]))
    } else if let Some(r) = text.strip_prefix('[') {
        let q = r.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let body = &r[1..];
        let close = body.find(q)?;
        let after = body[close + 1..].strip_prefix(']')?;
        Some((body[..close].to_string(), after))
    } else {
        None
    }
}
