//! Root qdiscs (netem, tbf, plug) over rtnetlink, encoded by hand.
//!
//! rtnetlink/netlink-packet-route cannot set a qdisc's kind and options, so the
//! `RTM_NEWQDISC`/`RTM_DELQDISC`/`RTM_GETQDISC` messages are built here. The
//! encoders are pure (no socket, no root) and are tested byte for byte against
//! what iproute2's `tc` sends (see `harness/tests/data/tc/capture.sh`).
//! [`RouteSocket`] is the thin part that talks to the kernel.
//!
//! Layouts follow the kernel's `include/uapi/linux/pkt_sched.h`,
//! `linux/rtnetlink.h`, `linux/gen_stats.h` and `linux/netlink.h`. Where the
//! encoding is a choice, it follows current iproute2 (7.x): netem delay and jitter
//! go in `TCA_NETEM_LATENCY64`/`TCA_NETEM_JITTER64` (nanoseconds, kernel >= 4.15)
//! with the legacy tick fields of `tc_netem_qopt` left at 0, and tbf's rate table
//! is rounded up like iproute2 >= 6.15 does. iproute2 6.1 (Debian bookworm) puts
//! delay/jitter in ticks instead; the kernel accepts both.

use std::io;
use std::time::Duration;

use thiserror::Error;

// Netlink message types and flags (linux/netlink.h, linux/rtnetlink.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_GETQDISC: u16 = 38;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
// Flags on an NLMSG_ERROR reply: request echo capped, extack TLVs follow.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const TCMSG_LEN: usize = 20;

/// `TC_H_ROOT`: the parent of a device's root qdisc.
pub const TC_H_ROOT: u32 = 0xFFFF_FFFF;

// Qdisc attributes (linux/rtnetlink.h).
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_STATS2: u16 = 7;
// TCA_STATS2 nest (linux/gen_stats.h).
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TCA_STATS_PKT64: u16 = 8;

// netem attributes that follow `struct tc_netem_qopt` inside TCA_OPTIONS.
const TCA_NETEM_CORR: u16 = 1;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

// tbf attributes, nested in TCA_OPTIONS.
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;

/// Scheduler ticks per microsecond, as tc derives it from `/proc/net/psched`
/// (`t2us / us2t * clock_res / 1e6` = 1000 / 64 * 1). The kernel fixed these
/// values in 2.6.31 (`PSCHED_SHIFT` = 6: one tick is 64 ns), so a constant keeps
/// the encoder pure; this machine's file reads `000003e8 00000040 000f4240 ...`.
const TICKS_PER_USEC: f64 = 1000.0 / 64.0;

/// Everything that can go wrong here, from validation to the kernel's answer.
#[derive(Debug, Error)]
pub enum TcError {
    #[error("{field} must be a finite percentage in 0..=100, got {value}")]
    Percent { field: &'static str, value: f64 },
    #[error("invalid qdisc parameters: {0}")]
    Invalid(&'static str),
    #[error("malformed netlink reply: {0}")]
    Malformed(&'static str),
}

impl From<TcError> for io::Error {
    fn from(e: TcError) -> Self {
        let kind = match e {
            TcError::Malformed(_) => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// A netlink error reply: the errno and the kernel's extended-ack message.
/// [`RouteSocket`] returns it inside an [`io::Error`] whose kind matches the
/// errno; get it back with [`NetlinkError::from_io`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{}", io::Error::from_raw_os_error(*.errno), .extack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct NetlinkError {
    /// Positive errno (the kernel sends it negated).
    pub errno: i32,
    /// `NLMSGERR_ATTR_MSG`, e.g. "Specified qdisc kind is unknown".
    pub extack: Option<String>,
}

impl NetlinkError {
    pub fn from_io(e: &io::Error) -> Option<&NetlinkError> {
        e.get_ref()?.downcast_ref::<NetlinkError>()
    }
}

impl From<NetlinkError> for io::Error {
    fn from(e: NetlinkError) -> Self {
        io::Error::new(io::Error::from_raw_os_error(e.errno).kind(), e)
    }
}

/// netem's rate emulation (`tc ... netem rate RATE [OVERHEAD [CELLSIZE [CELLOVERHEAD]]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetemRate {
    /// Bytes per second (tc's `1mbit` is 125000). Rates >= 2^32 use `TCA_NETEM_RATE64`.
    pub bytes_per_s: u64,
    pub packet_overhead: i32,
    pub cell_size: u32,
    pub cell_overhead: i32,
}

/// Every netem option the harness uses. Percentages are 0..=100 (5.0 means 5 %).
/// A correlation only makes sense with its probability (delay correlation with
/// jitter); setting one without the other is rejected rather than ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Netem {
    /// Queue limit in packets; tc's default is 1000.
    pub limit: u32,
    pub delay: Duration,
    pub jitter: Duration,
    pub delay_correlation: f64,
    pub loss: f64,
    pub loss_correlation: f64,
    pub duplicate: f64,
    pub duplicate_correlation: f64,
    pub corrupt: f64,
    pub corrupt_correlation: f64,
    /// Needs a non-zero `delay` (the reordered packets are the undelayed ones).
    pub reorder: f64,
    pub reorder_correlation: f64,
    /// Every `gap`-th packet is a reorder candidate; 0 means 1 when reordering, as in tc.
    pub gap: u32,
    pub rate: Option<NetemRate>,
}

impl Default for Netem {
    fn default() -> Self {
        Netem {
            limit: 1000,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            delay_correlation: 0.0,
            loss: 0.0,
            loss_correlation: 0.0,
            duplicate: 0.0,
            duplicate_correlation: 0.0,
            corrupt: 0.0,
            corrupt_correlation: 0.0,
            reorder: 0.0,
            reorder_correlation: 0.0,
            gap: 0,
            rate: None,
        }
    }
}

/// Token bucket filter. The queue limit is given in bytes directly rather than
/// derived from a latency (tc's `latency` form computes `rate * latency + burst`);
/// a caller wanting that can compute it and keeps the encoding exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second (tc's `1mbit` is 125000). Rates >= 2^32 use `TCA_TBF_RATE64`.
    pub rate_bytes_per_s: u64,
    /// Bucket size in bytes; must be at least the device MTU or big packets stall.
    pub burst_bytes: u32,
    /// Bytes that may wait in the queue before packets are dropped.
    pub limit_bytes: u32,
}

/// The plug qdisc (`sch_plug`): holds every packet until told to let
/// them go, then passes them on in the order they came. iproute2 has no
/// front end for it; the options are `struct tc_plug_qopt {int action;
/// __u32 limit;}` (`include/uapi/linux/pkt_sched.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plug {
    pub action: PlugAction,
    /// Bytes it may hold; past them packets are dropped.
    pub limit_bytes: u32,
}

/// What a plug is told (`TCQ_PLUG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlugAction {
    /// Hold what comes from now on (`TCQ_PLUG_BUFFER`, 0): a new plug
    /// starts this way.
    Hold,
    /// Let everything held go and stop holding (`TCQ_PLUG_RELEASE_INDEFINITE`, 2).
    ReleaseAll,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Qdisc {
    Netem(Netem),
    Tbf(Tbf),
    Plug(Plug),
}

impl Qdisc {
    pub fn kind(&self) -> &'static str {
        match self {
            Qdisc::Netem(_) => "netem",
            Qdisc::Tbf(_) => "tbf",
            Qdisc::Plug(_) => "plug",
        }
    }
}

/// tc's percent encoding: a fraction of `u32::MAX`, rounded half to even (`rint`).
fn percent(field: &'static str, value: f64) -> Result<u32, TcError> {
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        return Err(TcError::Percent { field, value });
    }
    Ok((value / 100.0 * f64::from(u32::MAX)).round_ties_even() as u32)
}

fn nanos(d: Duration) -> Result<i64, TcError> {
    i64::try_from(d.as_nanos()).map_err(|_| TcError::Invalid("delay/jitter too large"))
}

/// tc_calc_xmittime: ticks to send `size` bytes at `rate` bytes/s, rounded up
/// (iproute2 >= 6.15), saturating at u32::MAX.
fn xmit_ticks(rate: u32, size: u64) -> u32 {
    let t = (1_000_000.0 * (size as f64 / f64::from(rate)) * TICKS_PER_USEC).ceil();
    if t > f64::from(u32::MAX) {
        u32::MAX
    } else {
        t as u32
    }
}

/// Appends netlink attributes, keeping 4-byte alignment.
struct Buf(Vec<u8>);

impl Buf {
    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let start = self.begin(ty);
        self.0.extend_from_slice(payload);
        self.end(start);
    }
    /// Starts an attribute whose payload is appended next; `end` fixes its length.
    fn begin(&mut self, ty: u16) -> usize {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&ty.to_ne_bytes());
        start
    }
    fn end(&mut self, start: usize) {
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.0.resize(align4(self.0.len()), 0);
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

/// nlmsghdr + tcmsg for a root qdisc; the length is fixed up by `finish`.
fn header(ty: u16, flags: u16, seq: u32, ifindex: i32, parent: u32) -> Buf {
    let mut b = Vec::with_capacity(128);
    b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len
    b.extend_from_slice(&ty.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it in
    b.extend_from_slice(&[0, 0, 0, 0]); // tcm_family AF_UNSPEC + padding
    b.extend_from_slice(&ifindex.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // tcm_handle 0: the kernel picks one
    b.extend_from_slice(&parent.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // tcm_info
    Buf(b)
}

fn finish(mut b: Buf) -> Vec<u8> {
    let len = b.0.len() as u32;
    b.0[0..4].copy_from_slice(&len.to_ne_bytes());
    b.0
}

/// `tc qdisc replace dev IFINDEX root KIND ...`: flags REQUEST|ACK|CREATE|REPLACE,
/// handle 0 (kernel-chosen), parent root. Fails only on invalid parameters.
pub fn new_qdisc_request(ifindex: i32, qdisc: &Qdisc, seq: u32) -> Result<Vec<u8>, TcError> {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    let mut b = header(RTM_NEWQDISC, flags, seq, ifindex, TC_H_ROOT);
    b.attr(TCA_KIND, format!("{}\0", qdisc.kind()).as_bytes());
    match qdisc {
        Qdisc::Netem(n) => encode_netem(&mut b, n)?,
        Qdisc::Tbf(t) => encode_tbf(&mut b, t)?,
        Qdisc::Plug(p) => encode_plug(&mut b, p)?,
    }
    Ok(finish(b))
}

/// `tc qdisc del dev IFINDEX root`.
pub fn del_root_qdisc_request(ifindex: i32, seq: u32) -> Vec<u8> {
    finish(header(
        RTM_DELQDISC,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        ifindex,
        TC_H_ROOT,
    ))
}

/// Dump of every qdisc in the namespace (the kernel does not filter by device,
/// so [`parse_messages`]' callers filter on `ifindex`).
pub fn dump_qdiscs_request(seq: u32) -> Vec<u8> {
    finish(header(RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP, seq, 0, 0))
}

fn encode_netem(b: &mut Buf, n: &Netem) -> Result<(), TcError> {
    let loss = percent("loss", n.loss)?;
    let loss_corr = percent("loss correlation", n.loss_correlation)?;
    let dup = percent("duplicate", n.duplicate)?;
    let dup_corr = percent("duplicate correlation", n.duplicate_correlation)?;
    let delay_corr = percent("delay correlation", n.delay_correlation)?;
    let corrupt = percent("corrupt", n.corrupt)?;
    let corrupt_corr = percent("corrupt correlation", n.corrupt_correlation)?;
    let reorder = percent("reorder", n.reorder)?;
    let reorder_corr = percent("reorder correlation", n.reorder_correlation)?;
    let latency = nanos(n.delay)?;
    let jitter = nanos(n.jitter)?;
    if n.limit == 0 {
        return Err(TcError::Invalid("netem limit must be at least 1 packet"));
    }
    let orphan = [
        (loss_corr != 0 && loss == 0, "loss correlation without loss"),
        (
            dup_corr != 0 && dup == 0,
            "duplicate correlation without duplicate",
        ),
        (
            corrupt_corr != 0 && corrupt == 0,
            "corrupt correlation without corrupt",
        ),
        (
            reorder_corr != 0 && reorder == 0,
            "reorder correlation without reorder",
        ),
        (
            delay_corr != 0 && jitter == 0,
            "delay correlation without jitter",
        ),
    ];
    if let Some((_, msg)) = orphan.iter().find(|(bad, _)| *bad) {
        return Err(TcError::Invalid(msg));
    }
    if jitter != 0 && latency == 0 {
        return Err(TcError::Invalid("jitter without delay"));
    }
    // As tc: reordering needs some delay, and a gap needs reordering.
    let gap = match (reorder != 0, n.gap) {
        (true, _) if latency == 0 => {
            return Err(TcError::Invalid("reorder needs a non-zero delay"));
        }
        (true, 0) => 1,
        (false, g) if g > 0 => return Err(TcError::Invalid("gap without reorder")),
        (_, g) => g,
    };
    if matches!(n.rate, Some(r) if r.bytes_per_s == 0) {
        return Err(TcError::Invalid("netem rate must be positive"));
    }

    // TCA_OPTIONS = struct tc_netem_qopt {latency, limit, loss, gap, duplicate,
    // jitter} followed by attributes, all inside the one TCA_OPTIONS length.
    // The tick fields stay 0: LATENCY64/JITTER64 carry the delay.
    let opts = b.begin(TCA_OPTIONS);
    b.0.extend_from_slice(&words(&[0, n.limit, loss, gap, dup, 0]));
    if latency != 0 {
        b.attr(TCA_NETEM_LATENCY64, &latency.to_ne_bytes());
    }
    if jitter != 0 {
        b.attr(TCA_NETEM_JITTER64, &jitter.to_ne_bytes());
    }
    // tc sends tc_netem_corr whenever any correlation was given, even one that
    // lives in the reorder/corrupt structs.
    if [delay_corr, loss_corr, dup_corr, reorder_corr, corrupt_corr]
        .iter()
        .any(|&c| c != 0)
    {
        b.attr(TCA_NETEM_CORR, &words(&[delay_corr, loss_corr, dup_corr]));
    }
    if reorder != 0 {
        b.attr(TCA_NETEM_REORDER, &words(&[reorder, reorder_corr]));
    }
    if corrupt != 0 {
        b.attr(TCA_NETEM_CORRUPT, &words(&[corrupt, corrupt_corr]));
    }
    if let Some(r) = n.rate {
        let rate32 = match u32::try_from(r.bytes_per_s) {
            Ok(v) => v,
            Err(_) => {
                b.attr(TCA_NETEM_RATE64, &r.bytes_per_s.to_ne_bytes());
                u32::MAX
            }
        };
        let mut rate = words(&[rate32]);
        rate.extend_from_slice(&r.packet_overhead.to_ne_bytes());
        rate.extend_from_slice(&r.cell_size.to_ne_bytes());
        rate.extend_from_slice(&r.cell_overhead.to_ne_bytes());
        b.attr(TCA_NETEM_RATE, &rate);
    }
    b.end(opts);
    Ok(())
}

fn encode_tbf(b: &mut Buf, t: &Tbf) -> Result<(), TcError> {
    if t.rate_bytes_per_s == 0 {
        return Err(TcError::Invalid("tbf rate must be positive"));
    }
    if t.burst_bytes == 0 {
        return Err(TcError::Invalid("tbf burst must be positive"));
    }
    if t.limit_bytes == 0 {
        return Err(TcError::Invalid("tbf limit must be positive"));
    }
    let rate32 = u32::try_from(t.rate_bytes_per_s).unwrap_or(u32::MAX);
    let buffer = xmit_ticks(rate32, u64::from(t.burst_bytes));
    if buffer == u32::MAX {
        // tc refuses too: the legacy buffer field cannot hold it.
        return Err(TcError::Invalid(
            "tbf burst takes too long to send at this rate",
        ));
    }
    // Rate table as tc builds it with no mtu given: mtu 2047 gives cell_log 3,
    // entry i = time to send (i + 1) << 3 bytes. The kernel only uses it to
    // detect the link layer, but sending it keeps us byte-identical with tc.
    const CELL_LOG: u8 = 3;
    let rtab: Vec<u8> = (0..256u64)
        .flat_map(|i| xmit_ticks(rate32, (i + 1) << CELL_LOG).to_ne_bytes())
        .collect();

    // struct tc_ratespec {cell_log u8, linklayer u8, overhead u16, cell_align s16,
    // mpu u16, rate u32}
    let mut ratespec = vec![CELL_LOG, TC_LINKLAYER_ETHERNET];
    ratespec.extend_from_slice(&0u16.to_ne_bytes());
    ratespec.extend_from_slice(&(-1i16).to_ne_bytes());
    ratespec.extend_from_slice(&0u16.to_ne_bytes());
    ratespec.extend_from_slice(&rate32.to_ne_bytes());
    // struct tc_tbf_qopt {rate, peakrate (unused: zero), limit, buffer, mtu}
    let mut parms = ratespec;
    parms.extend_from_slice(&[0; 12]);
    parms.extend_from_slice(&words(&[t.limit_bytes, buffer, 0]));

    let opts = b.begin(TCA_OPTIONS);
    b.attr(TCA_TBF_PARMS, &parms);
    b.attr(TCA_TBF_BURST, &t.burst_bytes.to_ne_bytes());
    if t.rate_bytes_per_s >= 1 << 32 {
        b.attr(TCA_TBF_RATE64, &t.rate_bytes_per_s.to_ne_bytes());
    }
    b.attr(TCA_TBF_RTAB, &rtab);
    b.end(opts);
    Ok(())
}

fn encode_plug(b: &mut Buf, p: &Plug) -> Result<(), TcError> {
    if p.limit_bytes == 0 {
        return Err(TcError::Invalid("plug limit must be positive"));
    }
    let action: i32 = match p.action {
        PlugAction::Hold => 0,
        PlugAction::ReleaseAll => 2,
    };
    let mut opts = action.to_ne_bytes().to_vec();
    opts.extend_from_slice(&p.limit_bytes.to_ne_bytes());
    b.attr(TCA_OPTIONS, &opts);
    Ok(())
}

/// One qdisc from a `RTM_NEWQDISC` dump reply, with its `TCA_STATS2` counters.
/// A device without a configured qdisc still reports one (veth: `noqueue`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QdiscStats {
    pub ifindex: i32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
    pub bytes: u64,
    pub packets: u64,
    pub drops: u32,
    pub overlimits: u32,
    pub requeues: u32,
    pub qlen: u32,
    pub backlog: u32,
}

/// One netlink message of a reply, as far as qdisc work cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Qdisc {
        seq: u32,
        qdisc: QdiscStats,
    },
    /// `NLMSG_ERROR` with error 0.
    Ack {
        seq: u32,
    },
    Error {
        seq: u32,
        error: NetlinkError,
    },
    /// End of a dump (a negative payload would be a dump error, reported as `Error`).
    Done {
        seq: u32,
    },
    Other {
        seq: u32,
        ty: u16,
    },
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, TcError> {
    b.get(off..off + 2)
        .map(|s| u16::from_ne_bytes([s[0], s[1]]))
        .ok_or(TcError::Malformed("truncated"))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, TcError> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes(s.try_into().unwrap()))
        .ok_or(TcError::Malformed("truncated"))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, TcError> {
    b.get(off..off + 8)
        .map(|s| u64::from_ne_bytes(s.try_into().unwrap()))
        .ok_or(TcError::Malformed("truncated"))
}

/// Iterates (type without NLA_F_* flags, payload) over a run of attributes.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), TcError>> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3FFF;
        if len < 4 || len > b.len() {
            b = &[];
            return Some(Err(TcError::Malformed("bad attribute length")));
        }
        let payload = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some(Ok((ty, payload)))
    })
}

fn parse_qdisc(body: &[u8]) -> Result<QdiscStats, TcError> {
    if body.len() < TCMSG_LEN {
        return Err(TcError::Malformed("short tcmsg"));
    }
    let mut q = QdiscStats {
        ifindex: u32_at(body, 4)? as i32,
        handle: u32_at(body, 8)?,
        parent: u32_at(body, 12)?,
        ..Default::default()
    };
    for a in attrs(&body[TCMSG_LEN..]) {
        let (ty, p) = a?;
        match ty {
            TCA_KIND => {
                let s = p.split(|&c| c == 0).next().unwrap_or_default();
                q.kind = String::from_utf8_lossy(s).into_owned();
            }
            TCA_STATS2 => {
                let mut pkt64 = None;
                for s in attrs(p) {
                    let (sty, sp) = s?;
                    match sty {
                        // struct gnet_stats_basic {u64 bytes; u32 packets}
                        TCA_STATS_BASIC => {
                            q.bytes = u64_at(sp, 0)?;
                            q.packets = u64::from(u32_at(sp, 8)?);
                        }
                        // struct gnet_stats_queue {qlen, backlog, drops, requeues, overlimits}
                        TCA_STATS_QUEUE => {
                            q.qlen = u32_at(sp, 0)?;
                            q.backlog = u32_at(sp, 4)?;
                            q.drops = u32_at(sp, 8)?;
                            q.requeues = u32_at(sp, 12)?;
                            q.overlimits = u32_at(sp, 16)?;
                        }
                        // The full packet count once it no longer fits in 32 bits.
                        TCA_STATS_PKT64 => pkt64 = Some(u64_at(sp, 0)?),
                        _ => {}
                    }
                }
                if let Some(p) = pkt64 {
                    q.packets = p;
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

/// Error code and extack of an NLMSG_ERROR or NLMSG_DONE payload.
fn parse_error(done: bool, flags: u16, body: &[u8]) -> Result<(i32, Option<String>), TcError> {
    let err = u32_at(body, 0)? as i32;
    let mut extack = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // NLMSG_ERROR echoes the request (only its header if capped) before the
        // TLVs; NLMSG_DONE has them right after the error code.
        let echoed = if done {
            0
        } else if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(body, 4)? as usize
        };
        let tlvs = body.get(4 + align4(echoed)..).unwrap_or_default();
        for a in attrs(tlvs) {
            let (ty, p) = a?;
            if ty == NLMSGERR_ATTR_MSG {
                let s = p.split(|&c| c == 0).next().unwrap_or_default();
                extack = Some(String::from_utf8_lossy(s).into_owned());
            }
        }
    }
    Ok((-err, extack))
}

/// Splits one `recv` buffer into messages. Pure, so dumps captured from tc are
/// tested directly.
pub fn parse_messages(mut buf: &[u8]) -> Result<Vec<Message>, TcError> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0)? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(TcError::Malformed("bad nlmsg_len"));
        }
        let ty = u16_at(buf, 4)?;
        let flags = u16_at(buf, 6)?;
        let seq = u32_at(buf, 8)?;
        let body = &buf[NLMSG_HDRLEN..len];
        out.push(match ty {
            NLMSG_ERROR | NLMSG_DONE => {
                let (errno, extack) = if ty == NLMSG_DONE && body.len() < 4 {
                    (0, None)
                } else {
                    parse_error(ty == NLMSG_DONE, flags, body)?
                };
                match (errno, ty) {
                    (0, NLMSG_ERROR) => Message::Ack { seq },
                    (0, _) => Message::Done { seq },
                    _ => Message::Error {
                        seq,
                        error: NetlinkError { errno, extack },
                    },
                }
            }
            RTM_NEWQDISC => Message::Qdisc {
                seq,
                qdisc: parse_qdisc(body)?,
            },
            _ => Message::Other { seq, ty },
        });
        buf = &buf[align4(len).min(buf.len())..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
