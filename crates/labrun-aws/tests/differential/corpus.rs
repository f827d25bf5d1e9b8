//! The corpus (`corpus.json`), its small template language, the two sides that can run it, and
//! the driver that runs it through a recording proxy into a transcript.
//!
//! A call: `{"id"?, "service", "op", "params", "until"?, "expect_error"?, "note"?}`.
//! In parameters, a string may hold `{{ name.Path.0.Key }}`: `name` is an earlier call's `id`
//! (its response) or one of `run` (this side's run token), `account`, `region`, `lambda_zip`
//! (the test's Lambda package, base64) and `now_ms`. A string that is only a template takes the
//! referenced value as it is (a list, a number); otherwise the value is spliced in as text.
//! `{"$json": X}` becomes X serialised as a JSON string, `{"$base64": "text"}` the text's
//! base64. `until: {"path": "Table.TableStatus", "in": ["ACTIVE"]}` repeats the call until the
//! value at the path is one of those (at most 60 times, 0.5 s apart). `volatile: ["Plaintext"]`
//! names response keys whose values the call generates at random, beyond those every call has
//! (`normalize.rs`).
//! Both sides render the same templates with their own values, so the requests they send can
//! only differ by what the runs generated.

use crate::proxy::{Recorded, RecordingProxy};
use serde_json::{Map, Value};
use std::collections::HashMap;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone)]
pub struct Until {
    pub path: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub id: Option<String>,
    pub service: String,
    pub op: String,
    pub params: Value,
    pub until: Option<Until>,
    pub expect_error: Option<String>,
    /// Response keys whose values this call generates at random (a data key's plaintext).
    pub volatile: Vec<String>,
}

#[derive(Debug)]
pub struct Corpus {
    pub calls: Vec<Call>,
}

impl Corpus {
    pub fn load() -> Corpus {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differential/corpus.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        Corpus::parse(&v).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn parse(v: &Value) -> Result<Corpus, String> {
        let calls = v["calls"].as_array().ok_or("no `calls` list")?;
        let mut out = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            let o = c.as_object().ok_or(format!("call {}: not a mapping", i + 1))?;
            if let Some(k) =
                o.keys().find(|k| !["id", "service", "op", "params", "until", "expect_error", "volatile", "note"].contains(&k.as_str()))
            {
                return Err(format!("call {}: unknown key `{k}`", i + 1));
            }
            let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            let until = match o.get("until") {
                None => None,
                Some(u) => Some(Until {
                    path: u["path"].as_str().ok_or(format!("call {}: `until` needs a `path`", i + 1))?.to_string(),
                    values: u["in"]
                        .as_array()
                        .ok_or(format!("call {}: `until` needs an `in` list", i + 1))?
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                }),
            };
            out.push(Call {
                id: text("id"),
                service: text("service").ok_or(format!("call {}: no `service`", i + 1))?,
                op: text("op").ok_or(format!("call {}: no `op`", i + 1))?,
                params: o.get("params").cloned().unwrap_or_else(|| Value::Object(Map::new())),
                until,
                expect_error: text("expect_error"),
                volatile: o
                    .get("volatile")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(Corpus { calls: out })
    }

    /// `03 ec2.CreateVpc`
    pub fn name(&self, i: usize) -> String {
        format!("{:02} {}.{}", i + 1, self.calls[i].service, self.calls[i].op)
    }
}

/// How one side answered a call.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok(Value),
    Err {
        code: String,
        message: String,
    },
    /// The parameters could not be rendered: they name a call that failed on this side.
    NotRun {
        needs: String,
    },
}

#[async_trait::async_trait]
pub trait Side: Send {
    async fn call(&mut self, service: &str, operation: &str, params: &Value) -> Answer;
}

/// boto3 in a Python process of its own (`boto3_side.py`), one JSON line per call each way.
pub struct Boto3Side {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    /// The protocol botocore used per service (from its model).
    pub protocols: HashMap<String, String>,
}

impl Boto3Side {
    pub fn spawn(python: &std::path::Path, endpoint: &str, account: &str, region: &str) -> Boto3Side {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differential/boto3_side.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .args([endpoint, account, region])
            // Nothing from the environment may steer boto3 elsewhere.
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.display()));
        let stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        let stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout"))).lines();
        let mut err = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut s).await;
            s
        });
        Boto3Side { child, stdin, stdout, stderr, protocols: HashMap::new() }
    }

    /// The botocore version the process announced (its first line).
    pub async fn botocore(&mut self) -> String {
        let Ok(Some(line)) = self.stdout.next_line().await else { self.died().await };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("boto3 side said {line:?}: {e}"));
        v["botocore"].as_str().unwrap_or_else(|| panic!("boto3 side said {line:?}")).to_string()
    }

    async fn died(&mut self) -> ! {
        let _ = self.child.kill().await;
        let err = (&mut self.stderr).await.unwrap_or_default();
        panic!("the boto3 side stopped answering:\n{err}");
    }
}

#[async_trait::async_trait]
impl Side for Boto3Side {
    async fn call(&mut self, service: &str, operation: &str, params: &Value) -> Answer {
        let line = serde_json::json!({"service": service, "operation": operation, "params": params}).to_string() + "\n";
        if self.stdin.write_all(line.as_bytes()).await.is_err() || self.stdin.flush().await.is_err() {
            self.died().await;
        }
        let Ok(Some(answer)) = self.stdout.next_line().await else { self.died().await };
        let v: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("boto3 side answered {answer:?}: {e}"));
        if let Some(p) = v["protocol"].as_str() {
            self.protocols.insert(service.to_string(), p.to_string());
        }
        match v.get("ok") {
            Some(ok) => Answer::Ok(ok.clone()),
            None => Answer::Err {
                code: v["error"]["code"].as_str().unwrap_or_default().to_string(),
                message: v["error"]["message"].as_str().unwrap_or_default().to_string(),
            },
        }
    }
}

/// What a side renders its templates with.
pub struct Env {
    pub account: String,
    pub region: String,
    pub run: String,
    pub lambda_zip: String,
    pub now_ms: u64,
}

/// Everything one side did.
pub struct Transcript {
    pub label: String,
    pub account: String,
    pub run: String,
    pub proxy: String,
    pub calls: Vec<Done>,
}

pub struct Done {
    pub params: Value,
    pub answer: Answer,
    /// The requests of the last attempt (an `until` repeats the call).
    pub requests: Vec<Recorded>,
    pub attempts: usize,
}

#[derive(Debug)]
pub struct RenderError {
    pub needs: String,
}

fn lookup(env: &Env, saved: &HashMap<String, Value>, expr: &str) -> Result<Value, RenderError> {
    let mut parts = expr.split('.');
    let root = parts.next().unwrap_or_default();
    let mut v = match root {
        "run" => Value::String(env.run.clone()),
        "account" => Value::String(env.account.clone()),
        "region" => Value::String(env.region.clone()),
        "lambda_zip" => Value::String(env.lambda_zip.clone()),
        "now_ms" => Value::from(env.now_ms),
        id => saved.get(id).cloned().ok_or_else(|| RenderError { needs: id.to_string() })?,
    };
    for p in parts {
        let next = match (&v, p.parse::<usize>()) {
            (Value::Array(a), Ok(i)) => a.get(i).cloned(),
            (Value::Object(o), _) => o.get(p).cloned(),
            _ => None,
        };
        v = next.ok_or_else(|| RenderError { needs: format!("{expr} (no `{p}` in {})", short(&v)) })?;
    }
    Ok(v)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 { format!("{}…", &s[..s.char_indices().nth(200).map(|(i, _)| i).unwrap_or(s.len())]) } else { s }
}

pub fn render(v: &Value, env: &Env, saved: &HashMap<String, Value>) -> Result<Value, RenderError> {
    Ok(match v {
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with("{{") && t.ends_with("}}") && t.matches("{{").count() == 1 {
                return lookup(env, saved, t[2..t.len() - 2].trim());
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else { break };
                out.push_str(&rest[..start]);
                match lookup(env, saved, rest[start + 2..start + end].trim())? {
                    Value::String(x) => out.push_str(&x),
                    other => out.push_str(&other.to_string()),
                }
                rest = &rest[start + end + 2..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("$json") => Value::String(render(&o["$json"], env, saved)?.to_string()),
        Value::Object(o) if o.len() == 1 && o.contains_key("$base64") => {
            let text = render(&o["$base64"], env, saved)?;
            Value::String(aws_smithy_types::base64::encode(text.as_str().unwrap_or_default().as_bytes()))
        }
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, x) in o {
                m.insert(k.clone(), render(x, env, saved)?);
            }
            Value::Object(m)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render(x, env, saved)).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, p| match (v, p.parse::<usize>()) {
        (Value::Array(a), Ok(i)) => a.get(i),
        (Value::Object(o), _) => o.get(p),
        _ => None,
    })
}

/// Runs the whole corpus on one side.
pub async fn run(label: &str, corpus: &Corpus, side: &mut dyn Side, proxy: &RecordingProxy, env: &Env) -> Transcript {
    let mut saved: HashMap<String, Value> = HashMap::new();
    let mut calls = Vec::new();
    proxy.take();
    for call in &corpus.calls {
        let params = match render(&call.params, env, &saved) {
            Ok(p) => p,
            Err(e) => {
                calls.push(Done { params: Value::Null, answer: Answer::NotRun { needs: e.needs }, requests: vec![], attempts: 0 });
                continue;
            }
        };
        let mut attempts = 0;
        let (answer, requests) = loop {
            attempts += 1;
            let answer = side.call(&call.service, &call.op, &params).await;
            let requests = proxy.take();
            let done = match (&call.until, &answer) {
                (Some(u), Answer::Ok(v)) => at(v, &u.path).and_then(Value::as_str).is_some_and(|s| u.values.iter().any(|x| x == s)),
                _ => true,
            };
            if done || attempts >= 60 {
                break (answer, requests);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        if let (Some(id), Answer::Ok(v)) = (&call.id, &answer) {
            saved.insert(id.clone(), v.clone());
        }
        calls.push(Done { params, answer, requests, attempts });
    }
    Transcript { label: label.to_string(), account: env.account.clone(), run: env.run.clone(), proxy: proxy.url.clone(), calls }
}

impl Transcript {
    /// Everything this side sent and got, for reading after a failure.
    pub fn dump(&self, corpus: &Corpus) -> Value {
        let calls: Vec<Value> = self
            .calls
            .iter()
            .enumerate()
            .map(|(i, d)| {
                serde_json::json!({
                    "call": corpus.name(i),
                    "attempts": d.attempts,
                    "params": d.params,
                    "answer": match &d.answer {
                        Answer::Ok(v) => serde_json::json!({"ok": v}),
                        Answer::Err { code, message } => serde_json::json!({"error": {"code": code, "message": message}}),
                        Answer::NotRun { needs } => serde_json::json!({"not run, needs": needs}),
                    },
                    "requests": d.requests.iter().map(|r| {
                        let mut c = crate::wire::canonical(r);
                        c["status"] = Value::from(r.status);
                        c
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({"side": self.label, "account": self.account, "run": self.run, "proxy": self.proxy, "calls": calls})
    }
}

/// A zip archive holding `files`, stored (not compressed): all Lambda needs.
pub fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    // 1980-01-01 00:00, the zip epoch: the archive is the same bytes on every run.
    let (time, date) = (0u16, 0x21u16);
    for (name, text) in files {
        let (name, data) = (name.as_bytes(), text.as_bytes());
        let (crc, size, offset) = (crc32(data), data.len() as u32, out.len() as u32);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for x in [20u16, 0, 0, time, date] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in [crc, size, size] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for x in [20u16, 20, 0, 0, time, date] {
            central.extend_from_slice(&x.to_le_bytes());
        }
        for x in [crc, size, size] {
            central.extend_from_slice(&x.to_le_bytes());
        }
        for x in [name.len() as u16, 0, 0, 0, 0] {
            central.extend_from_slice(&x.to_le_bytes());
        }
        // A regular file, rw-r--r--.
        central.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let (cd_offset, cd_size, n) = (out.len() as u32, central.len() as u32, files.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for x in [0u16, 0, n, n] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Env {
        Env { account: "111122223333".into(), region: "us-east-1".into(), run: "rk".into(), lambda_zip: "UEs=".into(), now_ms: 7 }
    }

    #[test]
    fn templates_take_values_whole_or_as_text() {
        let saved = HashMap::from([("vpc".to_string(), json!({"Vpc": {"VpcId": "vpc-1"}, "Ids": ["a", "b"]}))]);
        let p = json!({"VpcId": "{{ vpc.Vpc.VpcId }}", "Ids": "{{vpc.Ids}}", "Name": "n-{{ run }}-{{ vpc.Ids.1 }}",
                       "T": {"$json": {"a": "{{ account }}"}}, "B": {"$base64": "hi {{ run }}"}, "N": "{{ now_ms }}"});
        let r = render(&p, &env(), &saved).unwrap();
        assert_eq!(
            r,
            json!({"VpcId": "vpc-1", "Ids": ["a", "b"], "Name": "n-rk-b", "T": "{\"a\":\"111122223333\"}", "B": "aGkgcms=", "N": 7})
        );
        assert_eq!(render(&json!("{{ gone.X }}"), &env(), &saved).unwrap_err().needs, "gone");
        assert!(render(&json!("{{ vpc.Nope }}"), &env(), &saved).is_err());
    }

    #[test]
    fn the_zip_has_the_right_checksum_and_layout() {
        let z = zip(&[("a.txt", "123456789")]);
        assert_eq!(&z[..4], b"PK\x03\x04");
        // CRC-32 of "123456789" is the standard check value.
        assert_eq!(u32::from_le_bytes(z[14..18].try_into().unwrap()), 0xCBF4_3926);
        assert_eq!(&z[z.len() - 22..z.len() - 18], b"PK\x05\x06");
    }
}
