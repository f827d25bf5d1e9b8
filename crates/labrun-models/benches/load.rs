//! What a service's model costs the first time a process asks for it, for the two services the
//! validate bench's workshop uses and the next largest: `load()` (gunzip, parse the operations,
//! find the shapes), then parsing every shape (what a run pays for the few it reaches). The
//! baseline in the same run is gunzipping the same service-2 file and scanning its JSON without
//! building anything.
//!
//! Run: `cargo bench -p labrun-models --bench load`

use std::io::Read;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    println!("models: first load of a service in this process; baseline median of {RUNS}");
    for s in ["ec2", "iam", "s3"] {
        let gz = std::fs::read(format!("{}/models/{s}/service-2.json.gz", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut json = Vec::new();
        let baseline = median(
            (0..RUNS)
                .map(|_| {
                    let t = Instant::now();
                    json.clear();
                    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut json).unwrap();
                    std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&json).unwrap());
                    t.elapsed()
                })
                .collect(),
        );
        let t = Instant::now();
        let svc = labrun_models::load(s).unwrap();
        let load = t.elapsed();
        let t = Instant::now();
        let shapes = svc.shape_names().filter(|n| svc.shape(n).is_some()).count();
        let all = t.elapsed();
        println!("  {s}: service-2 {} KB gzip, {} KB JSON, {shapes} shapes", gz.len() / 1000, json.len() / 1000);
        println!("    baseline: gunzip + scan the JSON   {:>8.1} ms", ms(baseline));
        println!("    load()                             {:>8.1} ms", ms(load));
        println!("    then parse every shape             {:>8.1} ms", ms(all));
    }
}
