//! The packaged Lambda functions, run as AWS runs them: each `bootstrap` binary from the zips
//! `scripts/package.sh` builds ([`PackagedBuild`]), started as a child process with the
//! environment Terraform sets, polling a loopback Lambda Runtime API server for its invocations
//! ([`ripple::runtime_api`], shared with `ripple bench cold-start`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use serde_json::Value;

pub use ripple::runtime_api::{INVOKE_WAIT, Outcome, PackagedFunction, RuntimeApi};

/// The zips and build record `scripts/package.sh --profile dev` writes into `target/lambda-dev/`.
#[derive(Debug)]
pub struct PackagedBuild {
    pub dir: PathBuf,
    pub record: Value,
}

impl PackagedBuild {
    /// Runs `scripts/package.sh --profile dev` (a no-op when the zips are up to date, so a
    /// changed `main.rs` is always rebuilt) and copies its output into a fresh folder under
    /// `target/packaged-test/`, both under a lock so that tests running at the same time never
    /// read a zip another one is rewriting.
    pub fn build() -> anyhow::Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = root
            .join("target/packaged-test")
            .join(format!("{nanos:x}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // `scripts/test.sh` runs `package.sh --profile dev` itself before the tests and says so:
        // building again from inside a test only repeats it (and cargo, started from a test
        // process, may not find its own build fresh).
        let prebuilt = std::env::var_os("RIPPLE_LAMBDA_DEV_BUILT").is_some()
            && root.join("target/lambda-dev/build.json").exists();
        let script = if prebuilt {
            r#"cp -R target/lambda-dev/. "$0""#
        } else {
            r#"bash scripts/package.sh --profile dev >&2 && cp -R target/lambda-dev/. "$0""#
        };
        let status = std::process::Command::new("flock")
            .arg(root.join("target/lambda-dev.lock"))
            .args(["bash", "-c", script])
            .arg(&dir)
            .current_dir(&root)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .context("running scripts/package.sh (under flock)")?;
        if !status.success() {
            bail!("bash scripts/package.sh --profile dev failed ({status})");
        }
        let text = std::fs::read_to_string(dir.join("build.json"))
            .context("reading target/lambda-dev/build.json")?;
        let record: Value = serde_json::from_str(&text).context("decoding build.json")?;
        Ok(Self { dir, record })
    }

    /// The zip of `package`, as the record names it.
    pub fn zip(&self, package: &str) -> anyhow::Result<PathBuf> {
        let rel = self.record["functions"][package]["zip"]
            .as_str()
            .with_context(|| format!("build.json lists no zip for {package}"))?;
        Ok(self.dir.join(rel))
    }

    /// Extracts `bootstrap` from `package`'s zip into `into`, as Lambda does into `/var/task`.
    pub fn extract(&self, package: &str, into: &Path) -> anyhow::Result<PathBuf> {
        let zip = self.zip(package)?;
        std::fs::create_dir_all(into)?;
        let status = std::process::Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&zip)
            .arg(into)
            .status()
            .context("running python3 -m zipfile")?;
        if !status.success() {
            bail!("could not extract {}", zip.display());
        }
        let bootstrap = into.join("bootstrap");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(bootstrap)
    }
}
