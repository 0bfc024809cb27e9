//! The stamp blkprobe writes into every block, and the check that tells a
//! read-back block apart as current, lost or corrupt.
//!
//! Layout (little endian), filling the whole block:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `ISCSICHS` |
//! | 8..16 | run id (random per probe run) |
//! | 16..24 | seq |
//! | 24..32 | block index |
//! | 32..36 | block size |
//! | 36..len-4 | payload derived from (run, seq) |
//! | len-4..len | CRC32C of everything before it |
//!
//! The run id keeps stamps left on the disk by an earlier run (which may carry
//! higher seqs) from passing for this run's writes.

/// First bytes of every stamped block.
pub const MAGIC: [u8; 8] = *b"ISCSICHS";
use iscsi_chaos_formats::probe::Found;

/// Header bytes before the payload.
const HEADER: usize = 36;
/// Smallest block that holds a stamp with some payload.
pub const MIN_BLOCK_SIZE: usize = 64;

/// What a read-back block says about the acknowledged write expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The block holds the expected write, or a later one of this run (a write
    /// that reported failure but still reached the disk supersedes it).
    Ok,
    /// The block holds an older stamp, another run's stamp, or zeros.
    Lost,
    /// The checksum fails, or a valid stamp sits at the wrong place.
    Corrupt,
}

/// Stamps and checks blocks for one probe run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamper {
    run: u64,
}

impl Stamper {
    pub fn new(run: u64) -> Self {
        Stamper { run }
    }

    /// A run id that differs between runs: from the kernel's random pool,
    /// falling back to the clock and pid.
    pub fn random() -> Self {
        let mut run = 0u64;
        // SAFETY: getrandom writes at most 8 bytes into the u64 we own.
        let n = unsafe { libc::getrandom((&mut run as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
        if n != 8 {
            run = crate::monotonic_ns() ^ (u64::from(std::process::id()) << 32);
        }
        Stamper { run }
    }

    pub fn run(&self) -> u64 {
        self.run
    }

    /// Fills `buf` (one whole block) with the stamp for `seq` at `block`.
    pub fn stamp(&self, buf: &mut [u8], seq: u64, block: u64) {
        assert!(buf.len() >= MIN_BLOCK_SIZE, "block too small for a stamp");
        let len = buf.len();
        buf[0..8].copy_from_slice(&MAGIC);
        buf[8..16].copy_from_slice(&self.run.to_le_bytes());
        buf[16..24].copy_from_slice(&seq.to_le_bytes());
        buf[24..32].copy_from_slice(&block.to_le_bytes());
        buf[32..36].copy_from_slice(&(len as u32).to_le_bytes());
        fill_payload(&mut buf[HEADER..len - 4], self.run, seq);
        let crc = crc32c::crc32c(&buf[..len - 4]);
        buf[len - 4..].copy_from_slice(&crc.to_le_bytes());
    }

    /// Judges a read-back block against the acknowledged write `expected_seq`.
    pub fn check(&self, buf: &[u8], expected_seq: u64, block: u64) -> Verdict {
        let len = buf.len();
        if len < MIN_BLOCK_SIZE || buf.iter().all(|&b| b == 0) {
            // Never written (or trimmed): the write is gone, nothing was mangled.
            return Verdict::Lost;
        }
        let crc = u32::from_le_bytes(buf[len - 4..].try_into().unwrap());
        if crc32c::crc32c(&buf[..len - 4]) != crc {
            return Verdict::Corrupt;
        }
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
        let size = u32::from_le_bytes(buf[32..36].try_into().unwrap());
        if buf[0..8] != MAGIC || size as usize != len {
            return Verdict::Corrupt;
        }
        let (run, seq) = (u64_at(8), u64_at(16));
        if run != self.run {
            return Verdict::Lost;
        }
        if u64_at(24) != block {
            // A valid stamp of this run, at the wrong place: a misdirected write.
            return Verdict::Corrupt;
        }
        let mut want = vec![0u8; len - 4 - HEADER];
        fill_payload(&mut want, run, seq);
        if buf[HEADER..len - 4] != want[..] {
            return Verdict::Corrupt;
        }
        if seq < expected_seq {
            Verdict::Lost
        } else {
            Verdict::Ok
        }
    }
}

/// A read-back sector: what [`Stamper::inspect`] compares.
const SECTOR: usize = 512;

impl Stamper {
    /// What `buf` (read from `block`, where write `expected_seq` should be)
    /// holds instead: zeroes, a whole stamp of this run or another, or a
    /// block that is none of them, with the sectors that differ from the
    /// expected write.
    pub fn inspect(&self, buf: &[u8], expected_seq: u64, block: u64) -> Found {
        let len = buf.len();
        if buf.iter().all(|&b| b == 0) {
            return Found::Zeroes;
        }
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
        let whole = len >= MIN_BLOCK_SIZE
            && buf[0..8] == MAGIC
            && u32::from_le_bytes(buf[32..36].try_into().unwrap()) as usize == len
            && crc32c::crc32c(&buf[..len - 4])
                == u32::from_le_bytes(buf[len - 4..].try_into().unwrap());
        if whole {
            let (run, seq, at) = (u64_at(8), u64_at(16), u64_at(24));
            let mut want = vec![0u8; len - 4 - HEADER];
            fill_payload(&mut want, run, seq);
            if buf[HEADER..len - 4] == want[..] {
                return if run == self.run {
                    Found::Stamp { seq, block: at }
                } else {
                    Found::OtherRun { seq }
                };
            }
        }
        let mut expected = vec![0u8; len];
        if len >= MIN_BLOCK_SIZE {
            self.stamp(&mut expected, expected_seq, block);
        }
        let sectors = buf
            .chunks(SECTOR)
            .zip(expected.chunks(SECTOR))
            .enumerate()
            .filter(|(_, (got, want))| got != want)
            .map(|(k, _)| k as u32)
            .collect();
        let header_seq = (len >= MIN_BLOCK_SIZE && buf[0..8] == MAGIC && u64_at(8) == self.run)
            .then(|| u64_at(16));
        Found::Torn {
            sectors,
            header_seq,
        }
    }
}

/// A splitmix64 stream seeded from (run, seq): every write's bytes differ, so a
/// stale block can never read back as the current one by accident.
fn fill_payload(out: &mut [u8], run: u64, seq: u64) {
    let mut state = run.rotate_left(17) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: usize = 4096;

    fn stamped(s: &Stamper, seq: u64, block: u64) -> Vec<u8> {
        let mut buf = vec![0u8; BS];
        s.stamp(&mut buf, seq, block);
        buf
    }

    #[test]
    fn good_block_passes() {
        let s = Stamper::new(42);
        for (seq, block) in [(0, 0), (7, 7), (123_456, 64), (u64::MAX, 3)] {
            assert_eq!(s.check(&stamped(&s, seq, block), seq, block), Verdict::Ok);
        }
    }

    #[test]
    fn works_for_every_sector_multiple() {
        let s = Stamper::new(1);
        for bs in [512, 1024, 4096, 65536] {
            let mut buf = vec![0u8; bs];
            s.stamp(&mut buf, 9, 2);
            assert_eq!(s.check(&buf, 9, 2), Verdict::Ok, "bs {bs}");
        }
    }

    #[test]
    fn older_seq_is_lost() {
        let s = Stamper::new(42);
        // Block 5 of 64 blocks: seq 5 was overwritten by acked seq 69.
        assert_eq!(s.check(&stamped(&s, 5, 5), 69, 5), Verdict::Lost);
    }

    #[test]
    fn newer_seq_of_this_run_supersedes() {
        let s = Stamper::new(42);
        assert_eq!(s.check(&stamped(&s, 69, 5), 5, 5), Verdict::Ok);
    }

    #[test]
    fn all_zeros_is_lost() {
        let s = Stamper::new(42);
        assert_eq!(s.check(&vec![0u8; BS], 3, 3), Verdict::Lost);
    }

    #[test]
    fn another_runs_stamp_is_lost_even_with_a_higher_seq() {
        let old = Stamper::new(1);
        let s = Stamper::new(2);
        assert_eq!(s.check(&stamped(&old, 1_000_000, 5), 5, 5), Verdict::Lost);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_corrupt() {
        let s = Stamper::new(42);
        let good = stamped(&s, 77, 13);
        for byte in 0..BS {
            for bit in [0, 3, 7] {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                assert_eq!(
                    s.check(&bad, 77, 13),
                    Verdict::Corrupt,
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn stamp_at_the_wrong_block_is_corrupt() {
        let s = Stamper::new(42);
        assert_eq!(s.check(&stamped(&s, 77, 12), 77, 13), Verdict::Corrupt);
    }

    #[test]
    fn stamp_of_another_block_size_is_corrupt() {
        let s = Stamper::new(42);
        // A 512-byte stamp followed by zeros, read back as a 4096-byte block.
        let mut buf = vec![0u8; BS];
        s.stamp(&mut buf[..512], 7, 7);
        assert_eq!(s.check(&buf, 7, 7), Verdict::Corrupt);
    }

    #[test]
    fn inspect_names_what_a_bad_block_holds() {
        let s = Stamper::new(42);
        assert_eq!(s.inspect(&vec![0u8; BS], 9, 3), Found::Zeroes);
        // An older version of the block: a lost update.
        let stale = stamped(&s, 5, 3);
        assert_eq!(s.inspect(&stale, 9, 3), Found::Stamp { seq: 5, block: 3 });
        assert_eq!(
            Found::Stamp { seq: 5, block: 3 }.class(9, 3),
            "stale version"
        );
        // Another block's write landed here.
        let misdirected = stamped(&s, 9, 4);
        assert_eq!(
            s.inspect(&misdirected, 9, 3),
            Found::Stamp { seq: 9, block: 4 }
        );
        assert_eq!(Found::Stamp { seq: 9, block: 4 }.class(9, 3), "misdirected");
        // An earlier run's bytes.
        let old = stamped(&Stamper::new(7), 100, 3);
        assert_eq!(s.inspect(&old, 9, 3), Found::OtherRun { seq: 100 });
        // Torn: the first two sectors of the new write, the rest of the old.
        let mut torn = stamped(&s, 5, 3);
        torn[..1024].copy_from_slice(&stamped(&s, 9, 3)[..1024]);
        assert_eq!(
            s.inspect(&torn, 9, 3),
            Found::Torn {
                sectors: (2..8).collect(),
                header_seq: Some(9)
            }
        );
        // Garbage in one sector of the expected write.
        let mut flipped = stamped(&s, 9, 3);
        flipped[3000] ^= 1;
        assert_eq!(
            s.inspect(&flipped, 9, 3),
            Found::Torn {
                sectors: vec![5],
                header_seq: Some(9)
            }
        );
    }

    #[test]
    fn random_run_ids_differ() {
        assert_ne!(Stamper::random().run(), Stamper::random().run());
    }
}
