//! The seed workshop under real-AWS conditions: `labrun test labs/ --faults SEED` puts the
//! realism proxy between labrun and the emulator (throttling, 5xx, resets, answers lost after
//! the request was processed, eventual consistency). Every chapter must pass, with no
//! duplicate resource and an account as empty after `down` as before (the test protocol
//! checks both), for several seeds.

use crate::common::*;

#[test]
fn the_workshop_passes_under_injected_faults_for_several_seeds() {
    // Three seeds at once: LocalStack is the bottleneck either way, and each run uses
    // accounts of its own.
    let runs: Vec<_> = [11u64, 22, 33]
        .iter()
        .map(|seed| {
            let child = labrun()
                .current_dir(repo())
                .args(["test", "labs/", "--endpoint", &endpoint(), "--faults", &seed.to_string(), "--fault-profile", "quick"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (seed, child)
        })
        .collect();
    for (seed, child) in runs {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "seed {seed}\n{stdout}\n{stderr}");
        assert!(stdout.contains("test: 19 passed, 0 failed"), "seed {seed}\n{stdout}");
        // The faults really happened: the line counts them, and none of the kinds is zero.
        let line =
            stdout.lines().find(|l| l.starts_with("faults injected:")).unwrap_or_else(|| panic!("seed {seed}: no fault summary\n{stdout}"));
        for kind in ["throttled", "5xx", "reset", "answer(s) lost after processing", "not yet consistent", "state(s) held back"] {
            let n: u64 = line
                .split(", ")
                .find(|part| part.ends_with(kind))
                .and_then(|part| part.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(n > 0, "seed {seed}: no {kind} injected: {line}");
        }
    }
}
