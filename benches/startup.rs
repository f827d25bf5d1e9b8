//! Start-up: `labrun --version` next to `true` (the cost of spawning any process), median of
//! 50 runs each, interleaved. Target: labrun under 10 ms.
//!
//! Run: `cargo bench --bench startup`

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn time(cmd: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let s = Command::new(cmd).args(args).stdout(Stdio::null()).status().unwrap();
    assert!(s.success());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let labrun = env!("CARGO_BIN_EXE_labrun");
    let (mut base, mut ours, mut validate) = (Vec::new(), Vec::new(), Vec::new());
    let labs = concat!(env!("CARGO_MANIFEST_DIR"), "/labs");
    for _ in 0..50 {
        base.push(time("true", &[]));
        ours.push(time(labrun, &["--version"]));
        validate.push(time(labrun, &["validate", labs]));
    }
    println!("start-up (median of 50)");
    println!("  baseline: true                     {:>6.2} ms", median(base));
    println!("  labrun --version                   {:>6.2} ms   (target < 10 ms)", median(ours));
    println!("  labrun validate labs/ (27 chapters) {:>5.2} ms", median(validate));
}
