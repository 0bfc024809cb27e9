//! Which guest can run a binary built on this host: the newest GLIBC_x.y
//! symbol version the binary needs (its ELF version-needs table), against
//! each lab release's C library (`recipe.toml`). A static binary (musl)
//! needs none and runs in any release.

use std::path::Path;

use anyhow::{bail, Context, Result};
use object::elf::FileHeader64;
use object::read::elf::FileHeader;
use object::Endianness;

/// A glibc version, (major, minor).
pub type Version = (u32, u32);

/// Parses "2.36".
pub fn parse_version(text: &str) -> Option<Version> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The newest `GLIBC_x.y` an ELF image needs; `None` when it needs no glibc
/// version (a static binary).
pub fn needed(data: &[u8]) -> Result<Option<Version>> {
    let header = FileHeader64::<Endianness>::parse(data).context("not a 64-bit ELF file")?;
    let endian = header.endian().context("ELF endianness")?;
    let sections = header.sections(endian, data).context("ELF sections")?;
    let Some((mut needs, link)) = sections
        .gnu_verneed(endian, data)
        .context("ELF version needs")?
    else {
        return Ok(None);
    };
    let strings = sections
        .strings(endian, data, link)
        .context("ELF version strings")?;
    let mut newest = None;
    while let Some((_, mut aux)) = needs.next().context("ELF version needs")? {
        while let Some(entry) = aux.next().context("ELF version needs")? {
            let name = entry.name(endian, strings).context("ELF version name")?;
            let version = std::str::from_utf8(name)
                .ok()
                .and_then(|n| n.strip_prefix("GLIBC_"))
                .and_then(parse_version);
            newest = newest.max(version);
        }
    }
    Ok(newest)
}

/// As [`needed`], for a file.
pub fn needed_by(path: &Path) -> Result<Option<Version>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    needed(&data).with_context(|| format!("{}", path.display()))
}

/// The release to boot for a binary needing `need`: `asked` if given (an
/// error if its glibc is too old), else the oldest release new enough.
/// `releases`: (name, glibc) pairs.
pub fn choose<'a>(
    need: Option<Version>,
    asked: Option<&str>,
    releases: &'a [(String, Version)],
    binary: &Path,
) -> Result<&'a str> {
    let fits = |v: &Version| need.map_or(true, |n| *v >= n);
    let show = |v: Version| format!("{}.{}", v.0, v.1);
    if let Some(asked) = asked {
        let Some((name, v)) = releases.iter().find(|(n, _)| n == asked) else {
            let known: Vec<_> = releases.iter().map(|(n, _)| n.as_str()).collect();
            bail!(
                "unknown lab release `{asked}` (known: {})",
                known.join(", ")
            );
        };
        if !fits(v) {
            bail!(
                "{} needs glibc {} but the {name} guest has {}: use --release {} or a static build (see below)",
                binary.display(),
                show(need.unwrap_or_default()),
                show(*v),
                releases
                    .iter()
                    .find(|(_, v)| fits(v))
                    .map_or("(none)", |(n, _)| n.as_str())
            );
        }
        return Ok(name);
    }
    let mut usable: Vec<&(String, Version)> = releases.iter().filter(|(_, v)| fits(v)).collect();
    usable.sort_by_key(|(_, v)| *v);
    match usable.first() {
        Some((name, _)) => Ok(name),
        None => bail!(
            "{} needs glibc {}, newer than every lab guest ({}): build it static, \
             `rustup target add x86_64-unknown-linux-musl && cargo install --target \
             x86_64-unknown-linux-musl ...`, or build it on an older host",
            binary.display(),
            show(need.unwrap_or_default()),
            releases
                .iter()
                .map(|(n, v)| format!("{n} {}", show(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn releases() -> Vec<(String, Version)> {
        vec![("trixie".into(), (2, 41)), ("bookworm".into(), (2, 36))]
    }

    #[test]
    fn this_test_binary_needs_a_glibc_at_most_the_hosts() {
        let exe = std::env::current_exe().unwrap();
        let need = needed_by(&exe).unwrap().expect("a dynamic glibc binary");
        assert!(((2, 2)..(3, 0)).contains(&need), "{need:?}");
    }

    #[test]
    fn the_oldest_release_that_fits_is_chosen() {
        let r = releases();
        let bin = Path::new("/x/iscsi-chaos");
        assert_eq!(choose(Some((2, 34)), None, &r, bin).unwrap(), "bookworm");
        assert_eq!(choose(Some((2, 39)), None, &r, bin).unwrap(), "trixie");
        assert_eq!(choose(None, None, &r, bin).unwrap(), "bookworm");
        assert_eq!(
            choose(Some((2, 34)), Some("trixie"), &r, bin).unwrap(),
            "trixie"
        );
    }

    #[test]
    fn a_binary_too_new_for_every_guest_is_a_clear_error() {
        let r = releases();
        let bin = Path::new("/x/iscsi-chaos");
        let e = choose(Some((2, 45)), None, &r, bin)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x/iscsi-chaos needs glibc 2.45"), "{e}");
        assert!(e.contains("bookworm 2.36") && e.contains("musl"), "{e}");
        let e = choose(Some((2, 39)), Some("bookworm"), &r, bin)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--release trixie"), "{e}");
        assert!(choose(None, Some("sid"), &r, bin).is_err());
    }

    #[test]
    fn garbage_is_not_an_elf_file() {
        assert!(needed(b"#!/bin/sh\n").is_err());
        assert_eq!(parse_version("2.36"), Some((2, 36)));
        assert_eq!(parse_version("x"), None);
    }
}
