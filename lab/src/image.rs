//! The lab image: built with debootstrap from the embedded recipe
//! (`lab/recipe/recipe.toml`), cached outside any source tree under a key
//! that hashes the recipe and the guest's init.
//!
//! Invariant: a cache entry is used only if its `complete` stamp exists and
//! matches the files beside it. A build happens in a `.partial` folder that is
//! renamed into place as its very last step, so an interrupted build can never
//! be booted, and a failed build leaves the previous good image alone.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::buildlog::{self, BuildLog};
use crate::host::{cache_dir, require_root, require_tool, run};

/// Bumped when the build steps below change in a way the recipe does not show.
const BUILDER_VERSION: u32 = 1;
const STAMP: &str = "complete";
const KERNEL: &str = "vmlinuz";
const INITRD: &str = "initrd.img";
const ROOTFS: &str = "rootfs.img";
/// The release booted when none is asked for.
pub const DEFAULT_RELEASE: &str = "bookworm";
/// The recipe and the guest's PID 1, built into every binary that can
/// build the image.
const RECIPE: &str = include_str!("../recipe/recipe.toml");
const GUEST_INIT: &str = include_str!("../recipe/guest-init.sh");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recipe {
    packages: Vec<String>,
    initramfs_modules: Vec<String>,
    image_size_mib: u64,
    releases: BTreeMap<String, Release>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `kernel` documents the matrix; debootstrap picks the kernel.
struct Release {
    kernel: String,
    glibc: String,
}

/// A complete, bootable image.
pub struct Image {
    pub release: String,
    pub dir: PathBuf,
}

impl Image {
    pub fn kernel(&self) -> PathBuf {
        self.dir.join(KERNEL)
    }
    pub fn initrd(&self) -> PathBuf {
        self.dir.join(INITRD)
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(ROOTFS)
    }
}

fn load_recipe() -> Result<Recipe> {
    toml::from_str(RECIPE).context("lab/recipe/recipe.toml: invalid recipe")
}

/// Which image: shared by every command that needs one.
#[derive(Args, Clone, Debug, Default)]
pub struct ImageArgs {
    /// Debian release of the guest (kernel matrix): bookworm (6.1) or trixie (6.12).
    /// Default: bookworm, or the oldest release whose C library can run the
    /// harness binary.
    #[arg(long, env = "ISCSI_CHAOS_LAB_RELEASE")]
    pub release: Option<String>,
    /// Debian package archive to build from (default: the host's own apt sources).
    #[arg(long, env = "ISCSI_CHAOS_MIRROR")]
    pub mirror: Option<String>,
}

impl ImageArgs {
    /// The release asked for, else the default one.
    pub fn release(&self) -> &str {
        self.release.as_deref().unwrap_or(DEFAULT_RELEASE)
    }
}

/// The lab's releases with the glibc version of each.
pub fn releases() -> Result<Vec<(String, crate::glibc::Version)>> {
    load_recipe()?
        .releases
        .into_iter()
        .map(|(name, r)| {
            let v = crate::glibc::parse_version(&r.glibc)
                .with_context(|| format!("recipe: releases.{name}.glibc `{}`", r.glibc))?;
            Ok((name, v))
        })
        .collect()
}

/// The cache key: the release plus a hash of everything that shapes the image.
fn cache_key(release: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("builder {BUILDER_VERSION}\nrelease {release}\n"));
    hash.update(RECIPE);
    hash.update(GUEST_INIT);
    let digest = hash.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{release}-{hex}")
}

pub fn cached_path(args: &ImageArgs) -> Result<PathBuf> {
    Ok(cache_dir().join("lab").join(cache_key(args.release())))
}

/// The stamp records each file's size: a truncated copy fails the check.
fn stamp_text(dir: &Path, key: &str) -> Result<String> {
    let mut text = format!("{key}\n");
    for name in [KERNEL, INITRD, ROOTFS] {
        let len = fs::metadata(dir.join(name))
            .with_context(|| format!("{} is missing", dir.join(name).display()))?
            .len();
        text.push_str(&format!("{name} {len}\n"));
    }
    Ok(text)
}

fn is_complete(dir: &Path, key: &str) -> bool {
    match (fs::read_to_string(dir.join(STAMP)), stamp_text(dir, key)) {
        (Ok(stamp), Ok(actual)) => stamp == actual,
        _ => false,
    }
}

/// Returns the cached image for the recipe, building it first if needed.
pub fn ensure(args: &ImageArgs, force: bool) -> Result<Image> {
    let recipe = load_recipe()?;
    let release = args.release();
    if !recipe.releases.contains_key(release) {
        let known: Vec<_> = recipe.releases.keys().cloned().collect();
        bail!(
            "unknown lab release `{release}` (the recipe has: {})",
            known.join(", ")
        );
    }
    let key = cache_key(release);
    let dir = cache_dir().join("lab").join(&key);
    if !force && is_complete(&dir, &key) {
        return Ok(Image {
            release: release.to_string(),
            dir,
        });
    }
    if dir.exists() {
        eprintln!(
            "lab: cached image {} is incomplete or forced: rebuilding",
            dir.display()
        );
    }
    build(&recipe, args, &key, &dir)?;
    Ok(Image {
        release: release.to_string(),
        dir,
    })
}

fn build(recipe: &Recipe, args: &ImageArgs, key: &str, dir: &Path) -> Result<()> {
    require_root("building the lab image (debootstrap)")?;
    require_tool("debootstrap", "debootstrap")?;
    require_tool("mkfs.ext4", "e2fsprogs")?;
    let mirror = match &args.mirror {
        Some(m) => m.clone(),
        None => host_mirror()?,
    };
    let parent = dir.parent().expect("cache entries have a parent");
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let partial = parent.join(format!("{key}.partial-{}", std::process::id()));
    remove_stale_partials(parent)?;
    let started = std::time::Instant::now();
    eprintln!(
        "lab: building the {} image from {mirror} into {} (a few minutes, once per recipe)",
        args.release(),
        dir.display()
    );
    let log_path = parent.join(format!("{}.build.log", args.release()));
    let mut log = BuildLog::create(&log_path, 3)?;
    eprintln!("lab: the tools' output goes to {}", log.path().display());
    let result = build_into(recipe, args.release(), &mirror, &partial, &mut log);
    let rootfs = partial.join("rootfs");
    if let Err(err) = result {
        let _ = remove_build_dir(&partial);
        return Err(err.context(format!(
            "building the {} lab image failed; any previous image is kept",
            args.release()
        )));
    }
    remove_build_dir(&rootfs)?;
    fs::write(partial.join(STAMP), stamp_text(&partial, key)?)?;
    if dir.exists() {
        remove_build_dir(dir)?;
    }
    fs::rename(&partial, dir).with_context(|| format!("moving the image to {}", dir.display()))?;
    prune_other_images(parent, args.release(), key);
    eprintln!(
        "lab: image built in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

fn build_into(
    recipe: &Recipe,
    release: &str,
    mirror: &str,
    out: &Path,
    log: &mut BuildLog,
) -> Result<()> {
    let rootfs = out.join("rootfs");
    fs::create_dir_all(&rootfs)?;
    log.stage(
        &format!(
            "debootstrap: Debian {release} with {} packages",
            recipe.packages.len()
        ),
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", recipe.packages.join(",")))
            .arg(release)
            .arg(&rootfs)
            .arg(mirror),
        Some(buildlog::debootstrap_phase),
    )
    .context("debootstrap failed (is the package archive reachable?)")?;

    // A small initramfs: only what mounts the virtio root disk.
    fs::write(
        rootfs.join("etc/initramfs-tools/conf.d/lab.conf"),
        "MODULES=list\n",
    )?;
    let mut modules = recipe.initramfs_modules.join("\n");
    modules.push('\n');
    fs::write(rootfs.join("etc/initramfs-tools/modules"), modules)?;
    let init = rootfs.join("usr/local/sbin/lab-init");
    fs::write(&init, GUEST_INIT)?;
    fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    // The guest has no service manager; a per-image initiator name is enough.
    for (src, dst) in [("/proc", "proc"), ("/sys", "sys"), ("/dev", "dev")] {
        run(Command::new("mount")
            .args(["--bind", src])
            .arg(rootfs.join(dst)))?;
    }
    let initramfs = log.stage(
        "initramfs: the virtio root disk's modules",
        Command::new("chroot")
            .arg(&rootfs)
            .args(["update-initramfs", "-u", "-k", "all"]),
        None,
    );
    unmount_chroot(&rootfs);
    initramfs?;

    copy_newest(&rootfs.join("boot"), "vmlinuz-", &out.join(KERNEL))?;
    copy_newest(&rootfs.join("boot"), "initrd.img-", &out.join(INITRD))?;
    log.stage(
        &format!("root disk: {} MiB ext4", recipe.image_size_mib),
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "labroot", "-d"])
            .arg(&rootfs)
            .arg(out.join(ROOTFS))
            .arg(format!("{}M", recipe.image_size_mib)),
        None,
    )?;
    Ok(())
}

/// Unmounts everything mounted below `dir` (our bind mounts, or debootstrap's
/// own /proc and /sys after an interrupted run), deepest first. Deleting a tree
/// with the host's /dev bound inside it would delete the host's device nodes.
fn unmount_chroot(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut below: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&prefix) || *m == prefix.trim_end_matches('/'))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount in below {
        let _ = Command::new("umount")
            .args(["-l", mount])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Removes a build folder, but never while anything is mounted inside it.
fn remove_build_dir(dir: &Path) -> Result<()> {
    unmount_chroot(dir);
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = format!("{}/", dir.display());
    if mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|m| m.starts_with(&prefix))
    {
        bail!("{} still has mounts inside; not removing it", dir.display());
    }
    fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

fn copy_newest(boot: &Path, prefix: &str, to: &Path) -> Result<()> {
    let mut found: Vec<PathBuf> = fs::read_dir(boot)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    let newest = found
        .pop()
        .with_context(|| format!("no {prefix}* in {}", boot.display()))?;
    fs::copy(&newest, to).with_context(|| format!("copying {}", newest.display()))?;
    Ok(())
}

/// Partial builds whose builder process is gone are debris of an interrupted build.
fn remove_stale_partials(parent: &Path) -> Result<()> {
    for entry in fs::read_dir(parent)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.rsplit_once(".partial-") else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            eprintln!("lab: removing an interrupted build: {name}");
            let _ = remove_build_dir(&entry.path());
        }
    }
    Ok(())
}

/// Keeps one image per release: the one just built.
fn prune_other_images(parent: &Path, release: &str, key: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != key
            && !name.contains(".partial-")
            && name.strip_prefix(release).is_some_and(|rest| {
                rest.len() == 17
                    && rest.starts_with('-')
                    && rest[1..].bytes().all(|b| b.is_ascii_hexdigit())
            })
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The Debian archive the host itself uses (deb822 sources or sources.list).
fn host_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if let Some(uri) = mirror_from_sources(&text) {
            return Ok(uri);
        }
    }
    bail!("no Debian package archive found in the host's apt sources: pass --mirror URL")
}

/// The first `debian` (not security) archive in an apt sources text.
fn mirror_from_sources(text: &str) -> Option<String> {
    let usable = |uri: &str| {
        (uri.starts_with("http://") || uri.starts_with("https://"))
            && !uri.contains("security")
            && uri.trim_end_matches('/').ends_with("/debian")
    };
    for line in text.lines() {
        let line = line.trim();
        // One-line format: deb [opts] URI suite components
        if let Some(rest) = line.strip_prefix("deb ") {
            let uri = rest
                .split_whitespace()
                .find(|w| w.starts_with("http"))
                .unwrap_or("");
            if usable(uri) {
                return Some(uri.to_string());
            }
        }
        // deb822 format: URIs: a b c
        if let Some(rest) = line.strip_prefix("URIs:") {
            if let Some(uri) = rest.split_whitespace().find(|u| usable(u)) {
                return Some(uri.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_read_from_both_source_formats() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian-security\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_sources(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let list = "# comment\ndeb [arch=amd64] https://m.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_sources(list).as_deref(),
            Some("https://m.example/debian/")
        );
        assert_eq!(mirror_from_sources("deb http://x/ubuntu jammy main"), None);
    }

    /// PID 1 never exits after asking for power-off (the kernel panics
    /// when init exits): past the trigger only shell builtins run, and the
    /// tail, run under `sh` with the trigger pointed elsewhere, is still
    /// blocked a moment later.
    #[test]
    fn the_guest_init_never_exits_after_power_off() {
        let trigger = "echo o > /proc/sysrq-trigger";
        let (_, after) = GUEST_INIT.split_once(trigger).expect("power-off trigger");
        for line in after.lines().map(str::trim) {
            let word = line.split_whitespace().next().unwrap_or("");
            assert!(
                ["", "while", "do", "done", "read"].contains(&word) || line == "while :; do",
                "{line:?} after the power-off may need a program from the root disk"
            );
        }
        let hold = GUEST_INIT
            .lines()
            .find(|l| l.starts_with("mkfifo "))
            .expect("the hold FIFO");
        let tail = &GUEST_INIT[GUEST_INIT.find(hold).unwrap()..];
        let dir = tempfile::tempdir().unwrap();
        let script = tail
            .replace(
                "/run/lab-init.hold",
                &dir.path().join("hold").to_string_lossy(),
            )
            .replace("/proc/sysrq-trigger", "/dev/null");
        let mut sh = Command::new("sh").args(["-c", &script]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let alive = sh.try_wait().unwrap().is_none();
        let _ = sh.kill();
        let _ = sh.wait();
        assert!(alive, "the init's tail exited");
    }

    #[test]
    fn the_shipped_recipe_parses_and_names_both_releases() {
        let recipe = load_recipe().unwrap();
        assert!(recipe.releases.contains_key("bookworm"));
        assert!(recipe.releases.contains_key("trixie"));
        assert!(recipe.packages.iter().any(|p| p == "open-iscsi"));
    }

    #[test]
    fn a_stamp_detects_a_truncated_file() {
        let dir = std::env::temp_dir().join(format!("xtask-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for name in [KERNEL, INITRD, ROOTFS] {
            fs::write(dir.join(name), b"0123456789").unwrap();
        }
        fs::write(dir.join(STAMP), stamp_text(&dir, "k").unwrap()).unwrap();
        assert!(is_complete(&dir, "k"));
        assert!(!is_complete(&dir, "other-key"));
        fs::write(dir.join(ROOTFS), b"01234").unwrap();
        assert!(!is_complete(&dir, "k"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
