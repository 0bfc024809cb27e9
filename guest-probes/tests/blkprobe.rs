//! blkprobe end to end on a regular file (O_DIRECT works on ext4/xfs/btrfs,
//! not on tmpfs), and the verify pass over a file tampered with after writing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use guest_probes::blockdev::{AlignedBuf, BlockDev, Device};
use guest_probes::ledger::Ledger;
use guest_probes::stamp::Stamper;
use guest_probes::{BlockProblem, OpKind, ProbeEvent};

const BS: usize = 4096;

fn disk_file(dir: &Path, blocks: usize) -> PathBuf {
    let path = dir.join("disk.img");
    std::fs::write(&path, vec![0u8; blocks * BS]).unwrap();
    path
}

fn blkprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_blkprobe"))
}

fn events(out: &Output) -> Vec<ProbeEvent> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The checks every normal run must pass; returns the Summary's acked count.
fn assert_clean_run(evs: &[ProbeEvent], blocks: u64) -> u64 {
    let ProbeEvent::Start {
        block_size,
        blocks: b,
        ..
    } = evs[0]
    else {
        panic!("first line is not Start: {:?}", evs[0]);
    };
    assert_eq!((block_size, b), (BS as u32, blocks));

    let ops: Vec<_> = evs
        .iter()
        .filter_map(|e| match *e {
            ProbeEvent::Op {
                t,
                start,
                op,
                seq,
                block,
                ok,
                errno,
            } => Some((t, start, op, seq, block, ok, errno)),
            _ => None,
        })
        .collect();
    // Each write is read back at once; a block written before is read
    // first too (its last write must still be there).
    let mut writes_at = Vec::new();
    for (k, w) in ops.iter().enumerate() {
        if w.2 != OpKind::Write {
            continue;
        }
        let i = writes_at.len() as u64;
        assert_eq!((w.3, w.4), (i, i % blocks), "write {i}");
        let r = ops.get(k + 1).expect("a write without its read");
        assert_eq!(
            (r.2, r.3, r.4),
            (OpKind::Read, i, i % blocks),
            "write {i}'s read"
        );
        assert!(w.0 <= r.1, "read issued before its write returned");
        if i >= blocks {
            let pre = ops[k - 1];
            assert_eq!(
                (pre.2, pre.3, pre.4),
                (OpKind::Read, i - blocks, i % blocks),
                "write {i}'s read before"
            );
            assert!(pre.0 <= w.1);
        }
        for (t, start, ..) in [*w, *r] {
            assert!(start <= t);
        }
        assert!(
            w.5 && r.5 && w.6.is_none() && r.6.is_none(),
            "op failed: {w:?} {r:?}"
        );
        writes_at.push(w.1);
    }
    let reads_before = writes_at.len().saturating_sub(blocks as usize);
    assert_eq!(
        ops.len(),
        writes_at.len() * 2 + reads_before,
        "stray operations"
    );
    // Fixed cadence, no bursts: writes go on a 10 ms grid, so one that runs
    // late shortens the next gap but never adds a write.
    let (first, last) = (writes_at[0], writes_at[writes_at.len() - 1]);
    let slots = ((last - first) / 0.010).floor() as usize + 1;
    assert!(
        writes_at.len() <= slots + 1,
        "{} writes in {slots} ticks",
        writes_at.len()
    );
    // No lower bound: how many ticks a slow machine (TCG under load) keeps
    // up with is a timing figure, not a correctness property.
    assert!(
        !evs.iter().any(|e| matches!(e, ProbeEvent::BadBlock { .. })),
        "bad blocks reported"
    );

    let n = evs.len();
    let ProbeEvent::VerifyStart {
        acked: to_verify, ..
    } = evs[n - 2]
    else {
        panic!("VerifyStart not just before Summary: {:?}", evs[n - 2]);
    };
    let writes = writes_at.len() as u64;
    assert_eq!(to_verify, writes.min(blocks));
    let ProbeEvent::Summary {
        acked_writes,
        lost_writes,
        corrupt_writes,
        unverified_writes,
        ops: op_count,
        errors,
        ..
    } = evs[n - 1]
    else {
        panic!("last line is not Summary: {:?}", evs[n - 1]);
    };
    assert_eq!(acked_writes, writes);
    assert_eq!((lost_writes, corrupt_writes, unverified_writes), (0, 0, 0));
    assert_eq!((op_count, errors), (ops.len() as u64, 0));
    for w in evs.windows(2) {
        assert!(w[0].t() <= w[1].t(), "lines out of time order");
    }
    acked_writes
}

#[test]
fn one_second_on_a_file_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    // 64 blocks: about 100 writes wrap around, so verify reads the latest ones.
    let disk = disk_file(dir.path(), 64);
    let out = blkprobe()
        .args(["--device", disk.to_str().unwrap()])
        .args(["--duration-s", "1", "--interval-ms", "10"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // How many writes fit in a second is a benchmark figure (it varies with
    // the host's load under TCG); a test asks only that it did I/O, cleanly.
    let acked = assert_clean_run(&events(&out), 64);
    assert!(acked > 0, "no acked write in 1 s");
}

#[test]
fn several_writers_share_the_blocks_and_each_block_s_versions_grow() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_file(dir.path(), 16);
    let out = blkprobe()
        .args(["--device", disk.to_str().unwrap()])
        .args(["--duration-s", "1", "--interval-ms", "10"])
        .args(["--blocks", "16", "--depth", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let mut last_write: std::collections::HashMap<u64, u64> = Default::default();
    let mut seqs = std::collections::HashSet::new();
    let mut writes = 0u64;
    for e in &evs {
        match *e {
            ProbeEvent::Op {
                op: OpKind::Write,
                seq,
                block,
                ok,
                ..
            } => {
                assert!(ok && block < 16);
                assert!(seqs.insert(seq), "seq {seq} written twice");
                if let Some(prev) = last_write.insert(block, seq) {
                    assert!(prev < seq, "block {block}: seq {seq} after {prev}");
                }
                writes += 1;
            }
            ProbeEvent::BadBlock { .. } => panic!("bad block: {e:?}"),
            _ => {}
        }
    }
    // Four writers in a second each wrapped around their four blocks.
    assert!(writes > 16, "{writes} writes");
    let ProbeEvent::Summary {
        acked_writes,
        lost_writes,
        corrupt_writes,
        ..
    } = evs[evs.len() - 1]
    else {
        panic!("last line is not Summary");
    };
    assert_eq!((acked_writes, lost_writes, corrupt_writes), (writes, 0, 0));
    // A depth beyond the blocks is refused.
    let out = blkprobe()
        .args(["--device", disk.to_str().unwrap(), "--duration-s", "0.1"])
        .args(["--blocks", "2", "--depth", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigterm_stops_verifies_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_file(dir.path(), 256);
    // No --duration-s: runs until signalled.
    let child = blkprobe()
        .args(["--device", disk.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling the child we spawned.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(out.status.success(), "{:?}", out.status);
    let acked = assert_clean_run(&events(&out), 256);
    assert!(acked > 0, "no acked write before SIGTERM");
}

#[test]
fn bad_arguments_and_refused_devices_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_file(dir.path(), 8);
    let d = disk.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &[],
        &["--device", d, "--block-size", "1000"],
        &["--device", d, "--blocks", "9"],
        &["--device", d, "--interval-ms", "0"],
        &["--device", d, "--duration-s", "-1"],
        &["--device", "/nonexistent/disk"],
        // A regular file cannot belong to an iSCSI session.
        &["--device", d, "--expect-session", "session1"],
    ];
    for args in cases {
        let out = blkprobe()
            .args(*args)
            .args(["--duration-s", "0.1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} wrote events");
    }
}

#[test]
fn verify_finds_exactly_the_tampered_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = 16u64;
    let disk = disk_file(dir.path(), blocks as usize);
    let dev = Device::open(&disk, BS, None).unwrap();
    let stamper = Stamper::random();
    let mut ledger = Ledger::new(blocks);
    let mut buf = AlignedBuf::new(BS);
    // 40 writes over 16 blocks, as the probe loop does them.
    for seq in 0..40 {
        let block = seq % blocks;
        stamper.stamp(&mut buf, seq, block);
        dev.write_block(&buf, block).unwrap();
        ledger.record_write(block, seq, true);
    }
    // Block 3 (acked seq 35) goes back to its older seq 19: a lost write.
    stamper.stamp(&mut buf, 19, 3);
    dev.write_block(&buf, 3).unwrap();
    // Block 5 (acked seq 37) gets one flipped bit: a corrupt write.
    dev.read_block(&mut buf, 5).unwrap();
    buf[1234] ^= 0x10;
    dev.write_block(&buf, 5).unwrap();

    let mut evs = Vec::new();
    let counts = ledger.verify(
        &dev,
        &stamper,
        Instant::now() + Duration::from_secs(1),
        &|| false,
        &mut |e| evs.push(e.clone()),
    );
    assert_eq!(
        (
            counts.to_verify,
            counts.ok,
            counts.lost,
            counts.corrupt,
            counts.unverified
        ),
        (16, 14, 1, 1, 0)
    );
    assert_eq!((ledger.lost(), ledger.corrupt()), (1, 1));
    let bad: Vec<_> = evs
        .iter()
        .filter_map(|e| match *e {
            ProbeEvent::BadBlock {
                seq,
                block,
                problem,
                ..
            } => Some((seq, block, problem)),
            _ => None,
        })
        .collect();
    assert_eq!(
        bad,
        vec![(35, 3, BlockProblem::Lost), (37, 5, BlockProblem::Corrupt)]
    );
    assert!(matches!(evs[0], ProbeEvent::VerifyStart { acked: 16, .. }));
}

/// A loop device, detached on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
#[ignore = "needs root for a loop device"]
fn one_second_on_a_loop_device() {
    // Not /tmp: a tmpfs cannot back a loop device with direct I/O.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let img = disk_file(dir.path(), 2048);
    let out = Command::new("losetup")
        .args(["--find", "--show", "--direct-io=on"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "losetup: {:?}", out);
    let dev = Loop(String::from_utf8(out.stdout).unwrap().trim().to_string());

    let out = blkprobe()
        .args(["--device", &dev.0, "--duration-s", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(assert_clean_run(&events(&out), 2048) > 0, "no acked write");

    // A loop device belongs to no iSCSI session: the guard refuses it.
    let out = blkprobe()
        .args(["--device", &dev.0, "--duration-s", "0.1"])
        .args(["--expect-session", "session1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
