//! One direction of one TCP connection as its sender sent it: segments put
//! in order by sequence number (data sent again is told apart and taken
//! once), and the byte stream cut into iSCSI PDUs.
//!
//! A sender sends in order (what it sends again overlaps what it sent), so
//! a segment beyond the next byte expected means bytes never seen (the
//! capture file leaves out frames outside its windows; the kernel dropped
//! some before the capture read them). A stream may have holes of another
//! kind too: bytes the snap length cut off (a data segment's bytes are
//! skipped without being read). A hole inside a header loses the PDU
//! boundaries; the framer then hunts: it takes the start of a later segment
//! for a header only if it is plausible (a known opcode of the sender's
//! side, sane lengths, a matching header digest).

use super::iscsi::{self, Lengths, BHS, DATA_KEPT};

/// A PDU cut from the stream: its header, the first bytes of its data
/// segment, and what came with the frame its header began in.
#[derive(Debug, Clone)]
pub struct Framed<M> {
    pub bhs: Vec<u8>,
    pub data: Vec<u8>,
    pub meta: M,
}

/// What one segment added.
#[derive(Debug)]
pub struct Fed<M> {
    /// Some of its payload had been sent before.
    pub retransmission: bool,
    pub pdus: Vec<Framed<M>>,
}

enum State<M> {
    /// Gathering a header (BHS, AHS, header digest) of `need` bytes.
    Header {
        buf: Vec<u8>,
        need: usize,
        meta: Option<M>,
    },
    /// Passing over a data segment: `left` bytes to go.
    Data {
        bhs: Vec<u8>,
        kept: Vec<u8>,
        keep: usize,
        left: u64,
        meta: M,
    },
    /// Boundaries lost: waiting for a segment that starts with a header.
    Hunting,
}

/// Cuts one direction's bytes into PDUs.
pub struct Framer<M> {
    from_initiator: bool,
    pub header_digest: bool,
    pub data_digest: bool,
    state: State<M>,
}

impl<M: Clone> Framer<M> {
    pub fn new(from_initiator: bool) -> Framer<M> {
        Framer {
            from_initiator,
            header_digest: false,
            data_digest: false,
            state: State::Header {
                buf: Vec::new(),
                need: BHS,
                meta: None,
            },
        }
    }

    /// Bytes that follow in order: `bytes`, then `missing` bytes not seen.
    /// `segment_start`: `bytes` begins a segment (where hunting may resume).
    pub fn push(
        &mut self,
        mut bytes: &[u8],
        missing: usize,
        segment_start: bool,
        meta: &M,
    ) -> Vec<Framed<M>> {
        let mut out = Vec::new();
        if matches!(self.state, State::Hunting) {
            if segment_start && iscsi::plausible(bytes, self.from_initiator, self.header_digest) {
                self.state = State::Header {
                    buf: Vec::new(),
                    need: BHS,
                    meta: None,
                };
            } else {
                return out;
            }
        }
        let mut missing = missing as u64;
        let (header_digest, data_digest) = (self.header_digest, self.data_digest);
        loop {
            match &mut self.state {
                State::Hunting => return out,
                State::Header { buf, need, meta: m } => {
                    if bytes.is_empty() {
                        if missing > 0 {
                            self.state = State::Hunting;
                        }
                        return out;
                    }
                    if m.is_none() {
                        *m = Some(meta.clone());
                    }
                    let take = (*need - buf.len()).min(bytes.len());
                    buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if buf.len() < *need {
                        continue;
                    }
                    let l = Lengths::of(buf);
                    let digests = digests_apply(l.opcode);
                    let full = BHS + l.ahs + if digests && header_digest { 4 } else { 0 };
                    if buf.len() < full {
                        *need = full;
                        continue;
                    }
                    let bhs = buf[..BHS].to_vec();
                    let m = m.take().unwrap_or_else(|| meta.clone());
                    let left = l.after_header(digests && data_digest);
                    let keep = match l.opcode {
                        iscsi::SCSI_RESPONSE | iscsi::LOGIN_RESPONSE | 0x24 => {
                            (l.data as usize).min(DATA_KEPT)
                        }
                        _ => 0,
                    };
                    self.state = State::Data {
                        bhs,
                        kept: Vec::new(),
                        keep,
                        left,
                        meta: m,
                    };
                }
                State::Data {
                    kept, keep, left, ..
                } => {
                    let take = (*left).min(bytes.len() as u64) as usize;
                    if kept.len() < *keep {
                        let k = (*keep - kept.len()).min(take);
                        kept.extend_from_slice(&bytes[..k]);
                    }
                    bytes = &bytes[take..];
                    *left -= take as u64;
                    if *left > 0 && missing > 0 {
                        let skip = (*left).min(missing);
                        *left -= skip;
                        missing -= skip;
                        // A hole inside a kept prefix: the prefix stops there.
                        *keep = kept.len();
                    }
                    if *left > 0 {
                        return out;
                    }
                    let done = std::mem::replace(
                        &mut self.state,
                        State::Header {
                            buf: Vec::new(),
                            need: BHS,
                            meta: None,
                        },
                    );
                    if let State::Data {
                        bhs, kept, meta, ..
                    } = done
                    {
                        out.push(Framed {
                            bhs,
                            data: kept,
                            meta,
                        });
                    }
                    if bytes.is_empty() && missing == 0 {
                        return out;
                    }
                }
            }
        }
    }

    /// Bytes were lost before what comes next.
    pub fn lose(&mut self) {
        self.state = State::Hunting;
    }
}

/// Login PDUs never carry digests: what a login negotiates applies from
/// the full-feature phase on.
fn digests_apply(opcode: u8) -> bool {
    !matches!(opcode, iscsi::LOGIN_REQUEST | iscsi::LOGIN_RESPONSE)
}

/// One direction of one connection.
pub struct Stream<M> {
    /// Sequence number of the first payload byte.
    base: Option<u32>,
    /// Offset (from `base`) of the next byte expected.
    next: u64,
    pub framer: Framer<M>,
}

impl<M: Clone> Stream<M> {
    pub fn new(from_initiator: bool) -> Stream<M> {
        Stream {
            base: None,
            next: 0,
            framer: Framer::new(from_initiator),
        }
    }

    /// The offset of sequence number `seq`, near `next` (wraps handled).
    fn offset(&self, base: u32, seq: u32) -> u64 {
        let expected = base.wrapping_add(self.next as u32);
        let diff = seq.wrapping_sub(expected) as i32 as i64;
        (self.next as i64 + diff).max(0) as u64
    }

    /// A SYN: the stream starts (again) after `seq`.
    pub fn syn(&mut self, seq: u32) {
        let from_initiator = self.framer.from_initiator;
        *self = Stream::new(from_initiator);
        self.base = Some(seq.wrapping_add(1));
    }

    /// A segment's payload (`bytes`, then `missing` bytes cut off) at `seq`.
    pub fn segment(&mut self, seq: u32, bytes: &[u8], missing: usize, meta: &M) -> Fed<M> {
        let len = (bytes.len() + missing) as u64;
        let mut fed = Fed {
            retransmission: false,
            pdus: Vec::new(),
        };
        if len == 0 {
            return fed;
        }
        let base = match self.base {
            Some(b) => b,
            None => {
                // Joined mid-stream: the first segment starts the stream,
                // and only a plausible header starts the framing.
                self.base = Some(seq);
                self.framer.lose();
                seq
            }
        };
        let start = self.offset(base, seq);
        let end = start + len;
        if end <= self.next {
            fed.retransmission = true;
            return fed;
        }
        if start > self.next {
            // Bytes never seen before this segment.
            self.framer.lose();
            self.next = start;
        }
        let skip = (self.next - start) as usize;
        fed.retransmission = skip > 0;
        let (bytes, missing) = trim(bytes, missing, skip);
        fed.pdus
            .extend(self.framer.push(bytes, missing, skip == 0, meta));
        self.next = end;
        fed
    }
}

/// `bytes` then `missing`, without their first `skip` bytes.
fn trim(bytes: &[u8], missing: usize, skip: usize) -> (&[u8], usize) {
    if skip <= bytes.len() {
        (&bytes[skip..], missing)
    } else {
        (&[], missing - (skip - bytes.len()).min(missing))
    }
}

#[cfg(test)]
mod tests {
    use super::super::iscsi::build::*;
    use super::*;

    fn ops(pdus: &[Framed<u32>]) -> Vec<(u8, u32)> {
        pdus.iter().map(|p| (p.bhs[0] & 0x3f, p.meta)).collect()
    }

    fn write_pdu(itt: u32, hd: bool, dd: bool) -> Vec<u8> {
        pdu(rw10(true, itt, itt, itt, 8), &[0xab; 4096], hd, dd)
    }

    #[test]
    fn pdus_split_across_segments_are_framed_once_each() {
        for (hd, dd) in [(false, false), (true, false), (true, true)] {
            let mut bytes = write_pdu(1, hd, dd);
            bytes.extend(write_pdu(2, hd, dd));
            let mut s = Stream::<u32>::new(true);
            s.syn(99);
            s.framer.header_digest = hd;
            s.framer.data_digest = dd;
            let mut got = Vec::new();
            // Segments of 1000 bytes: headers and data cut anywhere.
            for (k, chunk) in bytes.chunks(1000).enumerate() {
                let seq = 100 + (k * 1000) as u32;
                got.extend(s.segment(seq, chunk, 0, &(k as u32)).pdus);
            }
            assert_eq!(got.len(), 2, "digests {hd}/{dd}");
            let second_at = write_pdu(1, hd, dd).len() / 1000;
            assert_eq!(ops(&got), vec![(1, 0), (1, second_at as u32)]);
        }
    }

    #[test]
    fn data_sent_again_is_marked_and_taken_once() {
        let bytes = [write_pdu(1, false, false), write_pdu(2, false, false)].concat();
        let mut s = Stream::<u32>::new(true);
        s.syn(0);
        let (a, b) = bytes.split_at(3000);
        assert_eq!(s.segment(1, a, 0, &0).pdus.len(), 0);
        let again = s.segment(1, a, 0, &1);
        assert!(again.retransmission && again.pdus.is_empty());
        // Overlapping the end of what was seen, and bringing new bytes.
        let overlap = &bytes[2000..];
        let fed = s.segment(2001, overlap, 0, &2);
        assert!(fed.retransmission);
        assert_eq!(fed.pdus.len(), 2);
        let _ = b;
    }

    #[test]
    fn after_bytes_never_seen_framing_resumes_at_a_plausible_header() {
        let bytes = [
            write_pdu(1, false, false),
            write_pdu(2, false, false),
            write_pdu(3, false, false),
        ]
        .concat();
        let mut s = Stream::<u32>::new(true);
        s.syn(0);
        // The first segment and the middle of the second PDU are missing;
        // data that does not look like a header is passed over.
        assert!(s
            .segment(1 + 4144 + 1000, &bytes[5144..8288], 0, &1)
            .pdus
            .is_empty());
        let fed = s.segment(1 + 8288, &bytes[8288..], 0, &2);
        assert_eq!(ops(&fed.pdus), vec![(1, 2)]);
    }

    #[test]
    fn bytes_cut_by_the_snap_length_inside_data_keep_the_boundaries() {
        let one = write_pdu(1, false, false);
        let two = write_pdu(2, false, false);
        let mut s = Stream::<u32>::new(true);
        s.syn(0);
        // Each segment is one PDU, of which only 100 bytes were captured.
        let f1 = s.segment(1, &one[..100], one.len() - 100, &0);
        let f2 = s.segment(1 + one.len() as u32, &two[..100], two.len() - 100, &1);
        assert_eq!(ops(&[f1.pdus, f2.pdus].concat()), vec![(1, 0), (1, 1)]);
    }

    #[test]
    fn a_hole_in_a_header_hunts_for_the_next_plausible_one() {
        let one = write_pdu(1, true, false);
        let two = write_pdu(2, true, false);
        let mut s = Stream::<u32>::new(true);
        s.syn(0);
        s.framer.header_digest = true;
        // The first segment lost 20 bytes of its header (cut short).
        assert!(s.segment(1, &one[..20], one.len() - 20, &0).pdus.is_empty());
        let fed = s.segment(1 + one.len() as u32, &two, 0, &1);
        assert_eq!(ops(&fed.pdus), vec![(1, 1)]);
    }

    #[test]
    fn a_stream_joined_in_the_middle_starts_at_a_plausible_header() {
        let one = write_pdu(1, false, false);
        let two = write_pdu(2, false, false);
        let mut s = Stream::<u32>::new(true);
        assert!(s.segment(5000, &one[1000..2000], 0, &0).pdus.is_empty());
        let at = 5000 + 1000 + (one.len() as u32 - 2000);
        let _ = s.segment(6000, &one[2000..], 0, &1);
        let fed = s.segment(at, &two, 0, &2);
        assert_eq!(ops(&fed.pdus), vec![(1, 2)]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let one = write_pdu(1, false, false);
        let mut s = Stream::<u32>::new(true);
        s.syn(u32::MAX - 10);
        let mut got = Vec::new();
        for (k, c) in one.chunks(500).enumerate() {
            let seq = (u32::MAX - 9).wrapping_add((k * 500) as u32);
            got.extend(s.segment(seq, c, 0, &0).pdus);
        }
        assert_eq!(got.len(), 1);
    }
}
