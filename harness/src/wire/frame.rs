//! Ethernet, IPv4 and TCP headers of one captured frame: where its TCP
//! payload is, and how much of it the snap length cut off.

use std::net::{Ipv4Addr, SocketAddrV4};

pub const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPPROTO_TCP: u8 = 6;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// The TCP segment a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: u32,
    pub flags: u8,
    /// The payload bytes the capture holds.
    pub payload: &'a [u8],
    /// Payload bytes the segment had beyond those (cut by the snap length).
    pub missing: usize,
}

impl Segment<'_> {
    /// Payload length on the wire.
    pub fn len(&self) -> usize {
        self.payload.len() + self.missing
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flags worth a mark, by name ("" for none).
    pub fn mark(&self) -> &'static str {
        let f = self.flags;
        if f & TCP_RST != 0 {
            "RST"
        } else if f & TCP_SYN != 0 && f & TCP_ACK != 0 {
            "SYN-ACK"
        } else if f & TCP_SYN != 0 {
            "SYN"
        } else if f & TCP_FIN != 0 {
            "FIN"
        } else {
            ""
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The TCP segment of a captured Ethernet frame, or `None` for anything else (ARP, IPv6, a fragment, a frame
/// cut inside its headers).
pub fn tcp_segment(captured: &[u8]) -> Option<Segment<'_>> {
    let mut at = ETH_HEADER;
    if captured.len() < at {
        return None;
    }
    let mut ethertype = be16(captured, 12);
    if ethertype == ETHERTYPE_VLAN {
        if captured.len() < at + 4 {
            return None;
        }
        ethertype = be16(captured, 16);
        at += 4;
    }
    if ethertype != ETHERTYPE_IPV4 || captured.len() < at + 20 {
        return None;
    }
    let ip = &captured[at..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != IPPROTO_TCP {
        return None;
    }
    // A fragment (more fragments, or an offset) is not a whole segment.
    if be16(ip, 6) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(be16(ip, 2));
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let tcp_at = at + ihl;
    if captured.len() < tcp_at + 20 {
        return None;
    }
    let tcp = &captured[tcp_at..];
    let data_off = usize::from(tcp[12] >> 4) * 4;
    if data_off < 20 || captured.len() < tcp_at + data_off {
        return None;
    }
    // The payload's length from the IP header (a frame may be padded; a
    // segmentation-offload frame's header holds its whole length).
    let wire_payload = total.checked_sub(ihl + data_off)?;
    let start = tcp_at + data_off;
    let have = captured.len().saturating_sub(start).min(wire_payload);
    Some(Segment {
        src: SocketAddrV4::new(src_ip, be16(tcp, 0)),
        dst: SocketAddrV4::new(dst_ip, be16(tcp, 2)),
        seq: be32(tcp, 4),
        flags: tcp[13],
        payload: &captured[start..start + have],
        missing: wire_payload - have,
    })
}

/// Builds an Ethernet/IPv4/TCP frame (tests and golden data).
#[cfg(test)]
pub fn build(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; ETH_HEADER];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let total = (20 + 20 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IPPROTO_TCP, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src.ip().octets());
    ip.extend_from_slice(&dst.ip().octets());
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&0u32.to_be_bytes());
    tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f.extend_from_slice(payload);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn a_segment_s_addresses_flags_and_payload_are_read() {
        let f = build(
            addr("10.1.0.1:40000"),
            addr("10.1.0.2:3260"),
            7,
            TCP_ACK,
            b"abcd",
        );
        let s = tcp_segment(&f).unwrap();
        assert_eq!(s.src, addr("10.1.0.1:40000"));
        assert_eq!(s.dst, addr("10.1.0.2:3260"));
        assert_eq!((s.seq, s.payload, s.missing), (7, &b"abcd"[..], 0));
        assert_eq!(s.mark(), "");
    }

    #[test]
    fn a_frame_cut_by_the_snap_length_says_what_it_misses() {
        let f = build(
            addr("10.1.0.1:1"),
            addr("10.1.0.2:3260"),
            0,
            TCP_ACK,
            &[9; 100],
        );
        let cut = &f[..f.len() - 60];
        let s = tcp_segment(cut).unwrap();
        assert_eq!((s.payload.len(), s.missing, s.len()), (40, 60, 100));
    }

    #[test]
    fn padding_after_a_short_segment_is_not_payload() {
        let mut f = build(addr("10.1.0.1:1"), addr("10.1.0.2:3260"), 0, TCP_SYN, b"");
        f.extend_from_slice(&[0; 6]);
        let s = tcp_segment(&f).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.mark(), "SYN");
    }

    #[test]
    fn anything_but_ipv4_tcp_is_none() {
        let mut f = build(addr("10.1.0.1:1"), addr("10.1.0.2:3260"), 0, 0, b"x");
        f[12] = 0x08;
        f[13] = 0x06; // ARP
        assert!(tcp_segment(&f).is_none());
        assert!(tcp_segment(&f[..20]).is_none());
    }
}
