//! Frames seen at a path's switch into history events: TCP marks (SYN,
//! FIN, RST, data sent again) and every iSCSI PDU, each stamped with the
//! frame its header began in. A connection is the initiator's address and
//! the target's, per path; each direction is a [`Stream`] as its sender
//! sent it (a frame the nemesis dropped was still sent; a frame the switch
//! made, like a reset's RST, is no one's stream and only marked).

use std::collections::HashMap;
use std::net::SocketAddrV4;

use iscsi_chaos_formats::wire::{Dir, Fate, Wire, WireWhat};

use super::frame::{tcp_segment, TCP_SYN};
use super::iscsi;
use super::stream::{Framed, Stream};

/// One frame as the capture saw it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// When it came into the switch (for `Made`: when it left), seconds.
    pub t: f64,
    pub path: u8,
    pub dir: Dir,
    pub fate: Fate,
    pub delay_s: Option<f64>,
    /// The captured bytes, from the Ethernet header on.
    pub data: &'a [u8],
}

/// What a PDU's header frame brought along.
#[derive(Debug, Clone, Copy)]
struct Meta {
    t: f64,
    fate: Fate,
    delay_s: Option<f64>,
}

struct Conn {
    to_target: Stream<Meta>,
    to_initiator: Stream<Meta>,
    /// Login text from the target so far (continued PDUs).
    login_text: Vec<u8>,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            to_target: Stream::new(true),
            to_initiator: Stream::new(false),
            login_text: Vec::new(),
        }
    }
}

/// Decodes one run's frames, in the order they came into the switch.
#[derive(Default)]
pub struct Decoder {
    conns: HashMap<(u8, SocketAddrV4, SocketAddrV4), Conn>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// The events `frame` brings, as (time, event).
    pub fn feed(&mut self, frame: &Frame) -> Vec<(f64, Wire)> {
        let mut out = Vec::new();
        let Some(seg) = tcp_segment(frame.data) else {
            return out;
        };
        let (initiator, target) = match frame.dir {
            Dir::ToTarget => (seg.src, seg.dst),
            Dir::ToInitiator => (seg.dst, seg.src),
        };
        let event = |t: f64, fate: Fate, delay_s: Option<f64>, what: WireWhat| {
            (
                t,
                Wire {
                    path: frame.path,
                    dir: frame.dir,
                    port: initiator.port(),
                    fate,
                    delay_s,
                    what,
                },
            )
        };
        let mark = seg.mark();
        if frame.fate == Fate::Made {
            out.push(event(
                frame.t,
                frame.fate,
                None,
                WireWhat::Tcp {
                    flags: mark.to_string(),
                    retransmission: false,
                },
            ));
            return out;
        }
        let conn = self
            .conns
            .entry((frame.path, initiator, target))
            .or_insert_with(Conn::new);
        let meta = Meta {
            t: frame.t,
            fate: frame.fate,
            delay_s: frame.delay_s,
        };
        let stream = match frame.dir {
            Dir::ToTarget => &mut conn.to_target,
            Dir::ToInitiator => &mut conn.to_initiator,
        };
        if seg.flags & TCP_SYN != 0 {
            stream.syn(seg.seq);
        }
        let fed = stream.segment(seg.seq, seg.payload, seg.missing, &meta);
        if !mark.is_empty() || fed.retransmission {
            out.push(event(
                frame.t,
                frame.fate,
                frame.delay_s,
                WireWhat::Tcp {
                    flags: mark.to_string(),
                    retransmission: fed.retransmission,
                },
            ));
        }
        for framed in fed.pdus {
            conn.negotiate(&framed);
            let Framed { bhs, data, meta } = framed;
            let pdu = iscsi::decode(&bhs, &data);
            out.push(event(meta.t, meta.fate, meta.delay_s, WireWhat::Pdu(pdu)));
        }
        out
    }
}

/// Decodes a capture file this harness wrote (what the run's history
/// holds of it, in the file's clock).
pub fn decode_file(bytes: &[u8]) -> Result<Vec<(f64, Wire)>, String> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for f in super::pcapng::read(bytes)? {
        out.extend(decoder.feed(&Frame {
            t: f.t,
            path: f.path,
            dir: f.dir,
            fate: f.fate,
            delay_s: f.delay_s,
            data: &f.data,
        }));
    }
    Ok(out)
}

impl Conn {
    /// A login response's text says which digests the connection uses from
    /// the full-feature phase on.
    fn negotiate(&mut self, framed: &Framed<Meta>) {
        if framed.bhs[0] & 0x3f != iscsi::LOGIN_RESPONSE {
            return;
        }
        self.login_text.extend_from_slice(&framed.data);
        if iscsi::ends_login(&framed.bhs) {
            let (header, data) = iscsi::negotiated(&self.login_text);
            for framer in [&mut self.to_target.framer, &mut self.to_initiator.framer] {
                framer.header_digest = header.unwrap_or(false);
                framer.data_digest = data.unwrap_or(false);
            }
            self.login_text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{build, TCP_ACK, TCP_RST};
    use super::super::iscsi::build::*;
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    struct Wire2 {
        dec: Decoder,
        seq: [u32; 2],
        t: f64,
        out: Vec<(f64, Wire)>,
    }

    impl Wire2 {
        fn new() -> Wire2 {
            Wire2 {
                dec: Decoder::new(),
                seq: [1000, 5000],
                t: 0.0,
                out: Vec::new(),
            }
        }

        fn send(&mut self, dir: Dir, flags: u8, payload: &[u8], fate: Fate) {
            let (i, t) = (addr("10.9.0.1:50000"), addr("10.9.0.2:3260"));
            let k = usize::from(dir == Dir::ToInitiator);
            let (src, dst) = if k == 0 { (i, t) } else { (t, i) };
            let f = build(src, dst, self.seq[k], flags, payload);
            if fate != Fate::Made {
                self.seq[k] = self.seq[k].wrapping_add(payload.len() as u32);
                if flags & TCP_SYN != 0 {
                    self.seq[k] = self.seq[k].wrapping_add(1);
                }
            }
            self.t += 0.001;
            let frame = Frame {
                t: self.t,
                path: 1,
                dir,
                fate,
                delay_s: None,
                data: &f,
            };
            self.out.extend(self.dec.feed(&frame));
        }

        fn pdus(&self) -> Vec<String> {
            self.out
                .iter()
                .filter_map(|(_, w)| match &w.what {
                    WireWhat::Pdu(p) => Some(match &p.cdb {
                        Some(c) => format!("{}:{}", p.op, c.name),
                        None => p.op.clone(),
                    }),
                    WireWhat::Tcp { .. } => None,
                })
                .collect()
        }
    }

    fn login_response(text: &[u8]) -> Vec<u8> {
        let mut b = bhs(iscsi::LOGIN_RESPONSE, 0, 0, 0);
        b[1] = 0x80 | 0x04 | 0x03; // T, CSG 1, NSG 3
        pdu(b, text, false, false)
    }

    #[test]
    fn a_session_with_digests_decodes_after_its_login() {
        let mut w = Wire2::new();
        w.send(Dir::ToTarget, TCP_SYN, b"", Fate::Delivered);
        w.send(Dir::ToInitiator, TCP_SYN | TCP_ACK, b"", Fate::Delivered);
        let req = pdu(
            bhs(iscsi::LOGIN_REQUEST | 0x40, 0, 0, 0),
            b"HeaderDigest=CRC32C,None\0",
            false,
            false,
        );
        w.send(Dir::ToTarget, TCP_ACK, &req, Fate::Delivered);
        w.send(
            Dir::ToInitiator,
            TCP_ACK,
            &login_response(b"HeaderDigest=CRC32C\0DataDigest=CRC32C\0"),
            Fate::Delivered,
        );
        let write = pdu(rw10(true, 5, 1, 1181, 8), &[7; 4096], true, true);
        for part in write.chunks(1448) {
            w.send(Dir::ToTarget, TCP_ACK, part, Fate::Delivered);
        }
        let mut resp = bhs(iscsi::SCSI_RESPONSE, 0, 5, 1);
        resp[3] = 0x18;
        w.send(
            Dir::ToInitiator,
            TCP_ACK,
            &pdu(resp, &[], true, true),
            Fate::Delivered,
        );
        assert_eq!(
            w.pdus(),
            [
                "login_request",
                "login_response",
                "scsi_command:WRITE(10)",
                "scsi_response"
            ]
        );
        let status = w.out.iter().find_map(|(_, e)| match &e.what {
            WireWhat::Pdu(p) if p.op == "scsi_response" => p.status,
            _ => None,
        });
        assert_eq!(status, Some(0x18), "RESERVATION CONFLICT");
        let (_, first) = &w.out[0];
        assert_eq!(
            (first.path, first.port, first.dir),
            (1, 50000, Dir::ToTarget)
        );
    }

    #[test]
    fn a_dropped_frame_s_pdu_keeps_its_fate_and_its_resend_is_a_retransmission() {
        let mut w = Wire2::new();
        w.send(Dir::ToTarget, TCP_SYN, b"", Fate::Delivered);
        let read = pdu(rw10(false, 9, 3, 0, 8), &[], false, false);
        w.send(Dir::ToTarget, TCP_ACK, &read, Fate::Dropped);
        w.seq[0] -= read.len() as u32;
        w.send(Dir::ToTarget, TCP_ACK, &read, Fate::Delivered);
        let fates: Vec<_> = w
            .out
            .iter()
            .map(|(_, e)| (e.fate, matches!(e.what, WireWhat::Pdu(_))))
            .collect();
        assert_eq!(
            fates,
            [
                (Fate::Delivered, false),
                (Fate::Dropped, true),
                (Fate::Delivered, false)
            ]
        );
        assert!(matches!(
            &w.out[2].1.what,
            WireWhat::Tcp {
                retransmission: true,
                ..
            }
        ));
    }

    #[test]
    fn a_reset_the_switch_made_is_marked_without_touching_the_stream() {
        let mut w = Wire2::new();
        w.send(Dir::ToTarget, TCP_SYN, b"", Fate::Delivered);
        w.send(Dir::ToInitiator, TCP_RST, b"", Fate::Made);
        let nop = pdu(bhs(iscsi::NOP_OUT, 0, 1, 1), &[], false, false);
        w.send(Dir::ToTarget, TCP_ACK, &nop, Fate::Delivered);
        assert!(matches!(&w.out[1].1.what, WireWhat::Tcp { flags, .. } if flags == "RST"));
        assert_eq!(w.out[1].1.fate, Fate::Made);
        assert_eq!(w.pdus(), ["nop_out"]);
    }
}
