//! Evaluates `expect`/`until` assertions and `outputs` against a response with JMESPath.

use labrun_lab::{Assertion, Matcher};
use serde_json::Value;

/// A failed assertion, worded for a person: what was looked at, wanted and found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Mismatch {
    pub path: String,
    pub expected: String,
    pub actual: Value,
    /// `file:line:col` of the `expect`/`until` key that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<labrun_lab::Location>,
    /// The key in its source, for a snippet with a caret.
    #[serde(skip)]
    pub source: Option<labrun_lab::diag::SourceRef>,
    /// What the actual value means, one line each, when the operation explains it (the
    /// reachability check's failing conditions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Mismatch {
    pub fn new(path: impl Into<String>, expected: impl Into<String>, actual: Value) -> Self {
        Mismatch { path: path.into(), expected: expected.into(), actual, location: None, source: None, details: Vec::new() }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {}, found {}", self.path, self.expected, short(&self.actual))
    }
}

/// JSON text cut to a readable length.
pub fn short(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    if s.chars().count() > 300 { format!("{}…", s.chars().take(300).collect::<String>()) } else { s }
}

/// Evaluates a JMESPath expression (validated at load time, and checked against labrun's
/// limits again here: expressions also come from the catalog and from callers).
pub fn search(expr: &str, data: &Value) -> Result<Value, String> {
    let compiled = labrun_lab::limits::compile_jmespath(expr).map_err(|e| e.to_string())?;
    let var = jmespath::Variable::from_serializable(data).map_err(|e| e.to_string())?;
    let result = compiled.search(var).map_err(|e| e.to_string())?;
    serde_json::to_value(&*result).map_err(|e| e.to_string())
}

/// Checks one assertion; `expected` values have already been rendered.
pub fn check(assertion: &Assertion, matcher: &Matcher, response: &Value) -> Result<Option<Mismatch>, String> {
    let actual = assertion.path.search(response)?;
    let ok = matches(matcher, &actual);
    Ok((!ok).then(|| Mismatch {
        location: Some(assertion.location.clone()),
        source: assertion.source.clone(),
        ..Mismatch::new(assertion.path.to_string(), describe(matcher), actual)
    }))
}

pub fn matches(matcher: &Matcher, actual: &Value) -> bool {
    match matcher {
        Matcher::Equals(v) => loosely_equal(actual, v),
        Matcher::NotEquals(v) => !loosely_equal(actual, v),
        Matcher::Contains(v) => contains(actual, v),
        Matcher::NotContains(v) => !actual.is_null() && !contains(actual, v),
        Matcher::Matches(re) => actual.as_str().is_some_and(|s| re.is_match(s)),
        Matcher::Length(n) => length(actual) == Some(*n as usize),
        Matcher::AllEqual(v) => actual.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|x| loosely_equal(x, v))),
        Matcher::Exists(want) => actual.is_null() != *want,
        Matcher::AnyOf(options) => options.iter().any(|o| loosely_equal(actual, o)),
        Matcher::GreaterThan(n) => actual.as_f64().or_else(|| length(actual).map(|l| l as f64)).is_some_and(|a| a > *n),
    }
}

fn length(v: &Value) -> Option<usize> {
    match v {
        Value::Array(a) => Some(a.len()),
        Value::String(s) => Some(s.chars().count()),
        Value::Object(m) => Some(m.len()),
        _ => None,
    }
}

/// Numbers compare by value (1 == 1.0); everything else structurally.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| loosely_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| loosely_equal(v, w))),
        _ => a == b,
    }
}

/// `expected` is a subset of `actual`: objects match on the keys expected gives.
fn subset(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|x| subset(x, v))),
        (Value::Array(a), Value::Array(e)) => e.iter().all(|ev| a.iter().any(|av| subset(av, ev))),
        _ => loosely_equal(actual, expected),
    }
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Array(items), _) => items.iter().any(|i| subset(i, expected)),
        (Value::String(s), Value::String(e)) => s.contains(e.as_str()),
        (Value::Object(_), Value::Object(_)) => subset(actual, expected),
        _ => false,
    }
}

pub fn describe(m: &Matcher) -> String {
    let j = |v: &Value| short(v);
    match m {
        Matcher::Equals(v) => j(v),
        Matcher::NotEquals(v) => format!("anything but {}", j(v)),
        Matcher::Contains(v) => format!("something containing {}", j(v)),
        Matcher::NotContains(v) => format!("nothing matching {}", j(v)),
        Matcher::Matches(r) => format!("text matching /{}/", r.as_str()),
        Matcher::Length(n) => format!("{n} item(s)"),
        Matcher::AllEqual(v) => format!("every item equal to {}", j(v)),
        Matcher::Exists(true) => "a value".into(),
        Matcher::Exists(false) => "nothing".into(),
        Matcher::AnyOf(o) => format!("one of {}", o.iter().map(j).collect::<Vec<_>>().join(", ")),
        Matcher::GreaterThan(n) => format!("more than {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contains_matches_partial_objects() {
        let perms = json!([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.10.0.0/16"}]}]);
        assert!(contains(&perms, &json!({"FromPort": 443, "IpRanges": [{"CidrIp": "10.10.0.0/16"}]})));
        assert!(!contains(&perms, &json!({"FromPort": 22})));
    }

    #[test]
    fn matchers() {
        assert!(matches(&Matcher::Length(2), &json!([1, 2])));
        assert!(!matches(&Matcher::Length(2), &json!(null)));
        assert!(matches(&Matcher::AllEqual(json!("available")), &json!(["available", "available"])));
        assert!(!matches(&Matcher::AllEqual(json!("available")), &json!([])));
        assert!(matches(&Matcher::AnyOf(vec![json!(1), json!(2)]), &json!(2.0)));
        assert!(matches(&Matcher::Exists(false), &json!(null)));
        assert!(matches(&Matcher::Matches(labrun_lab::compiled::Pattern::new("^vpc-")), &json!("vpc-123")));
        assert!(matches(&Matcher::GreaterThan(0.0), &json!([1])));
    }

    use labrun_lab::limits::fuzz::{Rng, on_small_stack};

    /// Expressions as deep as the limit allows, built from each construct the `jmespath`
    /// crate recurses on.
    fn at_depth(n: usize) -> Vec<String> {
        vec![
            format!("{}a{}", "(".repeat(n), ")".repeat(n)),
            format!("{}a{}", "[".repeat(n), "]".repeat(n)),
            format!("{}a{}", "{a:".repeat(n), "}".repeat(n)),
            format!("{}a", "!".repeat(n)),
            format!("a{}", "[]".repeat(n / 2)),
            vec!["a"; n + 1].join("."),
            vec!["a"; n + 1].join(" | "),
            vec!["a"; n + 1].join(" || "),
            vec!["a"; n + 1].join(" && "),
            vec!["a"; n + 1].join(" == "),
            format!("{}a{}", "length(".repeat(n), ")".repeat(n)),
            format!("{}a{}", "a[?".repeat(n / 2), "]".repeat(n / 2)),
        ]
    }

    #[test]
    fn deep_expressions_fail_cleanly_at_run_time_on_a_small_stack() {
        use labrun_lab::limits::JMESPATH_MAX_DEPTH;
        let data = json!({"a": {"a": [1, {"a": true}]}});
        // Allowed: evaluates (to whatever) without overflowing a 2 MiB stack.
        for expr in at_depth(JMESPATH_MAX_DEPTH) {
            let d = data.clone();
            let shown = expr.clone();
            let r = on_small_stack(move || search(&expr, &d));
            assert!(r.as_ref().err().is_none_or(|e| !e.contains("labrun allows")), "{}…: {r:?}", &shown[..20]);
        }
        // Far past it: a step error naming the limit, before the crate's parser runs.
        for expr in at_depth(1000) {
            let d = data.clone();
            let shown = format!("{}…", &expr[..10]);
            let e = on_small_stack(move || search(&expr, &d)).unwrap_err();
            assert!(e.contains("labrun allows at most"), "{shown}: {e}");
        }
    }

    /// Generated expressions (valid and not, deep and long, with literals and odd unicode)
    /// always end with a value or an error on a small stack.
    #[test]
    fn generated_expressions_always_end() {
        on_small_stack(|| {
            let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
            let mut next = move |n: usize| rng.below(n);
            const PIECES: &[&str] = &[
                "a",
                "Vpcs",
                "@",
                ".",
                "|",
                "||",
                "&&",
                "!",
                "&",
                "(",
                ")",
                "[",
                "]",
                "{a:",
                "}",
                "[?",
                "==",
                "[]",
                "[*]",
                ",",
                ":",
                "'r(['",
                "\"q[\"",
                "`[[1]]`",
                "`",
                "length(",
                "sort_by(",
                "-1",
                "99999999999999",
                "ạ🚀",
                " ",
            ];
            let data = json!({"a": {"a": [1, {"a": true}]}, "Vpcs": [{"VpcId": "vpc-1"}]});
            let mut outcomes = [0usize; 2];
            for case in 0..3000 {
                let mut e = String::new();
                for _ in 0..1 + next(20) {
                    e.push_str(&PIECES[next(PIECES.len())].repeat(if next(15) == 0 { 1 + next(2000) } else { 1 }));
                }
                let one = std::time::Instant::now();
                outcomes[usize::from(search(&e, &data).is_ok())] += 1;
                assert!(one.elapsed() < std::time::Duration::from_secs(1), "case {case}: {e}");
            }
            assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
        });
    }

    #[test]
    fn search_works_on_aws_shapes() {
        let r = json!({"Vpcs": [{"VpcId": "vpc-1", "Tags": [{"Key": "Name", "Value": "Lab VPC"}]}]});
        assert_eq!(search("length(Vpcs)", &r).unwrap(), json!(1));
        assert_eq!(search("Vpcs[0].Tags[?Key=='Name'].Value | [0]", &r).unwrap(), json!("Lab VPC"));
    }
}
