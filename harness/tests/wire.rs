//! The decoder against Wireshark's: captures the lab wrote
//! (`tests/data/captures`, and every `*.pcapng` of the folders in
//! `ISCSI_CHAOS_CAPTURES`, colon-separated) decoded by our code and by
//! tshark must hold the same iSCSI PDUs, opcode by opcode, and the same
//! SCSI commands, CDB operation by operation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use iscsi_chaos::wire::decode::decode_file;
use iscsi_chaos_formats::wire::WireWhat;

fn captures() -> Vec<PathBuf> {
    let mut folders = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures")];
    if let Some(more) = std::env::var_os("ISCSI_CHAOS_CAPTURES") {
        folders.extend(std::env::split_paths(&more));
    }
    let mut files: Vec<PathBuf> = folders
        .iter()
        .filter_map(|f| std::fs::read_dir(f).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    files.sort();
    files
}

type Counts = BTreeMap<String, usize>;

/// PDUs by opcode, and SCSI commands by CDB operation, as we decode them.
fn ours(file: &Path) -> (Counts, Counts) {
    let bytes = std::fs::read(file).unwrap();
    let mut ops = Counts::new();
    let mut cdbs = Counts::new();
    for (_, w) in decode_file(&bytes).unwrap() {
        if let WireWhat::Pdu(p) = w.what {
            *ops.entry(format!("0x{:02x}", p.opcode)).or_default() += 1;
            if let Some(c) = p.cdb {
                *cdbs.entry(format!("0x{:02x}", c.opcode)).or_default() += 1;
            }
        }
    }
    (ops, cdbs)
}

/// The same as tshark reads them (a frame holding several PDUs lists
/// each).
fn tshark(file: &Path, fields: &[&str], filter: &str) -> Counts {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", filter, "-T", "fields"])
        .args(fields.iter().flat_map(|f| ["-e", f]))
        .output()
        .expect("tshark (Debian's tshark package; ci/host-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = Counts::new();
    for v in String::from_utf8_lossy(&out.stdout).split(['\n', '\t', ',']) {
        let v = v.trim();
        if !v.is_empty() {
            let n = u8::from_str_radix(v.trim_start_matches("0x"), 16).unwrap();
            *counts.entry(format!("0x{n:02x}")).or_default() += 1;
        }
    }
    counts
}

#[test]
fn our_decoder_and_tshark_count_the_same_pdus_in_every_capture() {
    let files = captures();
    assert!(!files.is_empty(), "no captures in tests/data/captures");
    let mut wrong = Vec::new();
    for file in files {
        let (ops, cdbs) = ours(&file);
        let name = file.display();
        if ops.get("0x01").copied().unwrap_or(0) == 0 {
            wrong.push(format!("{name}: no SCSI command decoded"));
        }
        let theirs = tshark(&file, &["iscsi.opcode"], "iscsi");
        if ops != theirs {
            wrong.push(format!(
                "{name}: PDUs by opcode: ours {ops:?}, tshark's {theirs:?}"
            ));
        }
        let mut theirs = tshark(
            &file,
            &["scsi.spc.opcode", "scsi_sbc.opcode"],
            "iscsi.opcode == 0x01",
        );
        // tshark names a WRITE's operation twice: in the command and in
        // the data it carries (immediate data, always on here).
        for write in ["0x0a", "0x2a", "0xaa", "0x8a"] {
            if let Some(n) = theirs.get_mut(write) {
                *n /= 2;
            }
        }
        if cdbs != theirs {
            wrong.push(format!(
                "{name}: SCSI commands by operation: ours {cdbs:?}, tshark's {theirs:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
