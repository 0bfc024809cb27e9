//! What an fs probe's filesystem will need after the faults, from what the
//! block layer will do (the rest of the oracle): no I/O error, a stall it
//! rides out; an I/O error, a failed journal or log write, after which
//! ext4 aborts its journal and turns read-only (and an aborted journal is
//! not remounted rw: umount + e2fsck) and XFS shuts down (every call fails
//! until umount; mount replays the log). The probe's workload fsyncs
//! several times a second, so every outage that fails I/O fails a journal
//! or log write too.

use iscsi_chaos_formats::probe::Recovery;

use super::Prediction;
use crate::model::{FsKind, FsSpec};

/// Adds the filesystem's outcome to `p` (a prediction for the block layer).
pub fn predict(p: &mut Prediction, fs: &FsSpec) {
    let name = fs.fs.as_str();
    if p.borderline {
        p.notes.push(format!(
            "{name}: the first error is on a boundary, so is the filesystem's outcome: not judged"
        ));
        return;
    }
    match p.first_error_s {
        None => {
            p.fs_recovery = Some(Recovery::ByItself);
            p.notes.push(format!(
                "{name}: no I/O error reaches it: its calls stall with the disk and it works by itself afterwards"
            ));
        }
        Some(at) => {
            p.fs_recovery = Some(Recovery::Umount);
            p.notes.push(match fs.fs {
                FsKind::Ext4 => format!(
                    "ext4: I/O errors from {at:.1} s fail a journal commit: the journal aborts and the filesystem turns read-only whatever errors= says; an aborted journal cannot be remounted rw: umount + e2fsck"
                ),
                FsKind::Xfs => format!(
                    "xfs: I/O errors from {at:.1} s fail a log write: XFS shuts down and every call fails until umount; mount replays the log"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fs: FsKind) -> FsSpec {
        FsSpec {
            fs,
            mount_options: None,
            xfs_eio_max_retries: None,
        }
    }

    #[test]
    fn a_ridden_out_outage_needs_nothing_and_an_error_needs_umount() {
        let mut p = Prediction::default();
        predict(&mut p, &spec(FsKind::Ext4));
        assert_eq!(p.fs_recovery, Some(Recovery::ByItself));
        let mut p = Prediction {
            first_error_s: Some(9.0),
            ..Prediction::default()
        };
        predict(&mut p, &spec(FsKind::Xfs));
        assert_eq!(p.fs_recovery, Some(Recovery::Umount));
        assert!(
            p.notes.last().unwrap().contains("shuts down"),
            "{:?}",
            p.notes
        );
        let mut p = Prediction {
            first_error_s: Some(9.0),
            borderline: true,
            ..Prediction::default()
        };
        predict(&mut p, &spec(FsKind::Ext4));
        assert_eq!(p.fs_recovery, None);
    }
}
