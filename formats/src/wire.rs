//! What crossed the wire, as the history keeps it: one [`Wire`] event per
//! TCP connection event or iSCSI PDU decoded from the switch's capture.

use serde::{Deserialize, Serialize};

/// The way a frame went through the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// From the initiator toward the target.
    ToTarget,
    /// From the target toward the initiator.
    ToInitiator,
}

/// What the switch did with a frame: seen where it came in and where it
/// went out (`Delivered`), seen coming in only (`Dropped`: the nemesis took
/// it), or seen going out only (`Made`: the switch itself sent it, as the
/// reset fault's RSTs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    Delivered,
    Dropped,
    Made,
}

/// One decoded thing of one path's traffic. `t` (the entry's time) is when
/// the frame carrying it came into the switch (for `Made`: when it left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wire {
    pub path: u8,
    pub dir: Dir,
    /// The initiator's TCP port: which connection.
    pub port: u16,
    pub fate: Fate,
    /// Seconds from coming in to going out (`Delivered` frames only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_s: Option<f64>,
    pub what: WireWhat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireWhat {
    /// A TCP segment worth a mark: SYN, FIN, RST, or data sent again.
    Tcp {
        /// "SYN", "SYN-ACK", "FIN", "RST" or "" (a retransmission only).
        flags: String,
        /// Payload the connection had carried before (sequence numbers
        /// already seen).
        retransmission: bool,
    },
    /// An iSCSI PDU whose basic header began in this frame.
    Pdu(Pdu),
}

/// An iSCSI PDU, as far as the harness reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pdu {
    /// The opcode's name: "scsi_command", "scsi_response", "data_out",
    /// "data_in", "r2t", "nop_out", "nop_in", "login_request",
    /// "login_response", "logout_request", "logout_response",
    /// "task_management_request", "task_management_response", "text_request",
    /// "text_response", "async_message", "reject", "snack", or "0xNN".
    pub op: String,
    /// The opcode byte (its low six bits).
    pub opcode: u8,
    /// Initiator Task Tag (0xffffffff: none).
    pub itt: u32,
    /// CmdSN of a request, StatSN of a response (where the PDU has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sn: Option<u32>,
    /// Data segment length.
    pub data_len: u32,
    /// A SCSI Command's CDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdb: Option<Cdb>,
    /// SCSI status of a SCSI Response, or of a Data-In with its S bit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u8>,
    /// The sense key of a CHECK CONDITION's sense data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sense_key: Option<u8>,
    /// Buffer offset of Data-In, Data-Out and R2T.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Login and Logout: the response's status class and detail (0: ok),
    /// a Logout request's reason code, a TMF's function or response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// A SCSI command descriptor block, as far as it matters here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdb {
    /// Operation code (0x28 READ(10), 0x2a WRITE(10), ...).
    pub opcode: u8,
    /// Its name ("READ(10)", "WRITE(16)", "TEST UNIT READY", ...; "0xNN"
    /// when unknown).
    pub name: String,
    /// First logical block and number of blocks of a READ or WRITE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lba: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u32>,
}

impl Cdb {
    /// A WRITE of any size.
    pub fn is_write(&self) -> bool {
        matches!(self.opcode, 0x0a | 0x2a | 0xaa | 0x8a)
    }

    /// A READ of any size.
    pub fn is_read(&self) -> bool {
        matches!(self.opcode, 0x08 | 0x28 | 0xa8 | 0x88)
    }
}

/// How a run's capture went, one event at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureSummary {
    /// The pcapng file beside the history ("" when nothing was written).
    pub file: String,
    /// Frames seen, frames written to the file.
    pub frames: u64,
    pub written: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// When the file reached its size cap and stopped growing (the run's
    /// clock), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at: Option<f64>,
    /// Frames the kernel dropped before the capture read them.
    pub kernel_drops: u64,
    /// CPU time the capture's thread used (reading, pairing, decoding,
    /// writing), and the wall time it ran: their ratio is the share of one
    /// CPU the capture cost (`cargo xtask bench --report` shows it).
    #[serde(default)]
    pub cpu_s: f64,
    #[serde(default)]
    pub wall_s: f64,
}
