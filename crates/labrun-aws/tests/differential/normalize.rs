//! Normalising one side's transcript so that two runs in two accounts can be compared, and the
//! comparison itself.
//!
//! Nothing is blanked wholesale. What differs between two runs for no fault of the client is
//! replaced, by rule:
//! - the side's own literals (account id, run token, proxy address) by a fixed name;
//! - generated ids (UUIDs, `vpc-0a1b…`-style ids, IAM unique ids, the random suffix of a
//!   Secrets Manager ARN, and the values of a few keys known to hold opaque tokens) by a
//!   placeholder numbered in order of first appearance on that side: `<vpc#1>`, `<uuid#3>`.
//!   The same id keeps its number wherever it appears, so a response that names the wrong VPC,
//!   or a new id where an old one belongs, still differs;
//! - timestamps by `<TIMESTAMP>` keeping their form (`Z`, `+0000`, none), epoch numbers (and
//!   all-digit strings) in 2017..2039 by `<EPOCH_S>` / `<EPOCH_MS>`.
//!
//! Objects are walked in sorted key order, so the numbering does not depend on key order.

use regex_lite::{Captures, Regex};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Keys whose string values are opaque tokens a run generates: `(service or "*", key)`.
const VOLATILE_KEYS: &[(&str, &str)] = &[
    ("*", "NextToken"),
    ("*", "nextToken"),
    ("sqs", "ReceiptHandle"),
    ("kms", "CiphertextBlob"),
    ("kms", "CurrentKeyMaterialId"),
    ("kms", "KeyMaterialId"),
    ("logs", "nextForwardToken"),
    ("logs", "nextBackwardToken"),
    ("logs", "nextSequenceToken"),
    ("logs", "uploadSequenceToken"),
    ("apigateway", "id"),
    ("apigateway", "parentId"),
    ("apigateway", "rootResourceId"),
    ("apigateway", "restApiId"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Request,
    Response,
}

struct Patterns {
    timestamp: Regex,
    uuid: Regex,
    iam_id: Regex,
    ec2_id: Regex,
    secret_suffix: Regex,
    /// The signature parts of a presigned URL's query (Lambda's code location).
    presigned: Regex,
    expires: Regex,
    digits: Regex,
}

impl Patterns {
    fn new() -> Self {
        let re = |s: &str| Regex::new(s).unwrap_or_else(|e| panic!("pattern {s}: {e}"));
        Patterns {
            timestamp: re(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(Z|[+-]\d{2}:\d{2}|[+-]\d{4})?"),
            uuid: re(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
            iam_id: re(r"\b(AROA|AIDA|AGPA|ANPA|ANVA|AIPA|APKA|ASCA|ASIA|AKIA)[A-Z0-9]{12,}\b"),
            ec2_id: re(r"\b([a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*)-([0-9a-f]{17}|[0-9a-f]{8})\b"),
            secret_suffix: re(r"(:secret:[A-Za-z0-9/_+=.@<>#-]+)-([A-Za-z0-9]{6})\b"),
            presigned: re(r"\b(Signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Date|X-Amz-Security-Token)=([^&\s\x22]+)"),
            expires: re(r"\b(Expires|X-Amz-Expires)=\d{10}\b"),
            digits: re(r"^\d+(?:\.\d+)?$"),
        }
    }
}

/// One side's normaliser; feed it that side's requests and responses in the order they happened.
pub struct Normalizer {
    literals: Vec<(String, String)>,
    /// Raw generated value → placeholder.
    tokens: HashMap<String, String>,
    /// Values registered by key, longest first (they are replaced wherever they occur).
    keyed: Vec<(String, String)>,
    counters: HashMap<String, usize>,
    re: std::sync::Arc<Patterns>,
    /// The current call's own volatile keys.
    extra: Vec<String>,
}

fn epoch(x: f64) -> Option<&'static str> {
    if (1.5e9..2.2e9).contains(&x) {
        Some("<EPOCH_S>")
    } else if (1.5e12..2.2e12).contains(&x) {
        Some("<EPOCH_MS>")
    } else {
        None
    }
}

impl Normalizer {
    /// `literals`: this side's own values and their names, e.g. `("123456789012", "<ACCOUNT>")`.
    pub fn new(literals: &[(&str, &str)]) -> Self {
        let mut literals: Vec<(String, String)> =
            literals.iter().filter(|(raw, _)| !raw.is_empty()).map(|(a, b)| (a.to_string(), b.to_string())).collect();
        literals.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));
        Normalizer {
            literals,
            tokens: HashMap::new(),
            keyed: Vec::new(),
            counters: HashMap::new(),
            re: std::sync::Arc::new(Patterns::new()),
            extra: Vec::new(),
        }
    }

    pub fn normalize(&mut self, service: &str, origin: Origin, v: &Value) -> Value {
        self.normalize_with(service, &[], origin, v)
    }

    /// `extra`: keys whose values this one call generates, beyond [`VOLATILE_KEYS`].
    pub fn normalize_with(&mut self, service: &str, extra: &[String], origin: Origin, v: &Value) -> Value {
        self.extra = extra.to_vec();
        self.register_keyed(service, origin, v);
        let out = self.rewrite(service, origin, v, None);
        self.extra.clear();
        out
    }

    fn volatile(&self, service: &str, key: &str) -> bool {
        self.extra.iter().any(|k| k == key) || VOLATILE_KEYS.iter().any(|(svc, k)| (*svc == "*" || *svc == service) && *k == key)
    }

    fn placeholder(&mut self, class: &str, origin: Origin, raw: &str) -> String {
        if let Some(p) = self.tokens.get(raw) {
            return p.clone();
        }
        let class = match origin {
            Origin::Request => format!("req:{class}"),
            Origin::Response => class.to_string(),
        };
        let n = self.counters.entry(class.clone()).or_default();
        *n += 1;
        let p = format!("<{class}#{n}>");
        self.tokens.insert(raw.to_string(), p.clone());
        p
    }

    fn register_keyed(&mut self, service: &str, origin: Origin, v: &Value) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for k in keys {
                    let child = &map[k];
                    if let Value::String(s) = child
                        && !s.is_empty()
                        && self.volatile(service, k)
                        && !self.tokens.contains_key(s)
                    {
                        let p = self.placeholder(k, origin, s);
                        // Long enough to be replaced inside other strings too (a short one,
                        // like "1", only where it stands as the value of its key).
                        if s.len() >= 8 {
                            self.keyed.push((s.clone(), p));
                            self.keyed.sort_by_key(|(raw, _)| std::cmp::Reverse(raw.len()));
                        }
                    }
                    self.register_keyed(service, origin, child);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.register_keyed(service, origin, i)),
            _ => {}
        }
    }

    fn rewrite(&mut self, service: &str, origin: Origin, v: &Value, key: Option<&str>) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    let value = self.rewrite(service, origin, &map[k], Some(k));
                    out.insert(self.string(origin, k), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|i| self.rewrite(service, origin, i, key)).collect()),
            Value::String(s) if key.is_some_and(|k| self.volatile(service, k)) && self.tokens.contains_key(s) => {
                Value::String(self.tokens[s].clone())
            }
            Value::String(s) => Value::String(self.string(origin, s)),
            Value::Number(n) => match n.as_f64().and_then(epoch) {
                Some(p) => Value::String(p.into()),
                None => v.clone(),
            },
            _ => v.clone(),
        }
    }

    /// One string, every rule applied.
    pub fn string(&mut self, origin: Origin, s: &str) -> String {
        if self.re.digits.is_match(s)
            && let Some(p) = s.parse::<f64>().ok().and_then(epoch)
        {
            // Apart from epoch numbers: a number where a string belongs still differs.
            return format!("{p} in a string");
        }
        let mut s = s.to_string();
        for (raw, p) in &self.keyed {
            if s.contains(raw.as_str()) {
                s = s.replace(raw.as_str(), p);
            }
        }
        for (raw, name) in &self.literals {
            if s.contains(raw.as_str()) {
                s = s.replace(raw.as_str(), name);
            }
        }
        let re = self.re.clone();
        let s = re
            .timestamp
            .replace_all(&s, |c: &Captures| match c.get(1).map(|m| m.as_str()) {
                Some("Z") => "<TIMESTAMP>".to_string(),
                None => "<TIMESTAMP no zone>".to_string(),
                Some(z) if z.contains(':') => "<TIMESTAMP+hh:mm>".to_string(),
                Some(_) => "<TIMESTAMP+hhmm>".to_string(),
            })
            .into_owned();
        let s = re.uuid.replace_all(&s, |c: &Captures| self.placeholder("uuid", origin, &c[0])).into_owned();
        let s = re.iam_id.replace_all(&s, |c: &Captures| self.placeholder(&c[1], origin, &c[0])).into_owned();
        let s = re.ec2_id.replace_all(&s, |c: &Captures| self.placeholder(&c[1], origin, &c[0])).into_owned();
        let s = re
            .secret_suffix
            .replace_all(&s, |c: &Captures| format!("{}-{}", &c[1], self.placeholder("secret-suffix", origin, &c[2])))
            .into_owned();
        let s = re.presigned.replace_all(&s, |c: &Captures| format!("{}={}", &c[1], self.placeholder(&c[1], origin, &c[2]))).into_owned();
        re.expires.replace_all(&s, "$1=<EPOCH_S>").into_owned()
    }
}

/// One difference between two normalised values.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// `Vpc.CidrBlock`, `Items[1].sk.N`
    pub path: String,
    pub left: Option<Value>,
    pub right: Option<Value>,
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| match v {
            Some(v) => {
                let s = v.to_string();
                if s.len() > 300 { format!("{}…", &s[..s.char_indices().nth(300).map(|(i, _)| i).unwrap_or(s.len())]) } else { s }
            }
            None => "(absent)".into(),
        };
        write!(f, "{}: {} | {}", if self.path.is_empty() { "(root)" } else { &self.path }, show(&self.left), show(&self.right))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Every difference between `a` and `b`; numbers are equal when their values are.
pub fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<Diff>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => diff(va, vb, &join(path, k), out),
                    None => out.push(Diff { path: join(path, k), left: Some(va.clone()), right: None }),
                }
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                out.push(Diff { path: join(path, k), left: None, right: Some(vb.clone()) });
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => diff(va, vb, &p, out),
                    (va, vb) => out.push(Diff { path: p, left: va.cloned(), right: vb.cloned() }),
                }
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => out.push(Diff { path: path.to_string(), left: Some(a.clone()), right: Some(b.clone()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A run's CreateVpc, DescribeVpcs and DescribeSubnets with the given ids and account.
    fn run(account: &str, vpc: &str, subnet: &str, created: &str, cidr: &str) -> Vec<Value> {
        vec![
            json!({"Vpc": {"VpcId": vpc, "OwnerId": account, "CidrBlock": cidr, "State": "pending",
                   "CidrBlockAssociationSet": [{"AssociationId": format!("vpc-cidr-assoc-{}", &vpc[4..]), "CidrBlock": cidr}]}}),
            json!({"Subnet": {"SubnetId": subnet, "VpcId": vpc, "SubnetArn": format!("arn:aws:ec2:us-east-1:{account}:subnet/{subnet}")}}),
            json!({"Vpcs": [{"VpcId": vpc, "OwnerId": account}], "Created": created, "Epoch": 1_795_000_000}),
        ]
    }

    fn normalized(account: &str, responses: &[Value]) -> Vec<Value> {
        let mut n = Normalizer::new(&[(account, "<ACCOUNT>")]);
        responses.iter().map(|r| n.normalize("ec2", Origin::Response, r)).collect()
    }

    fn diffs(a: &[Value], b: &[Value]) -> Vec<Diff> {
        let mut out = Vec::new();
        for (x, y) in a.iter().zip(b) {
            diff(x, y, "", &mut out);
        }
        out
    }

    const A: (&str, &str, &str) = ("111122223333", "vpc-0123456789abcdef0", "subnet-0aaaabbbbccccdddd");
    const B: (&str, &str, &str) = ("444455556666", "vpc-0fedcba9876543210", "subnet-0eeeeffff00001111");

    #[test]
    fn two_runs_with_different_ids_accounts_and_dates_are_equal() {
        let a = normalized(A.0, &run(A.0, A.1, A.2, "2026-11-25T01:02:03.456Z", "10.0.0.0/16"));
        let b = normalized(B.0, &run(B.0, B.1, B.2, "2026-11-25T09:08:07Z", "10.0.0.0/16"));
        assert_eq!(diffs(&a, &b), vec![]);
        assert_eq!(a[0]["Vpc"]["VpcId"], json!("<vpc#1>"));
        assert_eq!(a[1]["Subnet"]["SubnetArn"], json!("arn:aws:ec2:us-east-1:<ACCOUNT>:subnet/<subnet#1>"));
    }

    #[test]
    fn a_changed_value_is_a_difference_at_its_path() {
        let a = normalized(A.0, &run(A.0, A.1, A.2, "2026-11-25T01:02:03Z", "10.0.0.0/16"));
        let b = normalized(B.0, &run(B.0, B.1, B.2, "2026-11-25T01:02:03Z", "10.9.0.0/16"));
        let d = diffs(&a, &b);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["Vpc.CidrBlock", "Vpc.CidrBlockAssociationSet[0].CidrBlock"]);
        assert_eq!(d[0].to_string(), r#"Vpc.CidrBlock: "10.0.0.0/16" | "10.9.0.0/16""#);
    }

    #[test]
    fn a_response_naming_the_wrong_id_differs() {
        let a = normalized(A.0, &run(A.0, A.1, A.2, "2026-11-25T01:02:03Z", "10.0.0.0/16"));
        let mut wrong = run(B.0, B.1, B.2, "2026-11-25T01:02:03Z", "10.0.0.0/16");
        // The subnet claims another VPC than the one created.
        wrong[1]["Subnet"]["VpcId"] = json!("vpc-0999999999999999a");
        let b = normalized(B.0, &wrong);
        let d = diffs(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].path, "Subnet.VpcId");
        // And an id that stays the same where a new one was generated differs too.
        let mut stale = run(B.0, B.1, B.2, "2026-11-25T01:02:03Z", "10.0.0.0/16");
        stale[1]["Subnet"]["SubnetId"] = json!(B.1);
        assert!(!diffs(&a, &normalized(B.0, &stale)).is_empty());
    }

    #[test]
    fn missing_and_extra_members_and_types_differ() {
        let a = normalized(A.0, &run(A.0, A.1, A.2, "2026-11-25T01:02:03Z", "10.0.0.0/16"));
        let mut other = run(B.0, B.1, B.2, "2026-11-25T01:02:03Z", "10.0.0.0/16");
        other[0]["Vpc"].as_object_mut().unwrap().remove("State");
        other[2]["Vpcs"][0]["IsDefault"] = json!(false);
        other[2]["Epoch"] = json!("1795000000");
        let d = diffs(&a, &normalized(B.0, &other));
        let shown: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            shown,
            [
                r#"Vpc.State: "pending" | (absent)"#,
                r#"Epoch: "<EPOCH_S>" | "<EPOCH_S> in a string""#,
                r#"Vpcs[0].IsDefault: (absent) | false"#
            ],
            "{shown:?}"
        );
    }

    #[test]
    fn timestamps_keep_their_form() {
        let mut n = Normalizer::new(&[]);
        assert_eq!(n.string(Origin::Response, "2026-11-25T01:02:03Z"), "<TIMESTAMP>");
        assert_eq!(n.string(Origin::Response, "2026-11-25T01:02:03.5Z"), "<TIMESTAMP>");
        assert_eq!(n.string(Origin::Response, "2026-11-25T01:02:03.943490+0000"), "<TIMESTAMP+hhmm>");
        assert_eq!(n.string(Origin::Response, "2026-11-25T01:02:03+00:00"), "<TIMESTAMP+hh:mm>");
        assert_eq!(n.string(Origin::Response, "1795000000123"), "<EPOCH_MS> in a string");
        assert_eq!(n.string(Origin::Response, "10.0.0.0/16"), "10.0.0.0/16");
        assert_eq!(n.string(Origin::Response, "42"), "42");
    }

    #[test]
    fn keyed_tokens_are_mapped_everywhere_and_consistently() {
        let norm = |id: &str, other: &str| {
            let mut n = Normalizer::new(&[]);
            let a = n.normalize("apigateway", Origin::Response, &json!({"id": id, "rootResourceId": other}));
            let b = n.normalize(
                "apigateway",
                Origin::Response,
                &json!({"items": [{"id": other, "path": "/"}], "self": format!("/restapis/{id}")}),
            );
            (a, b)
        };
        let x = norm("abcde12345", "zzzzz00000");
        let y = norm("qwert67890", "yyyyy11111");
        assert_eq!(x, y);
        assert_eq!(x.1["self"], json!("/restapis/<id#1>"));
        // The root resource listed as another id than the one the API reported differs.
        let mut n = Normalizer::new(&[]);
        n.normalize("apigateway", Origin::Response, &json!({"id": "qwert67890", "rootResourceId": "yyyyy11111"}));
        let wrong = n.normalize(
            "apigateway",
            Origin::Response,
            &json!({"items": [{"id": "qwert67890", "path": "/"}], "self": "/restapis/qwert67890"}),
        );
        assert_ne!(x.1, wrong);
    }

    #[test]
    fn a_short_token_is_replaced_only_as_the_value_of_its_key() {
        let mut n = Normalizer::new(&[]);
        let v = n.normalize("logs", Origin::Response, &json!({"uploadSequenceToken": "1", "arn": "arn:aws:logs:us-east-1:1:x"}));
        assert_eq!(v, json!({"arn": "arn:aws:logs:us-east-1:1:x", "uploadSequenceToken": "<uploadSequenceToken#1>"}));
        let url = "http://h/k?AWSAccessKeyId=9&Signature=I57P8gZiLq%3D&Expires=1795572924";
        assert_eq!(n.string(Origin::Response, url), "http://h/k?AWSAccessKeyId=9&Signature=<Signature#1>&Expires=<EPOCH_S>");
    }

    #[test]
    fn secret_arn_suffixes_and_request_tokens_are_named_apart() {
        let mut n = Normalizer::new(&[("runtoken", "<RUN>"), ("111122223333", "<ACCOUNT>")]);
        let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:diff-runtoken-AbC123";
        assert_eq!(n.string(Origin::Response, arn), "arn:aws:secretsmanager:us-east-1:<ACCOUNT>:secret:diff-<RUN>-<secret-suffix#1>");
        let req = n.string(Origin::Request, "5d1f3c1e-8c2a-4b8e-9d7a-0a1b2c3d4e5f");
        assert_eq!(req, "<req:uuid#1>");
        // The same token echoed in a response keeps the request's name.
        assert_eq!(n.string(Origin::Response, "5d1f3c1e-8c2a-4b8e-9d7a-0a1b2c3d4e5f"), "<req:uuid#1>");
    }
}
