//! Finding or starting the emulator, in this order:
//! 1. an endpoint the user gives (`--endpoint`, `AWS_ENDPOINT_URL`), or a LocalStack already
//!    answering on 127.0.0.1:4566;
//! 2. the LocalStack labrun manages, if it is still running;
//! 3. a LocalStack container, when a Docker engine answers;
//! 4. LocalStack on the host: a Python virtual environment in the cache directory, installed
//!    once from the pinned lock, started with settings that keep it off global folders and DNS.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const LOCALSTACK_VERSION: &str = "4.13.1";
/// Pinned image for the container source; tags after 4.14 need an auth token.
pub const LOCALSTACK_IMAGE: &str = "localstack/localstack:4.13.1";
/// pip freeze of a working host install (Python 3.11; later LocalStack releases need 3.12).
pub const LOCK: &str = include_str!("../localstack-4.13.1.lock.txt");
/// The services LocalStack's community edition implements among those labrun has models of.
/// LocalStack loads each on first use, so listing them costs nothing at start-up. The others
/// (RDS, ELBv2, ECS, EKS, Cognito, ...) answer 501 "not enabled" there: an emulator gap.
/// Partial: lambda (no function ever becomes Active: no Docker).
const SERVICES: &str = "ec2,ssm,sts,iam,s3,lambda,apigateway,cloudformation,logs,cloudwatch,events,sns,sqs,kms,secretsmanager,route53,dynamodb,kinesis,stepfunctions";
/// On the host, DynamoDB, Kinesis and Step Functions are served by moto through
/// [`MOTO_PROVIDERS`]: LocalStack 4.13.1's own providers import `localstack/packages/api.py`,
/// which fails on Python 3.11 (`Lock | None`), and would download DynamoDB Local, kinesis-mock,
/// a JRE and JSONata on first use. A container runs LocalStack's own providers.
/// KMS too: LocalStack's own provider loads, but fails on a symmetric key (the default) on 3.11.
const HOST_PROVIDER_OVERRIDES: [(&str, &str); 4] = [
    ("PROVIDER_OVERRIDE_DYNAMODB", "moto"),
    ("PROVIDER_OVERRIDE_KINESIS", "moto"),
    ("PROVIDER_OVERRIDE_STEPFUNCTIONS", "moto"),
    ("PROVIDER_OVERRIDE_KMS", "moto"),
];
/// The plugin module registering those providers, put on the host emulator's `PYTHONPATH`
/// together with the package metadata LocalStack's plugin discovery reads its entry points from.
const MOTO_PROVIDERS: &str = include_str!("../localstack/labrun_localstack_moto.py");
const MOTO_PROVIDERS_ENTRY_POINTS: &str = "[localstack.aws.provider]\n\
     dynamodb:moto = labrun_localstack_moto:dynamodb_moto\n\
     kinesis:moto = labrun_localstack_moto:kinesis_moto\n\
     stepfunctions:moto = labrun_localstack_moto:stepfunctions_moto\n\
     kms:moto = labrun_localstack_moto:kms_moto\n";
const DEFAULT_LOCAL: &str = "http://127.0.0.1:4566";
/// A managed emulator stops by itself after this long, so none is left behind for good.
const MAX_LIFETIME_SECS: u64 = 4 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Given by the user, or found answering on the default port: labrun never stops it.
    External,
    Container,
    Host,
}

/// A running emulator labrun can use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Emulator {
    pub source: Source,
    pub endpoint: String,
    pub version: Option<String>,
    /// Process (host) or container id labrun started, if it did.
    pub pid: Option<u32>,
    pub container: Option<String>,
    /// Folder holding the emulator's files and log (host source).
    pub root: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "python3 was not found (looked for `{0}`); install Python 3.10 or newer (e.g. `apt-get install python3 python3-venv`), or start LocalStack yourself and pass --endpoint"
    )]
    NoPython(String),
    #[error("creating the Python virtual environment failed: {0}\nhint: on Debian/Ubuntu install the `python3-venv` package")]
    Venv(String),
    #[error("installing LocalStack {LOCALSTACK_VERSION} with pip failed (is PyPI reachable?):\n{0}")]
    Install(String),
    #[error("LocalStack did not start: {0}")]
    Start(String),
    #[error("the endpoint {0} does not answer")]
    Unreachable(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What the caller wants and where labrun keeps its files.
pub struct Options<'a> {
    /// `--endpoint` or `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    pub cache_dir: PathBuf,
    /// Try Docker before the host install.
    pub allow_container: bool,
    /// Progress lines for a person (install and start can take a while).
    pub progress: &'a (dyn Fn(&str) + Sync),
    /// Stop the started emulator once this process exits (test binaries); `None` leaves it
    /// running for the next command, until `labrun emulator down`.
    pub watch_pid: Option<u32>,
    /// Keep a separate managed emulator (and state file) under this name.
    pub instance: &'a str,
}

impl<'a> Options<'a> {
    /// The emulator the CLI manages: the given endpoint if any, else found or started (a
    /// container where Docker answers), kept running for later commands.
    pub fn managed(endpoint: Option<String>, progress: &'a (dyn Fn(&str) + Sync)) -> Self {
        Options { endpoint, cache_dir: default_cache_dir(), allow_container: true, progress, watch_pid: None, instance: "default" }
    }
}

/// labrun's cache folder: `LABRUN_CACHE_DIR`, else the user's cache directory.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("LABRUN_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("labrun")))
        .unwrap_or_else(|| std::env::temp_dir().join("labrun-cache"))
}

fn state_file(cache: &Path, instance: &str) -> PathBuf {
    cache.join(format!("emulator-{instance}.json"))
}

/// The managed emulator recorded in the state file, if its process still answers.
pub fn status(cache: &Path, instance: &str) -> Option<Emulator> {
    let text = std::fs::read_to_string(state_file(cache, instance)).ok()?;
    let emu: Emulator = serde_json::from_str(&text).ok()?;
    (healthy(&emu.endpoint).is_some()).then_some(emu)
}

/// Finds an emulator to use, starting the managed one if nothing else is there.
pub fn resolve(opts: &Options<'_>) -> Result<Emulator, HarnessError> {
    if let Some(endpoint) = &opts.endpoint {
        if !answers(endpoint) {
            return Err(HarnessError::Unreachable(endpoint.clone()));
        }
        let version = healthy(endpoint).flatten();
        return Ok(Emulator { source: Source::External, endpoint: endpoint.clone(), version, pid: None, container: None, root: None });
    }
    if let Some(version) = healthy(DEFAULT_LOCAL) {
        return Ok(Emulator { source: Source::External, endpoint: DEFAULT_LOCAL.into(), version, pid: None, container: None, root: None });
    }
    up(opts)
}

/// Starts the managed emulator (or returns the one already running).
pub fn up(opts: &Options<'_>) -> Result<Emulator, HarnessError> {
    if opts.watch_pid.is_none()
        && let Some(e) = status(&opts.cache_dir, opts.instance)
    {
        return Ok(e);
    }
    std::fs::create_dir_all(&opts.cache_dir)?;
    let emu = if opts.allow_container {
        match start_container(opts) {
            Ok(e) => e,
            Err(why) => {
                (opts.progress)(&format!("no container: {why}; running LocalStack on the host instead"));
                start_host(opts)?
            }
        }
    } else {
        start_host(opts)?
    };
    // A watched emulator belongs to one process and dies with it: nothing to record.
    if opts.watch_pid.is_none() {
        std::fs::write(state_file(&opts.cache_dir, opts.instance), serde_json::to_string_pretty(&emu).unwrap_or_default())?;
    }
    Ok(emu)
}

static TEST_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// What starting the test emulator reported (e.g. why no container was used).
pub fn for_tests_log() -> Vec<String> {
    TEST_LOG.lock().map(|l| l.clone()).unwrap_or_default()
}

/// One emulator per test binary: `LABRUN_TEST_ENDPOINT` if set, else one of its own, found the
/// way `labrun` finds one (a container when Docker answers, else LocalStack on the host), that
/// stops (and removes its files) when the test process exits. Panics when none can be had:
/// emulator tests fail, never skip.
pub fn for_tests() -> &'static Emulator {
    static EMULATOR: std::sync::OnceLock<Result<Emulator, String>> = std::sync::OnceLock::new();
    let result = EMULATOR.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("LABRUN_TEST_ENDPOINT") {
            return Ok(Emulator { source: Source::External, endpoint, version: None, pid: None, container: None, root: None });
        }
        let progress = |m: &str| {
            eprintln!("test emulator: {m}");
            if let Ok(mut l) = TEST_LOG.lock() {
                l.push(m.to_string());
            }
        };
        let opts = Options {
            endpoint: None,
            cache_dir: default_cache_dir(),
            allow_container: true,
            progress: &progress,
            watch_pid: Some(std::process::id()),
            instance: "test",
        };
        up(&opts).map_err(|e| e.to_string())
    });
    match result {
        Ok(e) => e,
        Err(e) => panic!("no emulator for the tests: {e}"),
    }
}

/// Stops the managed emulator; returns what was stopped. Only ever the process labrun started.
pub fn down(cache: &Path, instance: &str) -> Result<Option<Emulator>, HarnessError> {
    let path = state_file(cache, instance);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let Ok(emu) = serde_json::from_str::<Emulator>(&text) else {
        std::fs::remove_file(&path)?;
        return Ok(None);
    };
    if let Some(pid) = emu.pid {
        stop_pid(pid);
    }
    if let Some(id) = &emu.container {
        remove_container(id).map_err(|e| HarnessError::Start(format!("could not remove container {id}: {e}")))?;
    }
    if let Some(root) = &emu.root {
        let _ = std::fs::remove_dir_all(root);
    }
    std::fs::remove_file(&path)?;
    Ok(Some(emu))
}

fn stop_pid(pid: u32) {
    let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid);
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).stderr(Stdio::null()).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).stderr(Stdio::null()).status();
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

/// `Some(version)` if a LocalStack health endpoint answers at `endpoint`.
pub fn healthy(endpoint: &str) -> Option<Option<String>> {
    let (status, body) = http_get(endpoint, "/_localstack/health", Duration::from_millis(800))?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(v.get("version").and_then(|x| x.as_str()).map(str::to_string))
}

/// Whether anything accepts connections at `endpoint`. A TCP connect, not a request: a busy
/// LocalStack (loading EC2 on first use) can take seconds to answer HTTP.
fn answers(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint).split('/').next().unwrap_or("");
    let host = if host.contains(':') {
        host.to_string()
    } else if endpoint.starts_with("https") {
        format!("{host}:443")
    } else {
        format!("{host}:80")
    };
    host.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok())
}

/// A minimal HTTP/1.0 GET for health checks (plain HTTP on loopback; no TLS needed).
fn http_get(endpoint: &str, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let rest = endpoint.strip_prefix("http://")?;
    let host = rest.split('/').next()?;
    let addr = host.to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

fn free_port() -> Result<u16, HarnessError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs async Docker work on a runtime and thread of its own, so the harness's sync API can be
/// called from inside or outside a tokio runtime.
fn on_docker_runtime<T: Send + 'static>(work: impl std::future::Future<Output = Result<T, String>> + Send + 'static) -> Result<T, String> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(work)
    })
    .join()
    .map_err(|_| "the Docker client panicked".to_string())?
}

/// A LocalStack container through testcontainers: pinned tag, bound to loopback, ready when it
/// logs "Ready.". It is marked reusable so it outlives this process; labrun records its id and
/// removes it on `down` (or, for a test binary, when the binary exits).
fn start_container(opts: &Options<'_>) -> Result<Emulator, String> {
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt, ReuseDirective};
    let port = free_port().map_err(|e| e.to_string())?;
    let token = std::env::var("LOCALSTACK_AUTH_TOKEN").ok();
    let (image, tag) = LOCALSTACK_IMAGE.split_once(':').unwrap_or((LOCALSTACK_IMAGE, "latest"));
    let (image, tag) = (image.to_string(), tag.to_string());
    (opts.progress)(&format!("trying Docker: {LOCALSTACK_IMAGE} on 127.0.0.1:{port}"));
    let id = on_docker_runtime(async move {
        let mut request = GenericImage::new(image, tag)
            .with_exposed_port(4566.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready."))
            .with_env_var("SERVICES", SERVICES)
            .with_mapped_port(port, 4566.tcp())
            .with_label("dev.labrun.port", port.to_string())
            .with_host_config_modifier(|config| {
                // Docker binds published ports on every interface by default; loopback only here.
                for bindings in config.port_bindings.iter_mut().flat_map(|m| m.values_mut()).flatten() {
                    for binding in bindings.iter_mut() {
                        binding.host_ip = Some("127.0.0.1".into());
                    }
                }
            })
            .with_reuse(ReuseDirective::Always)
            .with_startup_timeout(Duration::from_secs(180));
        if let Some(token) = token {
            request = request.with_env_var("LOCALSTACK_AUTH_TOKEN", token);
        }
        let container = request.start().await.map_err(|e| format!("no Docker engine answers ({e})"))?;
        Ok(container.id().to_string())
    })?;
    if let Some(watch) = opts.watch_pid {
        // A test binary's container goes when the binary does.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("while kill -0 {watch} 2>/dev/null; do sleep 1; done; docker rm -f {id} >/dev/null 2>&1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_healthy(&endpoint, Duration::from_secs(60), || true)?;
    Ok(Emulator {
        source: Source::Container,
        endpoint,
        version: Some(LOCALSTACK_VERSION.into()),
        pid: None,
        container: Some(id),
        root: None,
    })
}

fn remove_container(id: &str) -> Result<(), String> {
    let id = id.to_string();
    on_docker_runtime(async move {
        let docker = testcontainers::bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        let options = testcontainers::bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build();
        docker.remove_container(&id, Some(options)).await.map_err(|e| e.to_string())
    })
}

fn python() -> String {
    std::env::var("LABRUN_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The virtual environment, installed on first use from the pinned lock.
pub fn ensure_venv(cache: &Path, progress: &(dyn Fn(&str) + Sync)) -> Result<PathBuf, HarnessError> {
    ensure_venv_with(cache, &python(), progress)
}

/// FNV-1a: a stable name for a lock's venv folder (std's hasher may change between releases).
fn lock_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn ensure_venv_with(cache: &Path, py: &str, progress: &(dyn Fn(&str) + Sync)) -> Result<PathBuf, HarnessError> {
    let base = cache.join(format!("localstack-{LOCALSTACK_VERSION}"));
    // One folder per lock: a labrun with a new lock installs beside the old venv instead of
    // deleting it under a LocalStack that an older labrun started from it and that still runs.
    let venv = base.join(format!("venv-{:016x}", lock_hash(LOCK)));
    let marker = venv.join("labrun-installed.lock.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == LOCK) && venv.join("bin/python").exists() {
        return Ok(venv);
    }
    let py = py.to_string();
    let version = Command::new(&py)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .map_err(|_| HarnessError::NoPython(py.clone()))?;
    if !version.status.success() {
        return Err(HarnessError::NoPython(py));
    }
    std::fs::create_dir_all(&base)?;
    progress(&format!("installing LocalStack {LOCALSTACK_VERSION} into {} (once; about 40 s)", venv.display()));
    let _ = std::fs::remove_dir_all(&venv);
    let out = Command::new(&py).args(["-m", "venv"]).arg(&venv).output()?;
    if !out.status.success() {
        return Err(HarnessError::Venv(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let lock_path = venv.join("labrun-lock.txt");
    std::fs::write(&lock_path, LOCK)?;
    let mut child = Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--no-input", "--timeout", "30", "--retries", "2", "-r"])
        .arg(&lock_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(pkg) = line.strip_prefix("Collecting ") {
                progress(&format!("pip: {}", pkg.split(" (from").next().unwrap_or(pkg)));
            }
        }
    }
    let status = child.wait()?;
    let err = err_thread.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        return Err(HarnessError::Install(tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    std::fs::write(&marker, LOCK)?;
    Ok(venv)
}

fn start_host(opts: &Options<'_>) -> Result<Emulator, HarnessError> {
    let venv = ensure_venv(&opts.cache_dir, opts.progress)?;
    let port = free_port()?;
    let root = opts.cache_dir.join(format!("localstack-{LOCALSTACK_VERSION}")).join(format!("run-{port}"));
    std::fs::create_dir_all(&root)?;
    let log_path = root.join("localstack.log");
    let log = std::fs::File::create(&log_path)?;
    let plugins = write_moto_providers(&root)?;
    (opts.progress)(&format!("starting LocalStack {LOCALSTACK_VERSION} on 127.0.0.1:{port}"));
    let python = venv.join("bin/python");
    // `timeout` bounds the emulator's life; with a watched pid, a shell loop stops it when the
    // watcher (a test binary) exits.
    let script = match opts.watch_pid {
        // A TERM to the watcher (its pid is the one recorded) stops the emulator as well.
        Some(watch) => format!(
            "timeout {MAX_LIFETIME_SECS} \"$0\" -m localstack.runtime.main & child=$!; \
             trap 'kill $child 2>/dev/null' TERM INT; \
             while kill -0 {watch} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1 & wait $!; done; \
             kill $child 2>/dev/null; wait $child; rm -rf '{}'",
            root.display()
        ),
        None => format!("exec timeout {MAX_LIFETIME_SECS} \"$0\" -m localstack.runtime.main"),
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(&python);
    cmd.env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("SERVICES", SERVICES)
        .env("OVERRIDE_IN_DOCKER", "0")
        .env("FILESYSTEM_ROOT", root.join("fs"))
        .env("XDG_CACHE_HOME", root.join("xdg-cache"))
        .env("DNS_ADDRESS", "0")
        .env("DISABLE_EVENTS", "1")
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .envs(HOST_PROVIDER_OVERRIDES)
        .env("PYTHONPATH", &plugins)
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C meant for labrun does not stop the emulator.
        cmd.process_group(0);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let endpoint = format!("http://127.0.0.1:{port}");
    let waited = wait_healthy(&endpoint, Duration::from_secs(90), || matches!(child.try_wait(), Ok(None)));
    if let Err(e) = waited {
        stop_pid(pid);
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        return Err(HarnessError::Start(format!(
            "{e}\nlast lines of {}:\n{}",
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    // The child is left running on purpose; reap it in the background if it exits while we live.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(Emulator {
        source: Source::Host,
        endpoint,
        version: Some(LOCALSTACK_VERSION.into()),
        pid: Some(pid),
        container: None,
        root: Some(root),
    })
}

/// Writes the moto-backed providers as an installed distribution (module, METADATA and
/// entry_points.txt) in `root/plugins`, and returns that folder for `PYTHONPATH`. The venv is
/// left as pip installed it.
fn write_moto_providers(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join("plugins");
    let dist = dir.join("labrun_localstack_moto-1.0.dist-info");
    std::fs::create_dir_all(&dist)?;
    std::fs::write(dir.join("labrun_localstack_moto.py"), MOTO_PROVIDERS)?;
    std::fs::write(dist.join("METADATA"), "Metadata-Version: 2.1\nName: labrun-localstack-moto\nVersion: 1.0\n")?;
    std::fs::write(dist.join("entry_points.txt"), MOTO_PROVIDERS_ENTRY_POINTS)?;
    Ok(dir)
}

fn wait_healthy(endpoint: &str, limit: Duration, alive: impl FnMut() -> bool) -> Result<(), String> {
    let mut alive = alive;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if healthy(endpoint).is_some() {
            return Ok(());
        }
        if !alive() {
            return Err("the process exited".into());
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    Err(format!("no answer from {endpoint} within {}s", limit.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_endpoint_is_reported_not_hung() {
        let port = free_port().unwrap();
        let quiet = |_: &str| {};
        let opts = Options {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            cache_dir: std::env::temp_dir(),
            allow_container: false,
            progress: &quiet,
            watch_pid: None,
            instance: "test",
        };
        let started = Instant::now();
        assert!(matches!(resolve(&opts), Err(HarnessError::Unreachable(_))));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn missing_python_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let quiet = |_: &str| {};
        let err = ensure_venv_with(dir.path(), "definitely-not-python-xyz", &quiet).unwrap_err();
        assert!(matches!(err, HarnessError::NoPython(_)));
        assert!(err.to_string().contains("install Python"), "{err}");
    }

    #[test]
    fn the_container_source_fails_fast_with_a_reason_or_starts() {
        let quiet = |_: &str| {};
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            endpoint: None,
            cache_dir: dir.path().into(),
            allow_container: true,
            progress: &quiet,
            watch_pid: Some(std::process::id()),
            instance: "t",
        };
        let started = Instant::now();
        match start_container(&opts) {
            Ok(e) => {
                assert_eq!(e.source, Source::Container);
                remove_container(e.container.as_deref().unwrap()).unwrap();
            }
            Err(why) => {
                assert!(why.starts_with("no Docker engine answers ("), "{why}");
                assert!(started.elapsed() < Duration::from_secs(20), "no hang without Docker");
            }
        }
    }
}
