//! What the probe knows about its writes: the latest acknowledged seq of each
//! block, the judging of read-back blocks, and the final verify pass.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::blockdev::{AlignedBuf, BlockDev, IoError};
use crate::stamp::{Stamper, Verdict};
use crate::{monotonic_now, BlockProblem, ProbeEvent};

#[derive(Debug, Clone, Copy, Default)]
struct BlockState {
    /// Latest acknowledged write.
    acked: Option<u64>,
    /// A write to the block failed after that one: the failed write may have
    /// torn the block, which is allowed and not a corrupted acknowledged write.
    failed_since: bool,
}

/// The probe's record of acknowledged writes and of those found bad.
#[derive(Debug, Clone)]
pub struct Ledger {
    blocks: Vec<BlockState>,
    acked_writes: u64,
    lost: u64,
    corrupt: u64,
    /// Seqs already reported bad, so the verify pass does not count them twice.
    reported: HashSet<u64>,
}

/// Counts of the final verify pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Acknowledged writes the pass set out to read back.
    pub to_verify: u64,
    pub ok: u64,
    pub lost: u64,
    pub corrupt: u64,
    /// Read-back failed until the deadline, or was never attempted.
    pub unverified: u64,
}

impl Ledger {
    pub fn new(blocks: u64) -> Self {
        Ledger {
            blocks: vec![BlockState::default(); blocks as usize],
            acked_writes: 0,
            lost: 0,
            corrupt: 0,
            reported: HashSet::new(),
        }
    }

    pub fn blocks(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Records the outcome of writing `seq` to `block`.
    pub fn record_write(&mut self, block: u64, seq: u64, ok: bool) {
        let st = &mut self.blocks[block as usize];
        if ok {
            *st = BlockState {
                acked: Some(seq),
                failed_since: false,
            };
            self.acked_writes += 1;
        } else {
            st.failed_since = true;
        }
    }

    /// The latest acknowledged write to `block`.
    pub fn acked(&self, block: u64) -> Option<u64> {
        self.blocks[block as usize].acked
    }

    pub fn acked_writes(&self) -> u64 {
        self.acked_writes
    }
    /// Acknowledged writes found lost so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }
    /// Acknowledged writes found corrupt so far.
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// Judges `buf`, just read from `block`, against the latest acknowledged
    /// write there. A newly found bad write is counted and returned as a
    /// `BadBlock` event; a write already reported is not reported again.
    pub fn judge(&mut self, stamper: &Stamper, block: u64, buf: &[u8]) -> Option<ProbeEvent> {
        let st = self.blocks[block as usize];
        let seq = st.acked?;
        let problem = match stamper.check(buf, seq, block) {
            Verdict::Ok => return None,
            Verdict::Corrupt if st.failed_since => return None,
            Verdict::Lost => BlockProblem::Lost,
            Verdict::Corrupt => BlockProblem::Corrupt,
        };
        if !self.reported.insert(seq) {
            return None;
        }
        match problem {
            BlockProblem::Lost => self.lost += 1,
            _ => self.corrupt += 1,
        }
        Some(ProbeEvent::BadBlock {
            t: monotonic_now(),
            seq,
            block,
            problem,
            found: Some(stamper.inspect(buf, seq, block)),
        })
    }

    /// Reads back the latest acknowledged write of every block, emitting
    /// `VerifyStart` and a `BadBlock` for each lost, corrupt or unreadable one.
    ///
    /// A failed read is retried, backing off, until `retry_until` (the session
    /// may still be logging in again); after that each block gets one try.
    /// Once `abort()` holds, the remaining blocks are left unverified.
    pub fn verify<D: BlockDev>(
        &mut self,
        dev: &D,
        stamper: &Stamper,
        retry_until: Instant,
        abort: &dyn Fn() -> bool,
        emit: &mut dyn FnMut(&ProbeEvent),
    ) -> VerifyCounts {
        let todo: Vec<(u64, u64)> = (0..self.blocks())
            .filter_map(|b| self.acked(b).map(|seq| (b, seq)))
            .filter(|(_, seq)| !self.reported.contains(seq))
            .collect();
        let mut counts = VerifyCounts {
            to_verify: todo.len() as u64,
            ..Default::default()
        };
        emit(&ProbeEvent::VerifyStart {
            t: monotonic_now(),
            acked: counts.to_verify,
        });
        let mut buf = AlignedBuf::new(dev.block_size());
        for (i, &(block, seq)) in todo.iter().enumerate() {
            if abort() {
                counts.unverified += (todo.len() - i) as u64;
                break;
            }
            match read_with_retry(dev, &mut buf, block, retry_until, abort) {
                Ok(()) => {
                    let (lost, corrupt) = (self.lost, self.corrupt);
                    match self.judge(stamper, block, &buf) {
                        Some(ev) => {
                            emit(&ev);
                            counts.lost += self.lost - lost;
                            counts.corrupt += self.corrupt - corrupt;
                        }
                        None => counts.ok += 1,
                    }
                }
                Err(_) => {
                    counts.unverified += 1;
                    emit(&ProbeEvent::BadBlock {
                        t: monotonic_now(),
                        seq,
                        block,
                        problem: BlockProblem::Unreadable,
                        found: None,
                    });
                }
            }
        }
        counts
    }
}

/// Errors that no amount of waiting for the session cures.
fn permanent(e: IoError) -> bool {
    matches!(
        e.errno,
        None | Some(libc::EINVAL) | Some(libc::EBADF) | Some(libc::EFAULT)
    )
}

fn read_with_retry<D: BlockDev>(
    dev: &D,
    buf: &mut [u8],
    block: u64,
    retry_until: Instant,
    abort: &dyn Fn() -> bool,
) -> Result<(), IoError> {
    let mut pause = Duration::from_millis(50);
    loop {
        let err = match dev.read_block(buf, block) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let now = Instant::now();
        if permanent(err) || now >= retry_until || abort() {
            return Err(err);
        }
        std::thread::sleep(pause.min(retry_until - now));
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    const BS: usize = 512;

    /// An in-memory disk whose reads fail with EIO a given number of times.
    struct MemDisk {
        data: RefCell<Vec<u8>>,
        failures_left: Cell<u32>,
        reads: Cell<u32>,
    }

    impl MemDisk {
        fn new(blocks: usize, failures: u32) -> Self {
            MemDisk {
                data: RefCell::new(vec![0; blocks * BS]),
                failures_left: Cell::new(failures),
                reads: Cell::new(0),
            }
        }
    }

    impl BlockDev for MemDisk {
        fn block_size(&self) -> usize {
            BS
        }
        fn read_block(&self, buf: &mut [u8], block: u64) -> Result<(), IoError> {
            self.reads.set(self.reads.get() + 1);
            if self.failures_left.get() > 0 {
                self.failures_left.set(self.failures_left.get() - 1);
                return Err(IoError {
                    errno: Some(libc::EIO),
                });
            }
            let at = block as usize * BS;
            buf.copy_from_slice(&self.data.borrow()[at..at + BS]);
            Ok(())
        }
        fn write_block(&self, buf: &[u8], block: u64) -> Result<(), IoError> {
            let at = block as usize * BS;
            self.data.borrow_mut()[at..at + BS].copy_from_slice(buf);
            Ok(())
        }
    }

    fn write_all(disk: &MemDisk, ledger: &mut Ledger, s: &Stamper, writes: u64) {
        let mut buf = vec![0u8; BS];
        for seq in 0..writes {
            let block = seq % ledger.blocks();
            s.stamp(&mut buf, seq, block);
            disk.write_block(&buf, block).unwrap();
            ledger.record_write(block, seq, true);
        }
    }

    #[test]
    fn eio_is_retried_until_the_session_is_back() {
        let s = Stamper::new(5);
        let disk = MemDisk::new(4, 3);
        let mut ledger = Ledger::new(4);
        write_all(&disk, &mut ledger, &s, 10);
        let mut evs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let c = ledger.verify(&disk, &s, deadline, &|| false, &mut |e| evs.push(e.clone()));
        assert_eq!(
            c,
            VerifyCounts {
                to_verify: 4,
                ok: 4,
                ..Default::default()
            }
        );
        assert_eq!(disk.reads.get(), 4 + 3);
        assert!(matches!(
            evs[..],
            [ProbeEvent::VerifyStart { acked: 4, .. }]
        ));
    }

    #[test]
    fn unreadable_after_the_deadline() {
        let s = Stamper::new(5);
        let disk = MemDisk::new(4, u32::MAX);
        let mut ledger = Ledger::new(4);
        write_all(&disk, &mut ledger, &s, 3);
        let mut evs = Vec::new();
        let started = Instant::now();
        let c = ledger.verify(
            &disk,
            &s,
            started + Duration::from_millis(300),
            &|| false,
            &mut |e| evs.push(e.clone()),
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!((c.to_verify, c.unverified, c.ok), (3, 3, 0));
        let unreadable = evs
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ProbeEvent::BadBlock {
                        problem: BlockProblem::Unreadable,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(unreadable, 3);
        assert_eq!((ledger.lost(), ledger.corrupt()), (0, 0));
    }

    #[test]
    fn abort_leaves_the_rest_unverified() {
        let s = Stamper::new(5);
        let disk = MemDisk::new(8, 0);
        let mut ledger = Ledger::new(8);
        write_all(&disk, &mut ledger, &s, 8);
        let c = ledger.verify(
            &disk,
            &s,
            Instant::now(),
            &|| disk.reads.get() >= 3,
            &mut |_| {},
        );
        assert_eq!((c.ok, c.unverified), (3, 5));
    }

    #[test]
    fn torn_block_after_a_failed_write_is_not_corruption() {
        let s = Stamper::new(5);
        let disk = MemDisk::new(2, 0);
        let mut ledger = Ledger::new(2);
        write_all(&disk, &mut ledger, &s, 2);
        // Seq 3 to block 1 fails after tearing the block.
        ledger.record_write(1, 3, false);
        disk.data.borrow_mut()[BS + 100] ^= 0xFF;
        let c = ledger.verify(&disk, &s, Instant::now(), &|| false, &mut |_| {});
        assert_eq!((c.ok, c.lost, c.corrupt), (2, 0, 0));
    }

    #[test]
    fn a_write_found_bad_during_the_run_is_counted_once() {
        let s = Stamper::new(5);
        let disk = MemDisk::new(2, 0);
        let mut ledger = Ledger::new(2);
        write_all(&disk, &mut ledger, &s, 2);
        ledger.record_write(0, 2, true); // acked, but never reached the disk
        let mut buf = vec![0u8; BS];
        disk.read_block(&mut buf, 0).unwrap();
        assert!(matches!(
            ledger.judge(&s, 0, &buf),
            Some(ProbeEvent::BadBlock {
                seq: 2,
                block: 0,
                problem: BlockProblem::Lost,
                ..
            })
        ));
        assert_eq!(ledger.judge(&s, 0, &buf), None);
        let c = ledger.verify(&disk, &s, Instant::now(), &|| false, &mut |_| {});
        assert_eq!((c.to_verify, c.ok), (1, 1));
        assert_eq!(
            (ledger.lost(), ledger.corrupt(), ledger.acked_writes()),
            (1, 0, 3)
        );
    }
}
