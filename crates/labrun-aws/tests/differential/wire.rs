//! Serialised requests in a form two clients can be compared by: the method; the path
//! percent-decoded; the query and form bodies as sorted (key, value) multisets; JSON bodies as
//! JSON; XML bodies as element trees; anything else as base64. `aws-chunked` bodies are
//! unwrapped to their payload.

use crate::proxy::Recorded;
use serde_json::{Map, Value, json};

pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=&c` → sorted `[["a","1"],["b",""],["c",""]]`.
pub fn pairs(s: &str) -> Value {
    let mut v: Vec<(String, String)> = s
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    v.sort();
    Value::Array(v.into_iter().map(|(k, v)| json!([k, v])).collect())
}

/// The payload of an `aws-chunked` body: `HEX[;ext]\r\nDATA\r\n` … `0[;ext]\r\n[trailers]\r\n`.
fn unchunk(body: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            let trailers = String::from_utf8_lossy(rest).lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
            return Some((out, trailers));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// An XML document as `{"tag", "attrs"?, "children"? | "text"?}`; whitespace between elements
/// is dropped.
pub fn xml_tree(text: &str) -> Result<Value, String> {
    let mut stack: Vec<Map<String, Value>> = vec![Map::new()];
    let mut root: Option<Value> = None;
    for token in xmlparser::Tokenizer::from(text) {
        let token = token.map_err(|e| e.to_string())?;
        match token {
            xmlparser::Token::ElementStart { prefix, local, .. } => {
                let tag = if prefix.is_empty() { local.to_string() } else { format!("{prefix}:{local}") };
                let mut m = Map::new();
                m.insert("tag".into(), Value::String(tag));
                stack.push(m);
            }
            xmlparser::Token::Attribute { prefix, local, value, .. } => {
                let name = if prefix.is_empty() { local.to_string() } else { format!("{prefix}:{local}") };
                let top = stack.last_mut().ok_or("attribute outside an element")?;
                let attrs = top.entry("attrs").or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(a) = attrs {
                    a.insert(name, Value::String(unescape(value.as_str())));
                }
            }
            xmlparser::Token::Text { text } | xmlparser::Token::Cdata { text, .. } => {
                let t = unescape(text.as_str());
                if !t.trim().is_empty() {
                    let top = stack.last_mut().ok_or("text outside an element")?;
                    let prev = top.get("text").and_then(Value::as_str).unwrap_or("").to_string();
                    top.insert("text".into(), Value::String(prev + &t));
                }
            }
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Close(..) | xmlparser::ElementEnd::Empty => {
                    let done = Value::Object(stack.pop().ok_or("unbalanced XML")?);
                    // The bottom of the stack is a sentinel, not an element.
                    if stack.len() > 1 {
                        let parent = stack.last_mut().ok_or("unbalanced XML")?;
                        if let Value::Array(c) = parent.entry("children").or_insert_with(|| Value::Array(vec![])) {
                            c.push(done);
                        }
                    } else {
                        root = Some(done);
                    }
                }
            },
            _ => {}
        }
    }
    root.ok_or_else(|| "no root element".to_string())
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(end) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn body_value(content_type: &str, body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    let ct = content_type.to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok();
    if ct.starts_with("application/x-www-form-urlencoded")
        && let Some(t) = text
    {
        return json!({"form": pairs(t)});
    }
    if (ct.contains("json") || ct.is_empty())
        && let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(t).ok())
    {
        return json!({"json": v});
    }
    if (ct.contains("xml") || text.is_some_and(|t| t.trim_start().starts_with('<')))
        && let Some(Ok(v)) = text.map(xml_tree)
    {
        return json!({"xml": v});
    }
    match text {
        Some(t) => json!({"text": t}),
        None => json!({"base64": aws_smithy_types::base64::encode(body)}),
    }
}

/// The comparable form of one recorded request.
pub fn canonical(r: &Recorded) -> Value {
    let header = |name: &str| r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let mut headers = Map::new();
    let mut names: Vec<&(String, String)> = r.headers.iter().collect();
    names.sort();
    for (n, v) in names {
        headers.insert(n.clone(), Value::String(v.trim().to_string()));
    }
    let mut body = r.body.to_vec();
    let mut trailers = Vec::new();
    if header("content-encoding").is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"))
        && let Some((payload, t)) = unchunk(&body)
    {
        body = payload;
        trailers = t;
    }
    let mut out = json!({
        "method": r.method,
        "path": percent_decode(&r.path, false),
        "query": pairs(&r.query),
        "headers": headers,
        "body": body_value(header("content-type").unwrap_or(""), &body),
    });
    if !trailers.is_empty() {
        out["trailers"] = json!(trailers);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &str) -> Recorded {
        Recorded {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
            body: bytes::Bytes::from(body.to_string()),
            status: 200,
        }
    }

    #[test]
    fn query_bodies_compare_as_multisets() {
        let ct = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let a = canonical(&rec("POST", "/", "", &ct, "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16"));
        let b = canonical(&rec("POST", "/", "", &ct, "CidrBlock=10.0.0.0/16&Action=CreateVpc&Version=2016-11-15"));
        assert_eq!(a, b);
        let c = canonical(&rec("POST", "/", "", &ct, "CidrBlock=10.0.0.0/16&Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0/16"));
        assert_ne!(a, c, "a repeated pair is not the same request");
    }

    #[test]
    fn json_and_xml_bodies_compare_parsed() {
        let ct = [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", "DynamoDB_20120810.GetItem")];
        assert_eq!(
            canonical(&rec("POST", "/", "", &ct, r#"{"a":1,"b":[2]}"#)),
            canonical(&rec("POST", "/", "", &ct, r#"{ "b": [2], "a": 1 }"#))
        );
        let x = [("content-type", "application/xml")];
        let one = r#"<?xml version="1.0" encoding="UTF-8"?><Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a</Key><Value>x &amp; y</Value></Tag></TagSet></Tagging>"#;
        let two = "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  <TagSet>\n    <Tag><Key>a</Key><Value>x &#38; y</Value></Tag>\n  </TagSet>\n</Tagging>";
        assert_eq!(canonical(&rec("PUT", "/b", "tagging", &x, one)), canonical(&rec("PUT", "/b", "tagging=", &x, two)));
        let other = one.replace("<Key>a</Key>", "<Key>b</Key>");
        assert_ne!(canonical(&rec("PUT", "/b", "tagging", &x, one)), canonical(&rec("PUT", "/b", "tagging", &x, &other)));
    }

    #[test]
    fn paths_compare_decoded_and_chunked_bodies_by_payload() {
        assert_eq!(
            canonical(&rec("GET", "/2015-03-31/tags/arn%3Aaws%3Alambda", "", &[], ""))["path"],
            canonical(&rec("GET", "/2015-03-31/tags/arn:aws:lambda", "", &[], ""))["path"]
        );
        let chunked =
            rec("PUT", "/b/k", "", &[("content-encoding", "aws-chunked")], "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n");
        let c = canonical(&chunked);
        assert_eq!(c["body"], json!({"text": "hello"}));
        assert_eq!(c["trailers"], json!(["x-amz-checksum-crc32:NhCmhg=="]));
    }
}
