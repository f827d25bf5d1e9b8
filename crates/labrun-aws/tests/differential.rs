//! Differential test: labrun's model-driven call path (`AwsBackend::call_model`) against boto3,
//! on the same LocalStack.
//!
//! The corpus (`differential/corpus.json`, 100+ calls over 14 services and all five protocols)
//! runs twice: once through labrun, once through boto3 (`differential/boto3_side.py`, run with
//! the Python of the LocalStack virtual environment the harness installs, whose botocore is the
//! version labrun's models come from). Each side has its own random account and run token and
//! its own recording proxy in front of the emulator. Per call, the responses must be equal
//! after normalising what two runs generate (`differential/normalize.rs`), and the requests
//! must be serialised alike (`differential/wire.rs`). A call the emulator cannot do on both
//! sides (501, or LocalStack failing inside) is a gap: printed, never counted as a pass.
//!
//! `boto3_agrees_with_itself_across_accounts` runs boto3 on both sides: it checks that the
//! normalisation is not too strict (two honest runs are equal) and, by changing one response
//! value and one request value, that it is not too loose.
//!
//! Run: `cargo test -p labrun-aws --test differential -- --nocapture` (starts its own LocalStack,
//! or uses `LABRUN_TEST_ENDPOINT`; `LABRUN_BOTO3_PYTHON` picks another Python for boto3). Both
//! transcripts are written to `$CARGO_TARGET_TMPDIR/differential/` for reading after a failure.

#[path = "differential/compare.rs"]
mod compare;
#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/normalize.rs"]
mod normalize;
#[path = "differential/proxy.rs"]
mod proxy;
#[path = "differential/wire.rs"]
mod wire;

use compare::{Outcome, Verdict};
use corpus::{Answer, Boto3Side, Corpus, Env, Side, Transcript};
use labrun_aws::{AwsBackend, Connect};
use proxy::RecordingProxy;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};

const REGION: &str = "us-east-1";

fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
    h.finish()
}

/// Two distinct fresh accounts (LocalStack takes a 12-digit access key id as the account).
fn two_accounts() -> (String, String) {
    let a = 100_000_000_000 + random() % 900_000_000_000;
    let mut b = 100_000_000_000 + random() % 900_000_000_000;
    if b == a {
        b = 100_000_000_000 + (b + 1) % 900_000_000_000;
    }
    (a.to_string(), b.to_string())
}

/// Lowercase letters that are not hex digits, so a run token never looks like a generated id.
fn run_token() -> String {
    const LETTERS: &[u8] = b"ghjkmnpqrstvwxyz";
    let mut x = random();
    (0..10)
        .map(|_| {
            let c = LETTERS[(x % 16) as usize] as char;
            x /= 16;
            c
        })
        .collect()
}

/// The emulator, and the corpus services it does not enable (their calls answer 501 on both
/// sides: gaps; the coverage rule in `report` still demands ten services compared).
async fn emulator(corpus: &Corpus) -> (String, Vec<String>) {
    let endpoint = labrun_harness::emulator::for_tests().endpoint.clone();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri: hyper::Uri = format!("{endpoint}/_localstack/health").parse().unwrap();
    let health = match client.get(uri).await {
        Ok(r) => http_body_util::BodyExt::collect(r.into_body()).await.map(|b| b.to_bytes()).unwrap_or_default(),
        Err(e) => panic!("the emulator at {endpoint} does not answer: {e}"),
    };
    let health: Value = serde_json::from_slice(&health).unwrap_or_default();
    let services: BTreeSet<&str> = corpus.calls.iter().map(|c| c.service.as_str()).collect();
    let off =
        services.iter().filter(|s| matches!(health["services"][**s].as_str(), None | Some("disabled"))).map(|s| s.to_string()).collect();
    (endpoint, off)
}

/// The Python of LocalStack's virtual environment (installed by the harness from its pinned
/// lock if missing): it carries the botocore whose models labrun embeds. `LABRUN_BOTO3_PYTHON`
/// names another (its botocore must be that version all the same).
fn boto3_python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("LABRUN_BOTO3_PYTHON") {
        return p.into();
    }
    let progress = |m: &str| eprintln!("differential: {m}");
    let venv = labrun_harness::emulator::ensure_venv(&labrun_harness::default_cache_dir(), &progress)
        .unwrap_or_else(|e| panic!("no LocalStack virtual environment for boto3: {e}"));
    venv.join("bin/python")
}

struct LabrunSide(AwsBackend);

#[async_trait::async_trait]
impl Side for LabrunSide {
    async fn call(&mut self, service: &str, operation: &str, params: &Value) -> Answer {
        match self.0.call_model(service, operation, params).await {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Err { code: e.code, message: e.message },
        }
    }
}

fn env(account: &str, lambda_zip: &str, now_ms: u64) -> Env {
    Env { account: account.into(), region: REGION.into(), run: run_token(), lambda_zip: lambda_zip.into(), now_ms }
}

/// The test's Lambda package (the same bytes for both sides) and the time for log events.
fn shared() -> (String, u64) {
    let zip = corpus::zip(&[("index.py", "import json\n\ndef handler(event, context):\n    return {\"echo\": event}\n")]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
    (aws_smithy_types::base64::encode(&zip), now)
}

async fn boto3_run(
    python: &std::path::Path,
    endpoint: &str,
    label: &str,
    corpus: &Corpus,
    env: &Env,
) -> (Transcript, HashMap<String, String>) {
    let proxy = RecordingProxy::start(endpoint).await.unwrap();
    let mut side = Boto3Side::spawn(python, &proxy.url, &env.account, REGION);
    let models = include_str!("../../labrun-models/models/VERSION").trim();
    let botocore = side.botocore().await;
    assert_eq!(format!("botocore {botocore}"), models, "{} must run the botocore labrun's models come from", python.display());
    let t = corpus::run(label, corpus, &mut side, &proxy, env).await;
    (t, side.protocols.clone())
}

/// Writes both transcripts where a person can read them after a failure; returns the folder.
fn dump(corpus: &Corpus, sides: &[&Transcript]) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");
    let _ = std::fs::create_dir_all(&dir);
    for t in sides {
        let name: String = t.label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let text = serde_json::to_string_pretty(&t.dump(corpus)).unwrap_or_default();
        let _ = std::fs::write(dir.join(format!("{name}.json")), text);
    }
    dir.display().to_string()
}

/// The differences of all calls, the same difference (same path, list indexes aside, and same
/// values) once, with the calls it was seen in.
fn group(outcomes: &[Outcome]) -> Vec<(String, Vec<String>)> {
    let index = regex_lite::Regex::new(r"\[\d+\]").unwrap_or_else(|e| panic!("{e}"));
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for o in outcomes {
        let Verdict::Differs(lines) = &o.verdict else { continue };
        for l in lines {
            let (path, values) = l.split_once('\n').unwrap_or((l, ""));
            let what = format!("{}\n{values}", index.replace_all(path, "[*]"));
            match groups.iter_mut().find(|(w, _)| *w == what) {
                Some((_, calls)) if calls.last() != Some(&o.name) => calls.push(o.name.clone()),
                Some(_) => {}
                None => groups.push((what, vec![o.name.clone()])),
            }
        }
    }
    groups
}

/// Prints every outcome and the summary line; returns the failures.
fn report(outcomes: &[Outcome], protocols: &HashMap<String, String>, disabled: &[String]) -> Vec<String> {
    let mut failures = Vec::new();
    let (mut equal, mut gaps) = (0, 0);
    let mut covered: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for o in outcomes {
        let protocol = protocols.get(&o.service).map(String::as_str).unwrap_or("?");
        match &o.verdict {
            Verdict::Equal => {
                equal += 1;
                covered.entry(protocol).or_default().insert(&o.service);
                println!("  equal  {} ({protocol})", o.name);
            }
            Verdict::Gap(why) => {
                gaps += 1;
                println!("  GAP    {} ({protocol}): {why}", o.name);
            }
            Verdict::Differs(lines) => {
                covered.entry(protocol).or_default().insert(&o.service);
                let mut text = format!("{} ({protocol}):", o.name);
                for l in lines.iter().take(30) {
                    text.push_str(&format!("\n    {l}"));
                }
                if lines.len() > 30 {
                    text.push_str(&format!("\n    … and {} more", lines.len() - 30));
                }
                println!("  DIFFER {text}");
                failures.push(text);
            }
        }
    }
    let services: BTreeSet<&str> = covered.values().flatten().copied().collect();
    let groups = group(outcomes);
    if !groups.is_empty() {
        println!("differential: {} distinct differences in {} calls:", groups.len(), failures.len());
        for (what, calls) in &groups {
            println!("  {}× {what}\n      in: {}", calls.len(), calls.join(", "));
        }
    }
    println!("differential: {} calls, {equal} equal, {gaps} gaps", outcomes.len());
    println!("differential: compared {} services over {} protocols: {covered:?}", services.len(), covered.len());
    if outcomes.len() < 60 {
        failures.push(format!("only {} calls in the corpus; at least 60 are required", outcomes.len()));
    }
    if !disabled.is_empty() {
        println!("differential: services this emulator does not enable (their calls are gaps): {disabled:?}");
    }
    if services.len() < 10 {
        failures.push(format!(
            "only {} services compared (gaps aside); at least 10 are required (not enabled in the emulator: {disabled:?})",
            services.len()
        ));
    }
    for p in ["ec2", "query", "json", "rest-json", "rest-xml"] {
        if !covered.contains_key(p) {
            failures.push(format!("no call of the {p} protocol was compared"));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labrun_serialises_and_reads_like_boto3() {
    let corpus = Corpus::load();
    let (endpoint, disabled) = emulator(&corpus).await;
    let python = boto3_python();
    let (zip, now) = shared();
    let (labrun_account, boto3_account) = two_accounts();

    let (boto3, protocols) = boto3_run(&python, &endpoint, "boto3", &corpus, &env(&boto3_account, &zip, now)).await;

    let proxy = RecordingProxy::start(&endpoint).await.unwrap();
    let backend = AwsBackend::connect(Connect::emulator(&proxy.url, REGION, Some(&labrun_account))).await.unwrap();
    let labrun = corpus::run("labrun", &corpus, &mut LabrunSide(backend), &proxy, &env(&labrun_account, &zip, now)).await;

    let outcomes = compare::compare(&corpus, &labrun, &boto3);
    let failures = report(&outcomes, &protocols, &disabled);
    let dir = dump(&corpus, &[&labrun, &boto3]);
    assert!(failures.is_empty(), "labrun and boto3 differ (both transcripts are in {dir}):\n\n{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boto3_agrees_with_itself_across_accounts() {
    let corpus = Corpus::load();
    let (endpoint, disabled) = emulator(&corpus).await;
    let python = boto3_python();
    let (zip, now) = shared();
    let (a, b) = two_accounts();
    let (first, protocols) = boto3_run(&python, &endpoint, "boto3 (1st account)", &corpus, &env(&a, &zip, now)).await;
    let (mut second, _) = boto3_run(&python, &endpoint, "boto3 (2nd account)", &corpus, &env(&b, &zip, now)).await;

    let outcomes = compare::compare(&corpus, &first, &second);
    let failures = report(&outcomes, &protocols, &disabled);
    let dir = dump(&corpus, &[&first, &second]);
    assert!(
        failures.is_empty(),
        "two boto3 runs differ after normalisation (the normalisation is wrong; transcripts in {dir}):\n\n{}",
        failures.join("\n\n")
    );

    // Not too loose: one changed response value and one changed request value are found, and
    // nothing else is.
    let at = |op: &str| corpus.calls.iter().position(|c| c.op == op).unwrap_or_else(|| panic!("no {op} in the corpus"));
    let (describe, send) = (at("DescribeVpcs"), at("SendMessage"));
    if let Answer::Ok(v) = &mut second.calls[describe].answer {
        v["Vpcs"][0]["CidrBlock"] = Value::String("10.99.0.0/16".into());
    }
    let r = &mut second.calls[send].requests[0];
    r.body = bytes::Bytes::from(String::from_utf8_lossy(&r.body).replace("friends", "foes"));
    let mutated = compare::compare(&corpus, &first, &second);
    let differing: Vec<(&str, Vec<String>)> = mutated
        .iter()
        .filter_map(|o| match &o.verdict {
            Verdict::Differs(lines) => Some((
                o.name.as_str(),
                // Each difference's first line is its path.
                lines.iter().map(|l| l.lines().next().unwrap_or("").to_string()).filter(|l| !l.starts_with('(')).collect(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        differing,
        vec![
            (corpus.name(describe).as_str(), vec!["response.ok.Vpcs[0].CidrBlock".to_string()]),
            (corpus.name(send).as_str(), vec!["request[0].body.json.MessageBody".to_string()]),
        ],
        "the comparison must report exactly the two planted differences"
    );
}
