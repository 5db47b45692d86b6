//! Where the CLI finds its URL and token: flags, then `TOOLBELT_URL`/`TOOLBELT_TOKEN`,
//! then the file `toolbelt login` wrote (mode 0600).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const DEFAULT_URL: &str = "http://127.0.0.1:8870";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub url: Option<String>,
    pub token: Option<String>,
}

pub fn path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TOOLBELT_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("toolbelt").join("config.json"))
}

pub fn load() -> Saved {
    path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save(s: &Saved) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = path().context("no HOME or XDG_CONFIG_HOME to keep the login in")?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&p)
        .with_context(|| format!("cannot write {}", p.display()))?;
    f.write_all(serde_json::to_string_pretty(s)?.as_bytes())?;
    Ok(p)
}

pub fn resolve(url: Option<String>, token: Option<String>) -> Result<(String, Option<String>)> {
    let saved = load();
    let url = url.or(saved.url).unwrap_or_else(|| DEFAULT_URL.to_string());
    Ok((url, token.or(saved.token)))
}
