//! The lab image build's output: one progress line per stage on the
//! terminal (`lab: [2/4] initramfs ... 9 s`), and everything the tools
//! print (debootstrap's hundreds of lines) in a log file that an error
//! points to.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::interrupt;

/// A build's stages and its log.
pub struct BuildLog {
    path: PathBuf,
    file: File,
    stage: usize,
    stages: usize,
}

/// debootstrap's phases, from its `I: ` lines, in a few words.
pub fn debootstrap_phase(line: &str) -> Option<&'static str> {
    let rest = line.strip_prefix("I: ")?;
    let phases = [
        ("Retrieving", "downloading packages"),
        ("Validating", "downloading packages"),
        ("Checking", "checking packages"),
        ("Extracting", "extracting the base system"),
        ("Installing", "installing the base system"),
        ("Unpacking", "unpacking packages"),
        ("Configuring", "configuring packages"),
        ("Base system installed", "done"),
    ];
    phases
        .iter()
        .find(|(prefix, _)| rest.starts_with(prefix))
        .map(|(_, phase)| *phase)
}

impl BuildLog {
    /// A fresh log at `path`, for `stages` stages.
    pub fn create(path: &Path, stages: usize) -> Result<BuildLog> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(BuildLog {
            path: path.to_path_buf(),
            file,
            stage: 0,
            stages,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `cmd` as stage `what`: its output (stdout and stderr) goes to
    /// the log; `phase` turns a line into a sub-step worth a line of its
    /// own (printed when it changes).
    pub fn stage(
        &mut self,
        what: &str,
        cmd: &mut Command,
        phase: Option<fn(&str) -> Option<&'static str>>,
    ) -> Result<()> {
        self.stage += 1;
        let started = Instant::now();
        let head = format!("lab: [{}/{}] {what}", self.stage, self.stages);
        eprintln!("{head} ...");
        let shown = format!("{cmd:?}");
        let _ = writeln!(self.file, "== {head}: {shown}");
        let out = self.file.try_clone()?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(out)
            .spawn()
            .with_context(|| format!("could not start {shown}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut last = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(self.file, "{line}");
            if let Some(p) = phase.and_then(|f| f(&line)) {
                if last != Some(p) {
                    eprintln!("{head}: {p} ({:.0} s)", started.elapsed().as_secs_f64());
                    last = Some(p);
                }
            }
        }
        let status = child.wait()?;
        if interrupt::requested() {
            bail!("interrupted");
        }
        if !status.success() {
            let _ = writeln!(self.file, "== {what} failed with {status}");
            bail!(
                "{what}: {shown} failed with {status}; its output is in {}",
                self.path.display()
            );
        }
        eprintln!("{head}: done in {:.0} s", started.elapsed().as_secs_f64());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debootstraps_lines_become_a_few_phases() {
        assert_eq!(
            debootstrap_phase("I: Retrieving libc6 2.36-9"),
            Some("downloading packages")
        );
        assert_eq!(
            debootstrap_phase("I: Configuring kpartx..."),
            Some("configuring packages")
        );
        assert_eq!(debootstrap_phase("W: No zstd in /usr/bin"), None);
        assert_eq!(debootstrap_phase("Selecting previously unselected"), None);
    }

    #[test]
    fn a_stage_logs_both_streams_and_a_failure_names_the_log() {
        let dir = std::env::temp_dir().join(format!("xtask-buildlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("build.log");
        let mut log = BuildLog::create(&path, 2).unwrap();
        log.stage(
            "speak",
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            None,
        )
        .unwrap();
        let err = log
            .stage("fail", Command::new("sh").args(["-c", "exit 3"]), None)
            .unwrap_err();
        assert!(
            format!("{err}").contains(&path.display().to_string()),
            "{err}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
        assert!(text.contains("== fail failed with"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
