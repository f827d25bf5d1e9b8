//! The ledger: an append-only JSON-lines file of what labrun changed, so `labrun down` can undo
//! it even after a crash.
//!
//! One file per resolved target (host, account, region) under `.labrun/` beside the labs. Its
//! first line names the target. Before a call that creates something, an `intent` line is
//! written (write-ahead): if the answer is lost, `down` still knows what may exist and looks it
//! up. After the call, an entry with the computed undo is written, or a `resolved` line when
//! the call certainly did nothing. Undoing appends an `undone` line instead of rewriting the
//! file, so an interrupted `down` resumes where it stopped.
//!
//! Several labrun processes may share a ledger: every append takes an exclusive lock on the
//! file (`File::lock`, an advisory lock that dies with the process), seals a torn last line
//! left by a crash, writes and syncs. Ids are random, so two processes never collide; the order
//! of lines in the file is the order things happened.

use crate::backend::TargetInfo;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A change labrun made, with the call that reverses it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Unique within the ledger (ledgers written before ids existed used a sequence number).
    #[serde(alias = "seq", deserialize_with = "id_from_any")]
    pub id: String,
    /// The intent this entry completes, when one was written before the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    pub run_id: String,
    pub workshop: String,
    pub chapter: String,
    pub step: String,
    /// The chapters the user addressed in the run that made this change: a prerequisite built
    /// for `labs/3.2` is undone by `labrun down labs/3.2`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selection: Vec<String>,
    /// The call that made the change, e.g. `ec2:CreateVpc`.
    pub call: String,
    /// What `down` calls to reverse it.
    pub undo_call: String,
    pub undo_params: Value,
    /// A short description for people: `VpcId=vpc-0abc`.
    pub resource: String,
    pub at: u64,
}

/// Written before a call that creates something: what was asked, so the result can be found
/// even if the answer never arrives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Intent {
    pub id: String,
    pub run_id: String,
    pub workshop: String,
    pub chapter: String,
    pub step: String,
    /// The `labrun:step` tag value the create carries (`chapter/step`, `/n` for a `for_each` item).
    pub tag_step: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selection: Vec<String>,
    pub call: String,
    /// The rendered request, tags and client token included.
    pub request: Value,
    /// For a restore: the value read before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The step's own `cleanup: {call, with}`, rendered before the call (its parameters can
    /// only use earlier steps and variables), for `down` to use if the answer is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<(String, Value)>,
    pub at: u64,
}

impl Intent {
    /// True when `down` should act on this intent for these chapters (`None`: all).
    pub fn concerns(&self, workshop: &str, chapters: Option<&[String]>) -> bool {
        concerns(&self.workshop, &self.chapter, &self.selection, workshop, chapters)
    }
}

impl Entry {
    pub fn concerns(&self, workshop: &str, chapters: Option<&[String]>) -> bool {
        concerns(&self.workshop, &self.chapter, &self.selection, workshop, chapters)
    }
}

/// The chapter itself, or a prerequisite built by a run that addressed one of the chapters
/// (a chapter the run addressed alongside is not "built for" it: `down labs/3.2.1` leaves
/// 3.2.2 to `down labs/3.2.2`, even when `labrun labs/3.2` built both).
fn concerns(w: &str, chapter: &str, selection: &[String], workshop: &str, chapters: Option<&[String]>) -> bool {
    w == workshop
        && chapters.is_none_or(|c| {
            c.iter().any(|x| x == chapter) || (!selection.iter().any(|s| s == chapter) && c.iter().any(|x| selection.contains(x)))
        })
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a line is built, written and dropped; boxing buys nothing
enum Line {
    Header {
        target: TargetInfo,
    },
    Intent {
        intent: Intent,
    },
    Resolved {
        resolved: String,
    },
    Undone {
        #[serde(deserialize_with = "id_from_any")]
        undone: String,
    },
    Entry(Entry),
}

/// Ids are strings; the first ledgers used numbers.
fn id_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("an id must be a string or a number, found {other}"))),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("ledger {path}: {source}")]
pub struct LedgerError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Something a ledger still holds for `down`.
#[derive(Debug, Clone)]
pub enum Pending {
    /// A change with its undo.
    Entry(Entry),
    /// A call that never reported back: what it asked for may or may not exist.
    Intent(Intent),
}

impl Pending {
    pub fn concerns(&self, workshop: &str, chapters: Option<&[String]>) -> bool {
        match self {
            Pending::Entry(e) => e.concerns(workshop, chapters),
            Pending::Intent(i) => i.concerns(workshop, chapters),
        }
    }
    pub fn run_id(&self) -> &str {
        match self {
            Pending::Entry(e) => &e.run_id,
            Pending::Intent(i) => &i.run_id,
        }
    }
}

pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// Opens (creating if needed) `dir/ledger-<target key>.jsonl`; a new file starts with a
    /// line naming the target.
    pub fn open(dir: &Path, target: &TargetInfo) -> Result<Self, LedgerError> {
        let path = dir.join(format!("ledger-{}.jsonl", target.ledger_key()));
        let err = |source| LedgerError { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(err)?;
        let ledger = Ledger { path };
        ledger.append(&[], Some(target))?;
        Ok(ledger)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the intent before the call; returns its id.
    pub fn intent(&self, mut intent: Intent) -> Result<String, LedgerError> {
        intent.id = new_id();
        let id = intent.id.clone();
        self.append(&[Line::Intent { intent }], None)?;
        Ok(id)
    }

    /// The call behind an intent certainly changed nothing (or its entry says what it did).
    pub fn resolve(&self, intent: &str) -> Result<(), LedgerError> {
        self.append(&[Line::Resolved { resolved: intent.to_string() }], None)
    }

    /// Appends an entry (its id is assigned here); returns the id.
    pub fn record(&self, mut entry: Entry) -> Result<String, LedgerError> {
        entry.id = new_id();
        let id = entry.id.clone();
        self.append(&[Line::Entry(entry)], None)?;
        Ok(id)
    }

    pub fn mark_undone(&self, id: &str) -> Result<(), LedgerError> {
        self.append(&[Line::Undone { undone: id.to_string() }], None)
    }

    /// Takes the lock, seals a torn last line, writes `lines` (and the header if the file is
    /// empty and `header` is given), syncs, and lets the lock go.
    fn append(&self, lines: &[Line], header: Option<&TargetInfo>) -> Result<(), LedgerError> {
        let err = |source| LedgerError { path: self.path.clone(), source };
        let mut f = OpenOptions::new().create(true).read(true).append(true).open(&self.path).map_err(err)?;
        f.lock().map_err(err)?;
        let result = (|| {
            let len = f.metadata()?.len();
            let mut text = String::new();
            if len > 0 {
                let mut last = [0u8; 1];
                f.seek(SeekFrom::Start(len - 1))?;
                f.read_exact(&mut last)?;
                // A crash mid-write left half a line: end it, so the next line stands alone.
                if last[0] != b'\n' {
                    text.push('\n');
                }
            } else if let Some(target) = header {
                text.push_str(&line_text(&Line::Header { target: target.clone() }));
            }
            for l in lines {
                text.push_str(&line_text(l));
            }
            if !text.is_empty() {
                f.write_all(text.as_bytes())?;
                f.sync_data()?;
            }
            Ok(())
        })();
        let _ = f.unlock();
        result.map_err(err)
    }

    /// The target named in the file's first line, if it has one.
    pub fn target(&self) -> Option<TargetInfo> {
        read_lines(&self.path).ok()?.into_iter().find_map(|l| if let Line::Header { target } = l { Some(target) } else { None })
    }

    /// Entries not yet undone and intents never resolved, newest first.
    pub fn outstanding(&self) -> Result<Vec<Pending>, LedgerError> {
        let lines = read_lines(&self.path).map_err(|source| LedgerError { path: self.path.clone(), source })?;
        let mut closed: HashSet<String> = HashSet::new();
        for l in &lines {
            match l {
                Line::Undone { undone } => {
                    closed.insert(undone.clone());
                }
                Line::Resolved { resolved } => {
                    closed.insert(resolved.clone());
                }
                Line::Entry(e) => {
                    if let Some(i) = &e.intent {
                        closed.insert(i.clone());
                    }
                }
                _ => {}
            }
        }
        Ok(lines
            .into_iter()
            .rev()
            .filter_map(|l| match l {
                Line::Entry(e) if !closed.contains(&e.id) => Some(Pending::Entry(e)),
                Line::Intent { intent } if !closed.contains(&intent.id) => Some(Pending::Intent(intent)),
                _ => None,
            })
            .collect())
    }

    /// `(chapter, run)` of every prerequisite a run built for these chapters (undone or not):
    /// the sweep also removes what still carries those tags.
    pub fn built_for(&self, workshop: &str, chapters: &[String]) -> Result<Vec<(String, String)>, LedgerError> {
        let lines = read_lines(&self.path).map_err(|source| LedgerError { path: self.path.clone(), source })?;
        let mut out: Vec<(String, String)> = Vec::new();
        for l in lines {
            let (chapter, run) = match &l {
                Line::Entry(e) if !chapters.contains(&e.chapter) && e.concerns(workshop, Some(chapters)) => (&e.chapter, &e.run_id),
                Line::Intent { intent: i } if !chapters.contains(&i.chapter) && i.concerns(workshop, Some(chapters)) => {
                    (&i.chapter, &i.run_id)
                }
                _ => continue,
            };
            let pair = (chapter.clone(), run.clone());
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
        Ok(out)
    }
}

/// Other ledgers in `dir` (not `except`) that still hold something for `workshop`: their path,
/// target (when recorded) and how many entries and intents are outstanding.
pub fn others(dir: &Path, workshop: &str, except: &Path) -> Vec<(PathBuf, Option<TargetInfo>, usize)> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let is_ledger = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ledger-") && n.ends_with(".jsonl"));
        if !is_ledger || path == except {
            continue;
        }
        let ledger = Ledger { path: path.clone() };
        let Ok(pending) = ledger.outstanding() else { continue };
        let n = pending.iter().filter(|p| p.concerns(workshop, None)).count();
        if n > 0 {
            out.push((path, ledger.target(), n));
        }
    }
    out
}

fn line_text(line: &Line) -> String {
    let mut text = serde_json::to_string(line).expect("ledger lines serialise");
    text.push('\n');
    text
}

/// 16 random hex digits: unique across processes without coordination.
fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Reads what parses; a torn or foreign line is skipped, not fatal.
fn read_lines(path: &Path) -> std::io::Result<Vec<Line>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if let Ok(l) = serde_json::from_slice::<Line>(&line) {
            out.push(l);
        }
    }
    Ok(out)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::TargetKind;

    fn target() -> TargetInfo {
        TargetInfo { kind: TargetKind::Emulator, endpoint: Some("http://127.0.0.1:4610".into()), account: "1".into(), region: "r".into() }
    }

    fn entry(step: &str) -> Entry {
        Entry {
            id: String::new(),
            intent: None,
            run_id: "r1".into(),
            workshop: "w".into(),
            chapter: "2".into(),
            step: step.into(),
            selection: Vec::new(),
            call: "ec2:CreateVpc".into(),
            undo_call: "ec2:DeleteVpc".into(),
            undo_params: serde_json::json!({"VpcId": "vpc-1"}),
            resource: "vpc-1".into(),
            at: 0,
        }
    }

    fn intent(step: &str) -> Intent {
        Intent {
            id: String::new(),
            run_id: "r1".into(),
            workshop: "w".into(),
            chapter: "2".into(),
            step: step.into(),
            tag_step: step.into(),
            selection: vec!["3.2".into()],
            call: "ec2:CreateVpc".into(),
            request: serde_json::json!({"CidrBlock": "10.10.0.0/16"}),
            before: None,
            cleanup: None,
            at: 0,
        }
    }

    fn steps(l: &Ledger) -> Vec<String> {
        l.outstanding()
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Pending::Entry(e) => e.step,
                Pending::Intent(i) => format!("intent {}", i.step),
            })
            .collect()
    }

    #[test]
    fn outstanding_is_newest_first_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), &target()).unwrap();
        l.record(entry("a")).unwrap();
        let b = l.record(entry("b")).unwrap();
        l.record(entry("c")).unwrap();
        l.mark_undone(&b).unwrap();
        drop(l);
        let l = Ledger::open(dir.path(), &target()).unwrap();
        assert_eq!(steps(&l), ["c", "a"]);
        assert_eq!(l.target(), Some(target()), "the first line names the target");
    }

    /// A crash mid-write leaves half a line; the next append must not be swallowed by it.
    #[test]
    fn a_torn_last_line_is_sealed_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), &target()).unwrap();
        l.record(entry("a")).unwrap();
        let mut f = OpenOptions::new().append(true).open(l.path()).unwrap();
        f.write_all(b"{\"id\": \"9\", \"run_").unwrap();
        drop(f);
        l.record(entry("after-crash")).unwrap();
        assert_eq!(steps(&l), ["after-crash", "a"]);
    }

    #[test]
    fn intents_stay_outstanding_until_an_entry_or_a_resolution_closes_them() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), &target()).unwrap();
        let lost = l.intent(intent("lost")).unwrap();
        let failed = l.intent(intent("failed")).unwrap();
        let done = l.intent(intent("done")).unwrap();
        l.resolve(&failed).unwrap();
        l.record(Entry { intent: Some(done), ..entry("done") }).unwrap();
        let o = l.outstanding().unwrap();
        assert_eq!(o.len(), 2);
        let Pending::Entry(e) = &o[0] else { panic!("newest first: the entry") };
        assert_eq!(e.step, "done");
        let Pending::Intent(i) = &o[1] else { panic!("then the lost intent") };
        assert_eq!(i.id, lost);
        // A prerequisite built for 3.2 concerns `down labs/3.2`, not `down labs/4`.
        assert!(o[1].concerns("w", Some(&["3.2".to_string()])));
        assert!(!o[1].concerns("w", Some(&["4".to_string()])));
        assert_eq!(l.built_for("w", &["3.2".to_string()]).unwrap(), [("2".to_string(), "r1".to_string())]);
        // 3.2 and 3.2.1 addressed together: 3.2.1 was not built *for* 3.2.
        let sibling = Intent { chapter: "3.2.1".into(), selection: vec!["3.2".into(), "3.2.1".into()], ..intent("x") };
        assert!(!Pending::Intent(sibling.clone()).concerns("w", Some(&["3.2".to_string()])));
        assert!(Pending::Intent(sibling).concerns("w", Some(&["3.2.1".to_string()])));
    }

    /// Ledgers written by the first release (numeric `seq`, numeric `undone`) still read.
    #[test]
    fn first_release_ledgers_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let t = target();
        let path = dir.path().join(format!("ledger-{}.jsonl", t.ledger_key()));
        let old = r#"{"seq":1,"run_id":"r","workshop":"w","chapter":"2","step":"a","call":"ec2:CreateVpc","undo_call":"ec2:DeleteVpc","undo_params":{"VpcId":"vpc-1"},"resource":"vpc-1","at":0}
{"seq":2,"run_id":"r","workshop":"w","chapter":"2","step":"b","call":"ec2:CreateVpc","undo_call":"ec2:DeleteVpc","undo_params":{"VpcId":"vpc-2"},"resource":"vpc-2","at":0}
{"undone":1}
"#;
        std::fs::write(&path, old).unwrap();
        let l = Ledger::open(dir.path(), &t).unwrap();
        assert_eq!(steps(&l), ["b"]);
        l.mark_undone("2").unwrap();
        assert!(l.outstanding().unwrap().is_empty());
    }

    /// Two processes appending at once: every entry survives with its own id.
    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    // Each thread opens its own handle, as a second process would.
                    let l = Ledger::open(&d, &target()).unwrap();
                    (0..50).map(|i| l.record(entry(&format!("{t}-{i}"))).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let ids: HashSet<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        assert_eq!(ids.len(), 200);
        let l = Ledger::open(dir.path(), &target()).unwrap();
        assert_eq!(l.outstanding().unwrap().len(), 200);
        let text = std::fs::read_to_string(l.path()).unwrap();
        assert_eq!(text.lines().filter(|x| x.contains("\"target\"")).count(), 1, "one header");
    }

    #[test]
    fn other_ledgers_of_the_workshop_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ledger::open(dir.path(), &target()).unwrap();
        let other = TargetInfo { endpoint: Some("http://127.0.0.1:4999".into()), ..target() };
        let b = Ledger::open(dir.path(), &other).unwrap();
        b.record(entry("x")).unwrap();
        let found = others(dir.path(), "w", a.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, Some(other));
        assert_eq!(found[0].2, 1);
        assert!(others(dir.path(), "another-workshop", a.path()).is_empty());
    }
}
