//! A run's capture file (pcapng, which Wireshark and tshark open): one
//! interface per path and direction (`path0 to_target`, ...), each frame at
//! the time it came into the switch, its fate in its comment when it was
//! not simply delivered. Written in memory up to a size cap, then stopped
//! (what was refused is counted); read back by the tests and the tshark
//! comparison.

use std::borrow::Cow;
use std::time::Duration;

use iscsi_chaos_formats::wire::{Dir, Fate};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::DataLink;

/// Nanosecond timestamps (`if_tsresol` 9).
const TS_RESOL_NS: u8 = 9;
const DROPPED: &str = "dropped by the switch";
const MADE: &str = "made by the switch";
const DELIVERED_AFTER: &str = "delivered after ";

/// The file's interface of a path and direction.
pub fn interface_id(path: u8, dir: Dir) -> u32 {
    u32::from(path) * 2 + u32::from(dir == Dir::ToInitiator)
}

fn dir_name(dir: Dir) -> &'static str {
    match dir {
        Dir::ToTarget => "to_target",
        Dir::ToInitiator => "to_initiator",
    }
}

/// A frame going into the file.
pub struct Record<'a> {
    /// Wall-clock time (the file's clock).
    pub realtime: Duration,
    pub path: u8,
    pub dir: Dir,
    pub fate: Fate,
    pub delay_s: Option<f64>,
    pub data: &'a [u8],
    pub orig_len: u32,
}

/// The file being written.
pub struct Writer {
    inner: PcapNgWriter<Vec<u8>>,
    paths: u8,
    snaplen: u32,
    cap: usize,
    pub written: u64,
    /// Frames refused once the cap was reached.
    pub refused: u64,
}

impl Writer {
    pub fn new(snaplen: u32, cap: usize) -> Writer {
        let inner = PcapNgWriter::new(Vec::new()).expect("writing a section header to memory");
        Writer {
            inner,
            paths: 0,
            snaplen,
            cap,
            written: 0,
            refused: 0,
        }
    }

    fn ensure_interfaces(&mut self, path: u8) {
        while self.paths <= path {
            let p = self.paths;
            for dir in [Dir::ToTarget, Dir::ToInitiator] {
                let idb = InterfaceDescriptionBlock {
                    linktype: DataLink::ETHERNET,
                    snaplen: self.snaplen,
                    options: vec![
                        InterfaceDescriptionOption::IfName(Cow::Owned(format!(
                            "path{p} {}",
                            dir_name(dir)
                        ))),
                        InterfaceDescriptionOption::IfDescription(Cow::Owned(format!(
                            "frames of path {p} going {} as they came into the switch",
                            dir_name(dir)
                        ))),
                        InterfaceDescriptionOption::IfTsResol(TS_RESOL_NS),
                    ],
                };
                self.inner
                    .write_pcapng_block(idb)
                    .expect("writing to memory");
            }
            self.paths += 1;
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.inner.get_ref().len()
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Adds `r` unless the file is at its cap; says whether it did.
    pub fn write(&mut self, r: &Record) -> bool {
        if self.len() + r.data.len() + 64 > self.cap {
            self.refused += 1;
            return false;
        }
        self.ensure_interfaces(r.path);
        let comment = match (r.fate, r.delay_s) {
            (Fate::Dropped, _) => Some(DROPPED.to_string()),
            (Fate::Made, _) => Some(MADE.to_string()),
            (Fate::Delivered, Some(d)) if d >= 0.001 => Some(format!("{DELIVERED_AFTER}{d:.6} s")),
            (Fate::Delivered, _) => None,
        };
        let epb = EnhancedPacketBlock {
            interface_id: interface_id(r.path, r.dir),
            timestamp: r.realtime,
            original_len: r.orig_len,
            data: Cow::Borrowed(r.data),
            options: comment
                .map(|c| vec![EnhancedPacketOption::Comment(Cow::Owned(c))])
                .unwrap_or_default(),
        };
        self.inner
            .write_pcapng_block(epb)
            .expect("writing to memory");
        self.written += 1;
        true
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.inner.into_inner()
    }
}

/// A frame read back from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadFrame {
    /// Seconds since the epoch.
    pub t: f64,
    pub path: u8,
    pub dir: Dir,
    pub fate: Fate,
    pub delay_s: Option<f64>,
    pub data: Vec<u8>,
}

/// The frames of a file this module wrote.
pub fn read(bytes: &[u8]) -> Result<Vec<ReadFrame>, String> {
    let mut reader = PcapNgReader::new(bytes).map_err(|e| format!("not a pcapng file: {e}"))?;
    let mut out = Vec::new();
    while let Some(block) = reader.next_block() {
        let block = block.map_err(|e| format!("a bad block: {e}"))?;
        let Block::EnhancedPacket(epb) = block else {
            continue;
        };
        let id = epb.interface_id;
        let path = u8::try_from(id / 2).map_err(|_| format!("interface {id}: not ours"))?;
        let dir = if id % 2 == 0 {
            Dir::ToTarget
        } else {
            Dir::ToInitiator
        };
        let mut fate = Fate::Delivered;
        let mut delay_s = None;
        for opt in &epb.options {
            if let EnhancedPacketOption::Comment(c) = opt {
                if c == DROPPED {
                    fate = Fate::Dropped;
                } else if c == MADE {
                    fate = Fate::Made;
                } else if let Some(d) = c.strip_prefix(DELIVERED_AFTER) {
                    delay_s = d.trim_end_matches(" s").parse().ok();
                }
            }
        }
        out.push(ReadFrame {
            t: epb.timestamp.as_secs_f64(),
            path,
            dir,
            fate,
            delay_s,
            data: epb.data.into_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: u8, dir: Dir, fate: Fate, data: &[u8]) -> Record<'_> {
        Record {
            realtime: Duration::new(1_700_000_000, 123_456_789),
            path,
            dir,
            fate,
            delay_s: (fate == Fate::Delivered).then_some(0.25),
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn frames_come_back_with_their_path_direction_and_fate() {
        let mut w = Writer::new(65535, 1 << 20);
        assert!(w.write(&record(0, Dir::ToTarget, Fate::Delivered, b"abc")));
        assert!(w.write(&record(1, Dir::ToInitiator, Fate::Made, b"rst")));
        assert!(w.write(&record(1, Dir::ToTarget, Fate::Dropped, b"lost")));
        let frames = read(&w.into_bytes()).unwrap();
        let got: Vec<_> = frames
            .iter()
            .map(|f| (f.path, f.dir, f.fate, f.delay_s, f.data.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    0,
                    Dir::ToTarget,
                    Fate::Delivered,
                    Some(0.25),
                    b"abc".to_vec()
                ),
                (1, Dir::ToInitiator, Fate::Made, None, b"rst".to_vec()),
                (1, Dir::ToTarget, Fate::Dropped, None, b"lost".to_vec()),
            ]
        );
        assert!((frames[0].t - 1_700_000_000.123_457).abs() < 1e-5);
    }

    #[test]
    fn the_cap_stops_the_file_and_counts_what_it_refused() {
        let mut w = Writer::new(65535, 1000);
        let frame = [0u8; 300];
        let mut kept = 0;
        for _ in 0..10 {
            kept += usize::from(w.write(&record(0, Dir::ToTarget, Fate::Delivered, &frame)));
        }
        assert!((1..10).contains(&kept), "{kept}");
        assert_eq!(w.refused, 10 - kept as u64);
        assert!(w.len() <= 1000);
    }
}
