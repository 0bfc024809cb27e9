//! iSCSI PDUs (RFC 7143): the basic header segment's fields the history
//! keeps, the CDB of a SCSI Command, the sense key of a response, the
//! digests a login negotiated, and CRC32C (which the header digest is, and
//! which tells a real header from payload when a stream is resynchronised).

use iscsi_chaos_formats::wire::{Cdb, Pdu};

/// The basic header segment's length.
pub const BHS: usize = 48;
/// Bytes of a data segment kept for decoding (sense data, login text).
pub const DATA_KEPT: usize = 1024;
/// The largest data segment taken for real when hunting for a header
/// (RFC 7143 allows 2^24 - 1; Linux and the targets negotiate 256 KiB at
/// most).
const MAX_PLAUSIBLE_DATA: u32 = 16 * 1024 * 1024;

pub const NOP_OUT: u8 = 0x00;
pub const SCSI_COMMAND: u8 = 0x01;
pub const LOGIN_REQUEST: u8 = 0x03;
pub const LOGIN_RESPONSE: u8 = 0x23;
pub const SCSI_RESPONSE: u8 = 0x21;
pub const DATA_IN: u8 = 0x25;

/// The opcode's name as the history writes it.
pub fn op_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
        0x00 => "nop_out",
        0x01 => "scsi_command",
        0x02 => "task_management_request",
        0x03 => "login_request",
        0x04 => "text_request",
        0x05 => "data_out",
        0x06 => "logout_request",
        0x10 => "snack",
        0x20 => "nop_in",
        0x21 => "scsi_response",
        0x22 => "task_management_response",
        0x23 => "login_response",
        0x24 => "text_response",
        0x25 => "data_in",
        0x26 => "logout_response",
        0x31 => "r2t",
        0x32 => "async_message",
        0x3f => "reject",
        _ => return None,
    })
}

/// An opcode an initiator sends (a target's have bit 5 set).
pub fn is_initiator_opcode(opcode: u8) -> bool {
    opcode & 0x20 == 0
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The header's fixed fields that say how long the PDU is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lengths {
    pub opcode: u8,
    /// Additional header segments, bytes.
    pub ahs: usize,
    /// The data segment, bytes (without padding).
    pub data: u32,
}

impl Lengths {
    pub fn of(bhs: &[u8]) -> Lengths {
        Lengths {
            opcode: bhs[0] & 0x3f,
            ahs: usize::from(bhs[4]) * 4,
            data: u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]),
        }
    }

    /// Bytes after the header (and its digest): the padded data segment
    /// and its digest.
    pub fn after_header(&self, data_digest: bool) -> u64 {
        let padded = u64::from(self.data).div_ceil(4) * 4;
        let digest = if data_digest && self.data > 0 { 4 } else { 0 };
        padded + digest
    }
}

/// Whether `bytes` (at least a BHS, plus the digest when `header_digest`)
/// look like the start of a PDU sent in direction `from_initiator`: a known
/// opcode of that side, sane lengths, and a matching digest if there is one.
pub fn plausible(bytes: &[u8], from_initiator: bool, header_digest: bool) -> bool {
    if bytes.len() < BHS {
        return false;
    }
    let l = Lengths::of(bytes);
    if op_name(l.opcode).is_none()
        || is_initiator_opcode(l.opcode) != from_initiator
        || bytes[0] & 0x80 != 0
        || l.data > MAX_PLAUSIBLE_DATA
        || l.ahs > 256
    {
        return false;
    }
    if header_digest && !matches!(l.opcode, LOGIN_REQUEST | LOGIN_RESPONSE) {
        let end = BHS + l.ahs;
        if bytes.len() < end + 4 {
            return false;
        }
        let want = u32::from_le_bytes([bytes[end], bytes[end + 1], bytes[end + 2], bytes[end + 3]]);
        return crc32c(&bytes[..end]) == want;
    }
    true
}

/// The PDU whose basic header is `bhs`, with the first bytes of its data
/// segment (`data`: up to [`DATA_KEPT`]).
pub fn decode(bhs: &[u8], data: &[u8]) -> Pdu {
    let l = Lengths::of(bhs);
    let op = l.opcode;
    let mut pdu = Pdu {
        op: op_name(op).map_or_else(|| format!("0x{op:02x}"), str::to_string),
        opcode: op,
        itt: be32(bhs, 16),
        sn: None,
        data_len: l.data,
        cdb: None,
        status: None,
        sense_key: None,
        offset: None,
        code: None,
    };
    match op {
        // Requests carry CmdSN at 24 (Data-Out and SNACK have none).
        0x00 | 0x01 | 0x02 | 0x03 | 0x04 | 0x06 => pdu.sn = Some(be32(bhs, 24)),
        // Responses carry StatSN at 24 (R2T and Data-In too, though it is
        // meaningful only with the S bit).
        0x20..=0x26 | 0x31 | 0x32 | 0x3f => pdu.sn = Some(be32(bhs, 24)),
        _ => {}
    }
    match op {
        SCSI_COMMAND => pdu.cdb = Some(cdb(&bhs[32..48])),
        SCSI_RESPONSE => {
            pdu.status = Some(bhs[3]);
            pdu.sense_key = sense_key(data);
        }
        DATA_IN => {
            if bhs[1] & 0x01 != 0 {
                pdu.status = Some(bhs[3]);
            }
            pdu.offset = Some(be32(bhs, 40));
        }
        0x05 | 0x31 => pdu.offset = Some(be32(bhs, 40)),
        // Login and Logout responses: status class and detail; a Logout
        // request: its reason; TMF: function / response.
        LOGIN_RESPONSE => pdu.code = Some(u16::from_be_bytes([bhs[36], bhs[37]])),
        0x26 | 0x22 => pdu.code = Some(u16::from(bhs[2])),
        0x06 | 0x02 => pdu.code = Some(u16::from(bhs[1] & 0x7f)),
        _ => {}
    }
    pdu
}

/// A SCSI Response's data segment: SenseLength (2 bytes), then sense data
/// in fixed (0x70/0x71) or descriptor (0x72/0x73) format.
fn sense_key(data: &[u8]) -> Option<u8> {
    if data.len() < 3 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
    let sense = &data[2..(2 + len).min(data.len())];
    match sense.first()? & 0x7f {
        0x70 | 0x71 => sense.get(2).map(|b| b & 0x0f),
        0x72 | 0x73 => sense.get(1).map(|b| b & 0x0f),
        _ => None,
    }
}

/// A CDB's operation, and the LBA and length of a READ or WRITE.
pub fn cdb(c: &[u8]) -> Cdb {
    let op = c[0];
    let be = |from: usize, n: usize| {
        c[from..from + n]
            .iter()
            .fold(0u64, |a, b| a << 8 | u64::from(*b))
    };
    let (name, lba, blocks) = match op {
        0x08 | 0x0a => {
            let lba = be(1, 3) & 0x1f_ffff;
            let n = match c[4] {
                0 => 256,
                n => u32::from(n),
            };
            (
                if op == 0x08 { "READ(6)" } else { "WRITE(6)" },
                Some(lba),
                Some(n),
            )
        }
        0x28 | 0x2a => (
            if op == 0x28 { "READ(10)" } else { "WRITE(10)" },
            Some(be(2, 4)),
            Some(be(7, 2) as u32),
        ),
        0xa8 | 0xaa => (
            if op == 0xa8 { "READ(12)" } else { "WRITE(12)" },
            Some(be(2, 4)),
            Some(be(6, 4) as u32),
        ),
        0x88 | 0x8a => (
            if op == 0x88 { "READ(16)" } else { "WRITE(16)" },
            Some(be(2, 8)),
            Some(be(10, 4) as u32),
        ),
        0x00 => ("TEST UNIT READY", None, None),
        0x03 => ("REQUEST SENSE", None, None),
        0x12 => ("INQUIRY", None, None),
        0x1a => ("MODE SENSE(6)", None, None),
        0x25 => ("READ CAPACITY(10)", None, None),
        0x35 => ("SYNCHRONIZE CACHE(10)", None, None),
        0x5a => ("MODE SENSE(10)", None, None),
        0x5e => ("PERSISTENT RESERVE IN", None, None),
        0x5f => ("PERSISTENT RESERVE OUT", None, None),
        0x9e => ("SERVICE ACTION IN(16)", None, None),
        0xa0 => ("REPORT LUNS", None, None),
        0xa3 => ("MAINTENANCE IN", None, None),
        _ => ("", None, None),
    };
    Cdb {
        opcode: op,
        name: if name.is_empty() {
            format!("0x{op:02x}")
        } else {
            name.to_string()
        },
        lba,
        blocks,
    }
}

/// The digests a login's text negotiated, read from `key=value` pairs
/// (NUL-separated). `None` for a key the text does not hold.
pub fn negotiated(text: &[u8]) -> (Option<bool>, Option<bool>) {
    let mut header = None;
    let mut data = None;
    for pair in text.split(|b| *b == 0) {
        let Ok(pair) = std::str::from_utf8(pair) else {
            continue;
        };
        if let Some((k, v)) = pair.split_once('=') {
            let on = v.trim().eq_ignore_ascii_case("CRC32C");
            match k {
                "HeaderDigest" => header = Some(on),
                "DataDigest" => data = Some(on),
                _ => {}
            }
        }
    }
    (header, data)
}

/// A Login Response that ends the login phase: the T bit set, the next
/// stage full-feature phase (3), and status success.
pub fn ends_login(bhs: &[u8]) -> bool {
    bhs[0] & 0x3f == LOGIN_RESPONSE && bhs[1] & 0x80 != 0 && bhs[1] & 0x03 == 3 && bhs[36] == 0
}

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82f6_3b78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC32C (Castagnoli), as iSCSI's digests use it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in bytes {
        c = CRC32C[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Builds PDUs (tests and golden data).
#[cfg(test)]
pub mod build {
    use super::*;

    /// A BHS of `opcode` with `data_len`, ITT and the SN field.
    pub fn bhs(opcode: u8, data_len: u32, itt: u32, sn: u32) -> Vec<u8> {
        let mut b = vec![0u8; BHS];
        b[0] = opcode;
        b[1] = 0x80;
        b[5..8].copy_from_slice(&data_len.to_be_bytes()[1..]);
        b[16..20].copy_from_slice(&itt.to_be_bytes());
        b[24..28].copy_from_slice(&sn.to_be_bytes());
        b
    }

    /// A whole PDU: header (+ digest), data padded (+ digest).
    pub fn pdu(mut bhs: Vec<u8>, data: &[u8], hd: bool, dd: bool) -> Vec<u8> {
        bhs[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        let mut out = bhs.clone();
        if hd {
            out.extend_from_slice(&crc32c(&bhs).to_le_bytes());
        }
        out.extend_from_slice(data);
        out.resize(out.len() + (4 - data.len() % 4) % 4, 0);
        if dd && !data.is_empty() {
            let mut padded = data.to_vec();
            padded.resize(data.len().div_ceil(4) * 4, 0);
            out.extend_from_slice(&crc32c(&padded).to_le_bytes());
        }
        out
    }

    /// A SCSI Command PDU with a WRITE(10) or READ(10) CDB.
    pub fn rw10(write: bool, itt: u32, cmd_sn: u32, lba: u32, blocks: u16) -> Vec<u8> {
        let mut b = bhs(SCSI_COMMAND, 0, itt, cmd_sn);
        b[32] = if write { 0x2a } else { 0x28 };
        b[34..38].copy_from_slice(&lba.to_be_bytes());
        b[39..41].copy_from_slice(&blocks.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn crc32c_matches_rfc_3720_s_test_vectors() {
        // RFC 3720, B.4: 32 bytes of zeroes, of ones, incrementing.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
    }

    #[test]
    fn a_write_10_s_lba_and_length_are_read() {
        let p = decode(&rw10(true, 7, 42, 1181, 8), &[]);
        assert_eq!((p.op.as_str(), p.itt, p.sn), ("scsi_command", 7, Some(42)));
        let cdb = p.cdb.unwrap();
        assert_eq!(
            (cdb.name.as_str(), cdb.lba, cdb.blocks),
            ("WRITE(10)", Some(1181), Some(8))
        );
        assert!(cdb.is_write() && !cdb.is_read());
    }

    #[test]
    fn read_16_and_write_6_and_unknown_cdbs_are_named() {
        let mut c = [0u8; 16];
        c[0] = 0x88;
        c[2..10].copy_from_slice(&(1u64 << 33).to_be_bytes());
        c[10..14].copy_from_slice(&16u32.to_be_bytes());
        let r = cdb(&c);
        assert_eq!(
            (r.name.as_str(), r.lba, r.blocks),
            ("READ(16)", Some(1 << 33), Some(16))
        );
        let w6 = cdb(&[0x0a, 0x01, 0x02, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!((w6.lba, w6.blocks), (Some(0x010203), Some(256)));
        assert_eq!(cdb(&[0xc1; 16]).name, "0xc1");
    }

    #[test]
    fn a_check_condition_s_sense_key_is_read_in_both_formats() {
        let mut b = bhs(SCSI_RESPONSE, 0, 1, 5);
        b[3] = 0x02;
        let fixed = [0, 18, 0x70, 0, 0x06, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x00];
        let p = decode(&b, &fixed);
        assert_eq!((p.status, p.sense_key), (Some(2), Some(6)));
        let desc = [0, 8, 0x72, 0x0b, 0x47, 0];
        assert_eq!(decode(&b, &desc).sense_key, Some(0x0b));
        b[3] = 0x18;
        let p = decode(&b, &[]);
        assert_eq!((p.status, p.sense_key), (Some(0x18), None));
    }

    #[test]
    fn data_in_has_status_only_with_its_s_bit() {
        let mut b = bhs(DATA_IN, 4096, 3, 9);
        b[40..44].copy_from_slice(&8192u32.to_be_bytes());
        assert_eq!(decode(&b, &[]).status, None);
        b[1] = 0x81;
        let p = decode(&b, &[]);
        assert_eq!((p.status, p.offset), (Some(0), Some(8192)));
    }

    #[test]
    fn login_text_says_which_digests_are_on() {
        let text = b"HeaderDigest=CRC32C\0DataDigest=None\0MaxRecvDataSegmentLength=262144\0";
        assert_eq!(negotiated(text), (Some(true), Some(false)));
        assert_eq!(negotiated(b"TargetAlias=x\0"), (None, None));
    }

    #[test]
    fn only_a_sane_header_of_the_right_side_is_plausible() {
        let cmd = rw10(true, 1, 1, 0, 8);
        assert!(plausible(&cmd, true, false));
        assert!(!plausible(&cmd, false, false), "a command from the target");
        let with_digest = pdu(cmd.clone(), &[], true, false);
        assert!(plausible(&with_digest, true, true));
        let mut bad = with_digest.clone();
        bad[48] ^= 1;
        assert!(!plausible(&bad, true, true), "a wrong digest");
        let mut junk = cmd;
        junk[0] = 0x1f;
        assert!(!plausible(&junk, true, false));
    }

    #[test]
    fn lengths_count_padding_and_the_data_digest() {
        let l = Lengths::of(&bhs(DATA_IN, 5, 0, 0));
        assert_eq!((l.after_header(false), l.after_header(true)), (8, 12));
        let none = Lengths::of(&bhs(NOP_OUT, 0, 0, 0));
        assert_eq!(none.after_header(true), 0);
    }
}
