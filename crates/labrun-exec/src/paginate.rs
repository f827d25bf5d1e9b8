//! Follows a service model's paginator: asks for a page, puts the page's next-page token(s) into
//! the next request, and merges the pages into one response, as the AWS CLI shows a paged read.
//!
//! - Tokens out are JMESPath over the page (`NextToken`, but also `NextMarker || Contents[-1].Key`
//!   or `StreamDescription.Shards[-1].ShardId`); tokens in are request members. With several
//!   tokens (S3 `ListObjectVersions`), one absent from a page is dropped from the next request.
//! - Paging stops when `more_results` (`IsTruncated`) is false, or when every token is absent,
//!   null or empty. A token the service already gave is an error, never a loop; so is a page
//!   past [`MAX_PAGES`].
//! - The merged response is the first page with each result key's values from every page:
//!   lists concatenated, numbers summed (DynamoDB's `Count`), strings joined. Result keys may be
//!   dotted (`DistributionList.Items`). The output tokens are removed, and `more_results`, where
//!   the first page had it, is `false`: the merged response is complete. Other members (S3's
//!   `KeyCount`, say) are the first page's.

use crate::backend::{CallError, ErrorKind};
use labrun_lab::catalog::Operation;
use labrun_models::Paginator;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::future::Future;

/// Pages one read may follow: a lab step, not a bulk export.
pub const MAX_PAGES: usize = 1000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PageError<E> {
    /// A page's call failed (after the caller's own retries).
    #[error("{0}")]
    Call(E),
    #[error(
        "page {page} gave the next-page token {token}, which an earlier page already gave: stopped instead of asking for the same pages again"
    )]
    RepeatedToken { page: usize, token: String },
    #[error("stopped after {0} pages, the most labrun follows for one read: narrow the request (filters) or set `pages: first`")]
    TooManyPages(usize),
    #[error("the service model's paginator cannot be followed: {0}")]
    Paginator(String),
}

/// A paging failure as the engine reports it: a page's own error as it came, anything else
/// (a repeated token, too many pages) as labrun's.
impl From<PageError<CallError>> for CallError {
    fn from(e: PageError<CallError>) -> Self {
        match e {
            PageError::Call(e) => e,
            other => CallError::new(ErrorKind::Client, "labrun.Pagination", other.to_string()),
        }
    }
}

/// Every page of a read as one answer, following its model's paginator (one call when it has
/// none); `call` makes (and retries) each page's request.
pub async fn read_all<F, Fut>(op: &Operation, request: &Value, call: F) -> Result<Value, CallError>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = Result<Value, CallError>>,
{
    let mut call = call;
    match labrun_lab::modelled::paginator(op) {
        Some(p) => Ok(all_pages(&p, request, MAX_PAGES, call).await?),
        None => call(request.clone()).await,
    }
}

/// A dotted member path (`DistributionList.Items`), or None for anything more (an expression).
fn plain_path(expr: &str) -> Option<Vec<&str>> {
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let parts: Vec<&str> = expr.trim().split('.').collect();
    parts.iter().all(|p| ident(p)).then_some(parts)
}

fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn set(v: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = v;
    for k in parents {
        if !at.is_object() {
            return;
        }
        at = at.as_object_mut().expect("checked").entry(k.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    if let Value::Object(m) = at {
        m.insert(last.to_string(), value);
    }
}

fn remove(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = v;
    for k in parents {
        match at.get_mut(*k) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Value::Object(m) = at {
        m.remove(*last);
    }
}

/// JMESPath's truthiness: false, null, empty strings, lists and objects are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => true,
    }
}

/// An expression of the paginator: a plain path read directly, or JMESPath.
fn eval(expr: &str, page: &Value) -> Result<Value, String> {
    match plain_path(expr) {
        Some(path) => Ok(get(page, &path).cloned().unwrap_or(Value::Null)),
        None => crate::assert::search(expr, page),
    }
}

/// Adds one page's value of a result key to what the earlier pages gave.
fn combine(acc: &mut Option<Value>, value: Value) {
    if value.is_null() {
        return;
    }
    let Some(have) = acc else {
        *acc = Some(value);
        return;
    };
    match (have, value) {
        (Value::Array(a), Value::Array(b)) => a.extend(b),
        (Value::Number(a), Value::Number(b)) => {
            let sum = match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x.checked_add(y).map(Value::from),
                _ => None,
            };
            *a = match sum {
                Some(Value::Number(n)) => n,
                _ => serde_json::Number::from_f64(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)).unwrap_or_else(|| a.clone()),
            };
        }
        (Value::String(a), Value::String(b)) => a.push_str(&b),
        // Kinds that do not add up: the first page's stands.
        _ => {}
    }
}

/// The next request's tokens: input member → token (None: drop the member).
type Tokens<'p> = Vec<(&'p str, Option<Value>)>;

/// The paginator, checked once before the first call.
struct Plan<'p> {
    inputs: Vec<&'p str>,
    outputs: Vec<&'p str>,
    results: Vec<Vec<&'p str>>,
    more: Option<&'p str>,
}

impl<'p> Plan<'p> {
    fn new(p: &'p Paginator) -> Result<Self, String> {
        let inputs = p.input_token.all();
        let outputs = p.output_token.all();
        if inputs.len() != outputs.len() || inputs.is_empty() {
            return Err(format!("{} input token(s) for {} output token(s)", inputs.len(), outputs.len()));
        }
        if let Some(bad) = inputs.iter().find(|i| plain_path(i).is_none_or(|p| p.len() != 1)) {
            return Err(format!("input token `{bad}` is not a request member"));
        }
        let results = match &p.result_key {
            Some(keys) => keys
                .all()
                .into_iter()
                .map(|k| plain_path(k).ok_or_else(|| format!("result key `{k}` is not a member path")))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Plan { inputs, outputs, results, more: p.more_results.as_deref() })
    }

    /// The next request's tokens, or None when this was the last page.
    fn next(&self, page: &Value) -> Result<Option<Tokens<'p>>, String> {
        if let Some(more) = self.more
            && !truthy(&eval(more, page)?)
        {
            return Ok(None);
        }
        let mut tokens = Vec::with_capacity(self.outputs.len());
        for (input, output) in self.inputs.iter().zip(&self.outputs) {
            let v = eval(output, page)?;
            tokens.push((*input, truthy(&v).then_some(v)));
        }
        Ok(tokens.iter().any(|(_, t)| t.is_some()).then_some(tokens))
    }
}

fn token_text(tokens: &[(&str, Option<Value>)]) -> String {
    let shown: Vec<String> = tokens.iter().filter_map(|(_, t)| t.as_ref()).map(crate::assert::short).collect();
    shown.join(", ")
}

/// Calls `call` once per page, from `request` on, and returns the merged response.
/// `call` makes one request (with whatever retries the caller wants) and gives its answer.
pub async fn all_pages<E, F, Fut>(p: &Paginator, request: &Value, max_pages: usize, mut call: F) -> Result<Value, PageError<E>>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = Result<Value, E>>,
{
    let plan = Plan::new(p).map_err(PageError::Paginator)?;
    let mut params = request.clone();
    let mut seen: HashSet<String> = HashSet::new();
    // A token the caller passed in counts as seen: a service answering with it again loops.
    let given: Vec<(&str, Option<Value>)> = plan.inputs.iter().map(|i| (*i, params.get(*i).filter(|v| truthy(v)).cloned())).collect();
    if given.iter().any(|(_, t)| t.is_some()) {
        seen.insert(serde_json::to_string(&given.iter().map(|(_, t)| t).collect::<Vec<_>>()).unwrap_or_default());
    }
    let mut first: Option<Value> = None;
    let mut merged: Vec<Option<Value>> = vec![None; plan.results.len()];
    let mut n = 0;
    loop {
        let page = call(params.clone()).await.map_err(PageError::Call)?;
        n += 1;
        let next = plan.next(&page).map_err(PageError::Paginator)?;
        for (acc, key) in merged.iter_mut().zip(&plan.results) {
            combine(acc, get(&page, key).cloned().unwrap_or(Value::Null));
        }
        if first.is_none() {
            first = Some(page);
        }
        let Some(tokens) = next else { break };
        if n >= max_pages {
            return Err(PageError::TooManyPages(n));
        }
        let key = serde_json::to_string(&tokens.iter().map(|(_, t)| t).collect::<Vec<_>>()).unwrap_or_default();
        if !seen.insert(key) {
            return Err(PageError::RepeatedToken { page: n, token: token_text(&tokens) });
        }
        let Value::Object(m) = &mut params else {
            return Err(PageError::Paginator("the request is not a mapping, so no token can be added to it".into()));
        };
        for (input, token) in tokens {
            match token {
                Some(t) => m.insert(input.to_string(), t),
                None => m.remove(input),
            };
        }
    }
    let mut out = first.unwrap_or(Value::Null);
    for output in &plan.outputs {
        // `NextMarker || Contents[-1].Key`: the member it names first goes; parts of the
        // result (`Contents[-1].Key`) stay.
        let head = output.split("||").next().unwrap_or(output);
        if let Some(path) = plain_path(head) {
            remove(&mut out, &path);
        }
    }
    if let Some(path) = plan.more.and_then(plain_path)
        && get(&out, &path).is_some()
    {
        set(&mut out, &path, Value::Bool(false));
    }
    for (key, value) in plan.results.iter().zip(merged) {
        if let Some(v) = value {
            set(&mut out, key, v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// A service answering from a list of pages, page `n` for the request carrying token `tn`
    /// (the first for a request without one), recording every request.
    struct Paged {
        pages: Vec<Value>,
        requests: Mutex<Vec<Value>>,
        token: &'static str,
    }

    impl Paged {
        fn new(token: &'static str, pages: Vec<Value>) -> Self {
            Paged { pages, requests: Mutex::new(Vec::new()), token }
        }
        async fn call(&self, request: Value) -> Result<Value, String> {
            self.requests.lock().unwrap().push(request.clone());
            let n = match request.get(self.token).and_then(Value::as_str) {
                None => 0,
                Some(t) => t.strip_prefix('t').and_then(|n| n.parse().ok()).ok_or(format!("bad token {t}"))?,
            };
            self.pages.get(n).cloned().ok_or_else(|| format!("no page {n}"))
        }
        fn requests(&self) -> Vec<Value> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn model(service: &str, operation: &str) -> Paginator {
        labrun_models::load(service).unwrap().paginators[operation].clone()
    }

    async fn follow(p: &Paginator, svc: &Paged, request: Value) -> Result<Value, PageError<String>> {
        all_pages(p, &request, MAX_PAGES, |r| svc.call(r)).await
    }

    #[tokio::test]
    async fn two_pages_of_ec2_instances_become_one_answer() {
        let svc = Paged::new(
            "NextToken",
            vec![
                json!({"Reservations": [{"ReservationId": "r-1"}], "NextToken": "t1", "RequestId": "first"}),
                json!({"Reservations": [{"ReservationId": "r-2"}], "RequestId": "second"}),
            ],
        );
        let p = model("ec2", "DescribeInstances");
        let out = follow(&p, &svc, json!({"Filters": [{"Name": "tag:Name", "Values": ["x"]}]})).await.unwrap();
        assert_eq!(out, json!({"Reservations": [{"ReservationId": "r-1"}, {"ReservationId": "r-2"}], "RequestId": "first"}));
        let reqs = svc.requests();
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0].get("NextToken").is_none());
        assert_eq!(reqs[1]["NextToken"], "t1");
        assert_eq!(reqs[1]["Filters"], reqs[0]["Filters"], "the rest of the request is kept");
    }

    #[tokio::test]
    async fn three_pages_of_iam_roles_follow_marker_and_is_truncated() {
        let svc = Paged::new(
            "Marker",
            vec![
                json!({"Roles": [{"RoleName": "a"}], "IsTruncated": true, "Marker": "t1"}),
                json!({"Roles": [{"RoleName": "b"}], "IsTruncated": true, "Marker": "t2"}),
                json!({"Roles": [{"RoleName": "c"}], "IsTruncated": false}),
            ],
        );
        let out = follow(&model("iam", "ListRoles"), &svc, json!({})).await.unwrap();
        assert_eq!(out, json!({"Roles": [{"RoleName": "a"}, {"RoleName": "b"}, {"RoleName": "c"}], "IsTruncated": false}));
        assert_eq!(svc.requests().len(), 3);
    }

    #[tokio::test]
    async fn more_results_false_stops_even_with_a_token() {
        // S3 ListObjects: the token is `NextMarker || Contents[-1].Key`, so every page has one;
        // `IsTruncated: false` is what ends it.
        let svc = Paged::new(
            "Marker",
            vec![
                json!({"Contents": [{"Key": "a"}, {"Key": "t1"}], "IsTruncated": true, "Name": "b"}),
                json!({"Contents": [{"Key": "c"}], "IsTruncated": false, "Name": "b"}),
            ],
        );
        let out = follow(&model("s3", "ListObjects"), &svc, json!({"Bucket": "b"})).await.unwrap();
        assert_eq!(svc.requests()[1]["Marker"], "t1", "the last key of page 1 is the marker");
        assert_eq!(svc.requests().len(), 2);
        assert_eq!(out["Contents"], json!([{"Key": "a"}, {"Key": "t1"}, {"Key": "c"}]));
        assert_eq!(out["IsTruncated"], false);
    }

    #[tokio::test]
    async fn a_nested_result_key_is_merged_in_place() {
        let svc = Paged::new(
            "Marker",
            vec![
                json!({"DistributionList": {"Items": [{"Id": "E1"}], "IsTruncated": true, "NextMarker": "t1", "Quantity": 1}}),
                json!({"DistributionList": {"Items": [{"Id": "E2"}], "IsTruncated": false, "Quantity": 1}}),
            ],
        );
        let p = model("cloudfront", "ListDistributions");
        assert_eq!(p.result_key.as_ref().unwrap().all(), ["DistributionList.Items"]);
        let out = follow(&p, &svc, json!({})).await.unwrap();
        assert_eq!(out, json!({"DistributionList": {"Items": [{"Id": "E1"}, {"Id": "E2"}], "IsTruncated": false, "Quantity": 1}}));
    }

    #[tokio::test]
    async fn a_repeated_token_stops_with_an_error_instead_of_looping() {
        let svc = Paged::new(
            "NextToken",
            vec![json!({"Vpcs": [{"VpcId": "vpc-1"}], "NextToken": "t1"}), json!({"Vpcs": [{"VpcId": "vpc-2"}], "NextToken": "t1"})],
        );
        let e = follow(&model("ec2", "DescribeVpcs"), &svc, json!({})).await.unwrap_err();
        assert_eq!(e, PageError::RepeatedToken { page: 2, token: "\"t1\"".into() });
        assert!(e.to_string().contains("which an earlier page already gave"), "{e}");
        assert_eq!(svc.requests().len(), 2);
        // A cycle longer than one page is caught too.
        let svc = Paged::new(
            "NextToken",
            vec![json!({"Vpcs": [], "NextToken": "t1"}), json!({"Vpcs": [], "NextToken": "t2"}), json!({"Vpcs": [], "NextToken": "t1"})],
        );
        let e = follow(&model("ec2", "DescribeVpcs"), &svc, json!({})).await.unwrap_err();
        assert!(matches!(e, PageError::RepeatedToken { page: 3, .. }), "{e:?}");
    }

    #[tokio::test]
    async fn pages_are_capped() {
        let pages = (1..=10).map(|n| json!({"Vpcs": [n], "NextToken": format!("t{n}")})).collect();
        let svc = Paged::new("NextToken", pages);
        let e = all_pages(&model("ec2", "DescribeVpcs"), &json!({}), 4, |r| svc.call(r)).await.unwrap_err();
        assert_eq!(e, PageError::TooManyPages(4));
        assert!(e.to_string().contains("stopped after 4 pages"));
        assert_eq!(svc.requests().len(), 4);
    }

    #[tokio::test]
    async fn an_empty_token_ends_and_errors_pass_through() {
        let svc = Paged::new("NextToken", vec![json!({"Vpcs": [1], "NextToken": ""})]);
        let out = follow(&model("ec2", "DescribeVpcs"), &svc, json!({})).await.unwrap();
        assert_eq!(out, json!({"Vpcs": [1]}));
        let svc = Paged::new("NextToken", vec![json!({"Vpcs": [1], "NextToken": "t7"})]);
        let e = follow(&model("ec2", "DescribeVpcs"), &svc, json!({})).await.unwrap_err();
        assert_eq!(e, PageError::Call("no page 7".into()));
    }

    #[tokio::test]
    async fn several_tokens_counts_and_map_tokens() {
        // ListObjectVersions: two tokens; one missing from a page leaves the next request.
        let p = model("s3", "ListObjectVersions");
        let calls = Mutex::new(Vec::new());
        let out = all_pages(&p, &json!({"Bucket": "b"}), MAX_PAGES, |r: Value| {
            calls.lock().unwrap().push(r.clone());
            let page = match r.get("KeyMarker").and_then(Value::as_str) {
                None => json!({"Versions": [{"Key": "a"}], "IsTruncated": true, "NextKeyMarker": "a", "NextVersionIdMarker": "v1"}),
                Some("a") => {
                    json!({"Versions": [{"Key": "b"}], "DeleteMarkers": [{"Key": "x"}], "IsTruncated": true, "NextKeyMarker": "b"})
                }
                _ => json!({"Versions": [{"Key": "c"}], "IsTruncated": false}),
            };
            std::future::ready(Ok::<_, String>(page))
        })
        .await
        .unwrap();
        let calls = calls.into_inner().unwrap();
        assert_eq!(calls[1]["VersionIdMarker"], "v1");
        assert!(calls[2].get("VersionIdMarker").is_none(), "{:?}", calls[2]);
        assert_eq!(out["Versions"], json!([{"Key": "a"}, {"Key": "b"}, {"Key": "c"}]));
        assert_eq!(out["DeleteMarkers"], json!([{"Key": "x"}]), "a key absent from the first page still gathers");
        assert!(out.get("NextKeyMarker").is_none() && out.get("NextVersionIdMarker").is_none());

        // DynamoDB Scan: a map for a token, and counts that add up.
        let p = model("dynamodb", "Scan");
        let out = all_pages(&p, &json!({"TableName": "t"}), MAX_PAGES, |r: Value| {
            let page = if r.get("ExclusiveStartKey").is_none() {
                json!({"Items": [{"id": {"S": "1"}}], "Count": 1, "ScannedCount": 2, "LastEvaluatedKey": {"id": {"S": "1"}}})
            } else {
                json!({"Items": [{"id": {"S": "2"}}, {"id": {"S": "3"}}], "Count": 2, "ScannedCount": 2})
            };
            std::future::ready(Ok::<_, String>(page))
        })
        .await
        .unwrap();
        assert_eq!(out, json!({"Items": [{"id": {"S": "1"}}, {"id": {"S": "2"}}, {"id": {"S": "3"}}], "Count": 3, "ScannedCount": 4}));
    }

    #[test]
    fn every_paginator_in_the_models_can_be_followed() {
        for s in labrun_models::services() {
            for (op, p) in &labrun_models::load(s).unwrap().paginators {
                Plan::new(p).unwrap_or_else(|e| panic!("{s}:{op}: {e}"));
            }
        }
    }
}
