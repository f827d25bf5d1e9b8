//! The ledger: an append-only JSON-lines file of what labrun changed, written and flushed
//! before the next step starts, so `labrun down` can undo it even after a crash.
//!
//! One file per target (endpoint + account + region) under `.labrun/` beside the labs. Undoing
//! an entry appends an `undone` record instead of rewriting the file, so an interrupted `down`
//! resumes where it stopped.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub run_id: String,
    pub workshop: String,
    pub chapter: String,
    pub step: String,
    /// The call that made the change, e.g. `ec2:CreateVpc`.
    pub call: String,
    /// What `down` calls to reverse it.
    pub undo_call: String,
    pub undo_params: Value,
    /// A short description for people: `vpc-0abc (Lab VPC)`.
    pub resource: String,
    pub at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a line is built, written and dropped; boxing buys nothing
enum Line {
    Entry(Entry),
    Undone { undone: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("ledger {path}: {source}")]
pub struct LedgerError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

pub struct Ledger {
    path: PathBuf,
    file: Mutex<File>,
    next_seq: Mutex<u64>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger `dir/ledger-<key>.jsonl`.
    pub fn open(dir: &Path, key: &str) -> Result<Self, LedgerError> {
        let path = dir.join(format!("ledger-{key}.jsonl"));
        let err = |source| LedgerError { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(err)?;
        let existing = read_lines(&path).map_err(err)?;
        let next = existing
            .iter()
            .map(|l| match l {
                Line::Entry(e) => e.seq,
                Line::Undone { undone } => *undone,
            })
            .max()
            .map_or(1, |m| m + 1);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(err)?;
        Ok(Ledger { path, file: Mutex::new(file), next_seq: Mutex::new(next) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and flushes an entry; returns its sequence number.
    pub fn record(&self, mut entry: Entry) -> Result<u64, LedgerError> {
        let mut seq = self.next_seq.lock().expect("ledger lock");
        entry.seq = *seq;
        *seq += 1;
        self.write(&Line::Entry(entry.clone()))?;
        Ok(entry.seq)
    }

    pub fn mark_undone(&self, seq: u64) -> Result<(), LedgerError> {
        self.write(&Line::Undone { undone: seq })
    }

    fn write(&self, line: &Line) -> Result<(), LedgerError> {
        let err = |source| LedgerError { path: self.path.clone(), source };
        let mut text = serde_json::to_string(line).expect("ledger lines serialise");
        text.push('\n');
        let mut f = self.file.lock().expect("ledger lock");
        f.write_all(text.as_bytes()).map_err(err)?;
        f.flush().map_err(err)?;
        f.sync_data().map_err(err)
    }

    /// Entries not yet undone, newest first.
    pub fn outstanding(&self) -> Result<Vec<Entry>, LedgerError> {
        let lines = read_lines(&self.path).map_err(|source| LedgerError { path: self.path.clone(), source })?;
        let undone: std::collections::HashSet<u64> =
            lines.iter().filter_map(|l| if let Line::Undone { undone } = l { Some(*undone) } else { None }).collect();
        let mut entries: Vec<Entry> = lines
            .into_iter()
            .filter_map(|l| if let Line::Entry(e) = l { Some(e) } else { None })
            .filter(|e| !undone.contains(&e.seq))
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
        Ok(entries)
    }
}

/// Reads what parses; a torn last line (a crash mid-write) is skipped, not fatal.
fn read_lines(path: &Path) -> std::io::Result<Vec<Line>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if let Ok(l) = serde_json::from_str::<Line>(&line) {
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

    fn entry(step: &str) -> Entry {
        Entry {
            seq: 0,
            run_id: "r1".into(),
            workshop: "w".into(),
            chapter: "2".into(),
            step: step.into(),
            call: "ec2:CreateVpc".into(),
            undo_call: "ec2:DeleteVpc".into(),
            undo_params: serde_json::json!({"VpcId": "vpc-1"}),
            resource: "vpc-1".into(),
            at: 0,
        }
    }

    #[test]
    fn outstanding_is_newest_first_and_survives_reopen_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path(), "k").unwrap();
        let a = l.record(entry("a")).unwrap();
        let b = l.record(entry("b")).unwrap();
        l.record(entry("c")).unwrap();
        l.mark_undone(b).unwrap();
        drop(l);
        // A crash in the middle of a write leaves half a line.
        let path = dir.path().join("ledger-k.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\": 9, \"run_").unwrap();
        let l = Ledger::open(dir.path(), "k").unwrap();
        let steps: Vec<String> = l.outstanding().unwrap().into_iter().map(|e| e.step).collect();
        assert_eq!(steps, ["c", "a"]);
        let d = l.record(entry("d")).unwrap();
        assert!(d > a + 2, "sequence continues after reopen");
    }
}
