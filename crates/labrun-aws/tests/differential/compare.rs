//! Two transcripts of the corpus, call by call: gaps, equal calls and differences.

use crate::corpus::{Answer, Corpus, Done, Transcript};
use crate::normalize::{Normalizer, Origin, diff};
use crate::wire;
use serde_json::{Value, json};
use std::collections::HashSet;

#[derive(Debug)]
pub enum Verdict {
    Equal,
    /// The emulator cannot do this call (on both sides): neither a pass nor a failure.
    Gap(String),
    /// Readable lines: what differs, with both values.
    Differs(Vec<String>),
}

pub struct Outcome {
    pub name: String,
    pub service: String,
    pub verdict: Verdict,
}

/// One side's calls, normalised: (requests, answer).
fn normalized(corpus: &Corpus, t: &Transcript) -> Vec<(Vec<Value>, Value)> {
    let proxy = t.proxy.trim_start_matches("http://").to_string();
    let mut n = Normalizer::new(&[(&t.account, "<ACCOUNT>"), (&t.run, "<RUN>"), (&proxy, "<PROXY>")]);
    corpus
        .calls
        .iter()
        .zip(&t.calls)
        .map(|(call, done)| {
            let requests = done.requests.iter().map(|r| n.normalize(&call.service, Origin::Request, &wire::canonical(r))).collect();
            let answer = match &done.answer {
                Answer::Ok(v) => json!({"ok": v}),
                Answer::Err { code, message } => json!({"error": {"code": code, "message": message}}),
                Answer::NotRun { needs } => json!({"not run, needs": needs}),
            };
            (requests, n.normalize_with(&call.service, &call.volatile, Origin::Response, &answer))
        })
        .collect()
}

fn status(d: &Done) -> Option<u16> {
    d.requests.last().map(|r| r.status)
}

fn summary(a: &Answer) -> String {
    match a {
        Answer::Ok(_) => "a response".into(),
        Answer::Err { code, message } => format!("error {code}: {message}"),
        Answer::NotRun { needs } => format!("not run (needs `{needs}`)"),
    }
}

fn gap(d: (&Done, &Done), gaps: &HashSet<String>) -> Option<String> {
    match (&d.0.answer, &d.1.answer) {
        (Answer::NotRun { needs: a }, Answer::NotRun { needs: b }) if a == b && gaps.contains(a) => {
            Some(format!("needs `{a}`, which the emulator could not make"))
        }
        (Answer::Err { code: ca, message }, Answer::Err { code: cb, .. }) => {
            let (sa, sb) = (status(d.0), status(d.1));
            if sa == Some(501) && sb == Some(501) {
                Some(format!("not implemented by the emulator (501 {ca}): {message}"))
            } else if sa.is_some_and(|s| s >= 500)
                && sb.is_some_and(|s| s >= 500)
                && ca == cb
                && matches!(ca.as_str(), "InternalError" | "InternalFailure" | "ServiceUnavailable")
            {
                Some(format!("the emulator failed on both sides ({} {ca}): {message}", sa.unwrap_or_default()))
            } else {
                None
            }
        }
        _ => None,
    }
}

pub fn compare(corpus: &Corpus, left: &Transcript, right: &Transcript) -> Vec<Outcome> {
    let (nl, nr) = (normalized(corpus, left), normalized(corpus, right));
    let mut gaps = HashSet::new();
    let mut out = Vec::new();
    for (i, call) in corpus.calls.iter().enumerate() {
        let (dl, dr) = (&left.calls[i], &right.calls[i]);
        let name = corpus.name(i);
        let mut lines = Vec::new();
        let mut notes = Vec::new();
        let show = |v: &Option<Value>| match v {
            None => "(absent)".to_string(),
            Some(v) => {
                let s = v.to_string();
                match s.char_indices().nth(400) {
                    Some((cut, _)) => format!("{}…", &s[..cut]),
                    None => s,
                }
            }
        };
        let mut push = |prefix: &str, a: &Value, b: &Value| {
            let mut d = Vec::new();
            diff(a, b, prefix, &mut d);
            for d in d {
                lines.push(format!("{}\n        {}: {}\n        {}: {}", d.path, left.label, show(&d.left), right.label, show(&d.right)));
            }
        };
        let gap = gap((dl, dr), &gaps);
        if gap.is_some()
            && let Some(id) = &call.id
        {
            gaps.insert(id.clone());
        }
        match &call.expect_error {
            // What the emulator cannot answer is not compared; the requests still are.
            _ if gap.is_some() => {}
            Some(code) => {
                for (t, d) in [(left, dl), (right, dr)] {
                    if !matches!(&d.answer, Answer::Err { code: c, .. } if c == code) {
                        push("expected error", &json!(format!("{}: {code}", t.label)), &json!(summary(&d.answer)));
                    }
                }
            }
            None => {
                if let (Answer::Err { .. }, Answer::Err { .. }) = (&dl.answer, &dr.answer) {
                    // Equal or not: a call meant to succeed failed, so it compared nothing.
                    notes.push(format!(
                        "both sides failed (the corpus or the emulator is wrong)\n        {}: {}\n        {}: {}",
                        left.label,
                        summary(&dl.answer),
                        right.label,
                        summary(&dr.answer)
                    ));
                }
            }
        }
        if gap.is_none() {
            push("response", &nl[i].1, &nr[i].1);
        }
        let (ql, qr) = (&nl[i].0, &nr[i].0);
        if ql.len() != qr.len() {
            push("requests.count", &json!(ql.len()), &json!(qr.len()));
        }
        for (k, (a, b)) in ql.iter().zip(qr).enumerate() {
            push(&format!("request[{k}]"), a, b);
        }
        notes.append(&mut lines);
        let mut lines = notes;
        let verdict = match (gap, lines.is_empty()) {
            (Some(why), true) => Verdict::Gap(why),
            (Some(why), false) => {
                lines.insert(0, format!("(a gap: {why}; but the requests differ)"));
                Verdict::Differs(lines)
            }
            (None, true) => Verdict::Equal,
            (None, false) => Verdict::Differs(lines),
        };
        out.push(Outcome { name, service: call.service.clone(), verdict });
    }
    out
}
