//! Embeds every service under models/ (as refreshed by scripts/refresh-models.py): one table
//! entry per service folder, so a refresh that adds or drops a service needs no code change.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read at run time, not with env!(): a build script compiled for one checkout is reused by
    // another that shares the target directory, and must look in its own.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("models");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut services: Vec<String> = std::fs::read_dir(&dir)
        .expect("models/ beside Cargo.toml")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    services.sort();
    let mut out = String::from("/// (service, API version, service-2, paginators-1, waiters-2), gzip-compressed.\n");
    out.push_str("pub(crate) static EMBEDDED: &[(&str, &str, &[u8], Option<&[u8]>, Option<&[u8]>)] = &[\n");
    for s in &services {
        let folder = dir.join(s);
        println!("cargo:rerun-if-changed={}", folder.display());
        let version = std::fs::read_to_string(folder.join("API_VERSION")).expect("API_VERSION").trim().to_string();
        let file = |name: &str| {
            let p = folder.join(name);
            if p.exists() { format!("Some(include_bytes!({:?}))", p.display().to_string()) } else { "None".to_string() }
        };
        let service = folder.join("service-2.json.gz");
        assert!(service.exists(), "{} has no service-2.json.gz", folder.display());
        writeln!(
            out,
            "    ({s:?}, {version:?}, include_bytes!({:?}), {}, {}),",
            service.display().to_string(),
            file("paginators-1.json.gz"),
            file("waiters-2.json.gz")
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}
