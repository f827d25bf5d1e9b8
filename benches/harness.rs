//! The emulator and `labrun test`: LocalStack's cold install (a fresh cache folder), cold
//! start (first start after the install: to the first answered EC2 call), warm start (again,
//! installed), and `labrun test labs/` over the whole workshop with 1 and with 2 jobs.
//! Targets: warm start to first answered call under 8 s; the workshop tested in under 60 s.
//!
//! Run: `cargo bench --bench harness` (needs python3 and PyPI; takes a few minutes)

use labrun_harness::emulator::{self, Options};
use std::process::Command;
use std::time::{Duration, Instant};

fn first_ec2_answer(endpoint: &str) -> Duration {
    let t = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let b =
            labrun_aws::AwsBackend::connect(labrun_aws::Connect::emulator(endpoint, "ap-southeast-1", Some("123123123123"))).await.unwrap();
        let op = labrun_lab::catalog::operation("ec2:DescribeVpcs").unwrap();
        labrun_exec::Backend::call(&b, op, &serde_json::json!({})).await.unwrap();
    });
    t.elapsed()
}

fn start(cache: &std::path::Path) -> (emulator::Emulator, Duration, Duration) {
    let quiet = |_: &str| {};
    let opts = Options {
        endpoint: None,
        cache_dir: cache.into(),
        allow_container: false,
        progress: &quiet,
        watch_pid: Some(std::process::id()),
        instance: "bench",
    };
    let t = Instant::now();
    let e = emulator::up(&opts).unwrap();
    let healthy = t.elapsed();
    let first = first_ec2_answer(&e.endpoint);
    (e, healthy, healthy + first)
}

fn main() {
    let cache = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let quiet = |_: &str| {};
    emulator::ensure_venv(cache.path(), &quiet).expect("install LocalStack");
    let install = t.elapsed();
    let (cold, cold_health, cold_first) = start(cache.path());
    if let Some(pid) = cold.pid {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        std::thread::sleep(Duration::from_secs(6));
    }
    let (warm, warm_health, warm_first) = start(cache.path());
    println!("emulator (LocalStack {} on the host)", emulator::LOCALSTACK_VERSION);
    println!("  cold install (pip, from the lock)  {:>7.1} s", install.as_secs_f64());
    println!("  cold start: healthy / first EC2    {:>7.1} s / {:.1} s", cold_health.as_secs_f64(), cold_first.as_secs_f64());
    println!(
        "  warm start: healthy / first EC2    {:>7.1} s / {:.1} s   (target < 8 s)",
        warm_health.as_secs_f64(),
        warm_first.as_secs_f64()
    );

    let labs = concat!(env!("CARGO_MANIFEST_DIR"), "/labs");
    let mut times = Vec::new();
    for jobs in ["1", "2"] {
        let t = Instant::now();
        let out =
            Command::new(env!("CARGO_BIN_EXE_labrun")).args(["test", labs, "--jobs", jobs, "--endpoint", &warm.endpoint]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        times.push((jobs, t.elapsed()));
    }
    println!("labrun test labs/ (19 chapters, each with its prerequisites, in its own account)");
    for (jobs, t) in &times {
        println!("  --jobs {jobs}                           {:>7.1} s   (target < 60 s)", t.as_secs_f64());
    }
    println!("  speed-up with 2 jobs               {:>7.2}x", times[0].1.as_secs_f64() / times[1].1.as_secs_f64());
}
