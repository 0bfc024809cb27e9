//! The timeline picture of one run (`<id>.timeline.svg`): on one time
//! axis, every probe operation's latency (log scale; ok, error, still
//! blocked), the stalls, each fault's window shaded and labelled, the
//! session's state as a band, every path's session and dm state (a
//! multipath run) and its wire lane (the capture's commands and responses
//! as ticks, writes apart from reads, resets, data sent again and frames
//! the nemesis dropped marked), the kernel's iSCSI lines as ticks, and the
//! oracle's predicted detection and first error (with its tolerance) next
//! to the measured first error.
//!
//! Drawn from the report entry and the run's history only, so a saved
//! output folder (or `merge` of shards) draws the same picture again.
//! Time 0 is the first fault's begin, the origin the check measures the
//! first error from.

use std::collections::BTreeSet;

use super::events::{Reporter, RunEvent};
use super::out::OutDir;
use super::svg::{num, text_width, Anchor, Svg};
use super::{history_file, Entry};
use iscsi_chaos_formats::history::{Event, FaultPhase, History};
use iscsi_chaos_formats::probe::{Found, ProbeEvent};
use iscsi_chaos_formats::wire::{Dir, Fate, Wire, WireWhat};

/// The file a run's timeline is saved in, beside its history.
pub fn file(run_id: &str) -> String {
    format!("{run_id}.timeline.svg")
}

/// What the kernel said, as the picture labels it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelMark {
    /// "detected conn error (1020)": the connection failed, with its code.
    ConnError(String),
    /// A NOP-Out went unanswered.
    PingTimeout,
    /// replacement_timeout expired: queued I/O fails from here.
    RecoveryTimedOut,
    /// The SCSI layer gave up on the device.
    Offline,
    /// A block-layer I/O error.
    IoError,
    /// The target refused a command with RESERVATION CONFLICT.
    Conflict,
    /// A persistent-reservation action of the run's fencing (its label).
    Reservation(String),
    /// Anything else (login, reset, ...): a tick without a label.
    Other,
}

impl KernelMark {
    pub fn classify(line: &str) -> KernelMark {
        if let Some(i) = line.find("conn error (") {
            let code: String = line[i + "conn error (".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return KernelMark::ConnError(code);
        }
        if line.contains("ping timeout") {
            KernelMark::PingTimeout
        } else if line.contains("recovery timed out") {
            KernelMark::RecoveryTimedOut
        } else if line.contains("offline device") || line.contains("Device offlined") {
            KernelMark::Offline
        } else if line.contains("I/O error") {
            KernelMark::IoError
        } else if line.contains("reservation conflict") {
            KernelMark::Conflict
        } else {
            KernelMark::Other
        }
    }

    fn label(&self) -> Option<String> {
        match self {
            KernelMark::ConnError(code) => Some(format!("conn error {code}")),
            KernelMark::PingTimeout => Some("NOP-Out timed out".into()),
            KernelMark::RecoveryTimedOut => Some("recovery timed out".into()),
            KernelMark::Offline => Some("device offline".into()),
            KernelMark::IoError => Some("I/O error".into()),
            KernelMark::Conflict => Some("RESERVATION CONFLICT".into()),
            KernelMark::Reservation(label) => Some(label.clone()),
            KernelMark::Other => None,
        }
    }
}

/// An operation as a point: completion time, latency, and what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpClass {
    Ok,
    Error,
    /// Still blocked in the kernel when the watchdog looked.
    InFlight,
    /// Refused by a reservation (RESERVATION CONFLICT, errno EBADE).
    Refused,
    /// Another host's operation, done (several hosts on one disk).
    OtherHost,
}

/// One fault step's time in place.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    pub step: usize,
    pub begin: f64,
    /// `None`: never cleared.
    pub end: Option<f64>,
    /// "fault[0] blackhole 15 s, both"
    pub label: String,
}

/// What a tick of a wire lane stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WireMark {
    Write,
    Read,
    /// Any other SCSI command.
    Command,
    /// A SCSI status GOOD.
    Good,
    /// Any other status (CHECK CONDITION, RESERVATION CONFLICT, BUSY...).
    BadStatus,
    /// Login, logout, NOP, task management, SYN, FIN.
    Control,
    /// A PDU whose frame the nemesis dropped.
    Dropped,
    /// Data sent again.
    Retransmission,
    Reset,
}

impl WireMark {
    /// The mark of a wire event, if it gets one (Data-In without status,
    /// Data-Out and R2T do not: the command and its status stand for them).
    pub fn of(w: &Wire) -> Option<WireMark> {
        Some(match &w.what {
            WireWhat::Tcp { flags, .. } if flags == "RST" => WireMark::Reset,
            WireWhat::Tcp {
                retransmission: true,
                ..
            } => WireMark::Retransmission,
            WireWhat::Tcp { flags, .. } if !flags.is_empty() => WireMark::Control,
            WireWhat::Tcp { .. } => return None,
            WireWhat::Pdu(_) if w.fate == Fate::Dropped => WireMark::Dropped,
            WireWhat::Pdu(p) => match (&p.cdb, p.status) {
                (Some(c), _) if c.is_write() => WireMark::Write,
                (Some(c), _) if c.is_read() => WireMark::Read,
                (Some(_), _) => WireMark::Command,
                (None, Some(0)) => WireMark::Good,
                (None, Some(_)) => WireMark::BadStatus,
                (None, None) if matches!(p.opcode, 0x05 | 0x25 | 0x31) => return None,
                (None, None) => WireMark::Control,
            },
        })
    }

    fn colour(self) -> &'static str {
        match self {
            WireMark::Write => "#2563eb",
            WireMark::Read => "#16a34a",
            WireMark::Command => GREY,
            WireMark::Good => "#9ca3af",
            WireMark::BadStatus => RED,
            WireMark::Control => PURPLE,
            WireMark::Dropped => "#f59e0b",
            WireMark::Retransmission => ORANGE,
            WireMark::Reset => RED,
        }
    }

    fn name(self) -> &'static str {
        match self {
            WireMark::Write => "WRITE",
            WireMark::Read => "READ",
            WireMark::Command => "other command",
            WireMark::Good => "status GOOD",
            WireMark::BadStatus => "status not GOOD",
            WireMark::Control => "login, logout, NOP, TMF, SYN, FIN",
            WireMark::Dropped => "PDU dropped by the nemesis",
            WireMark::Retransmission => "data sent again",
            WireMark::Reset => "RST",
        }
    }

    /// Drawn across the whole lane (both directions).
    fn tall(self) -> bool {
        matches!(
            self,
            WireMark::Reset | WireMark::Retransmission | WireMark::Dropped
        )
    }
}

/// One path's rows: its session and dm states (a multipath run's) and its
/// wire lane.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PathLane {
    pub path: u8,
    /// (from, state) in time order.
    pub session: Vec<(f64, String)>,
    pub dm: Vec<(f64, String)>,
    /// (at, toward the target, mark)
    pub wire: Vec<(f64, bool, WireMark)>,
}

/// Everything the picture shows, in seconds from the origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub title: String,
    pub subtitle: String,
    pub verdict: String,
    pub t0: f64,
    pub t1: f64,
    /// (completed or seen at, latency s, class)
    pub ops: Vec<(f64, f64, OpClass)>,
    pub faults: Vec<FaultWindow>,
    /// (start, duration)
    pub stalls: Vec<(f64, f64)>,
    /// (from, state) in time order.
    pub session: Vec<(f64, String)>,
    /// (at, mark, the kernel's line)
    pub kernel: Vec<(f64, KernelMark, String)>,
    /// When the probe started its read-back of acknowledged writes.
    pub verify_at: Option<f64>,
    /// (found at, block, class): acknowledged writes found bad.
    pub bad_blocks: Vec<(f64, u64, &'static str)>,
    pub predicted_first_error: Option<(f64, f64)>,
    pub predicted_detection: Option<(f64, f64)>,
    pub measured_first_error: Option<f64>,
    /// Each path's rows, by path number.
    pub paths: Vec<PathLane>,
    /// An fs probe's filesystem: (from, state, what told) in time order,
    /// its recovery steps among them ("remount: failed").
    pub fs: Vec<(f64, String, String)>,
}

impl Timeline {
    fn lane(&mut self, path: u8) -> &mut PathLane {
        let k = match self.paths.iter().position(|p| p.path == path) {
            Some(k) => k,
            None => {
                self.paths.push(PathLane {
                    path,
                    ..PathLane::default()
                });
                self.paths.sort_by_key(|p| p.path);
                self.paths
                    .iter()
                    .position(|p| p.path == path)
                    .expect("just added")
            }
        };
        &mut self.paths[k]
    }
}

/// Appends `state` from `t` unless it is the state already.
fn change(states: &mut Vec<(f64, String)>, t: f64, state: &str) {
    if states.last().map(|s| s.1.as_str()) != Some(state) {
        states.push((t, state.to_string()));
    }
}

impl Timeline {
    pub fn new(entry: &Entry, history: &History) -> Timeline {
        let origin = history
            .first_fault_begin()
            .or_else(|| history.entries.first().map(|e| e.t))
            .unwrap_or(0.0);
        let rel = |t: f64| t - origin;
        let mut tl = Timeline {
            title: format!("{}: {}", entry.id, entry.verdict.as_str().to_uppercase()),
            subtitle: entry
                .reasons
                .first()
                .cloned()
                .unwrap_or_else(|| "as the timeout model predicted".into()),
            verdict: entry.verdict.as_str().to_string(),
            t0: f64::INFINITY,
            t1: f64::NEG_INFINITY,
            ops: Vec::new(),
            faults: Vec::new(),
            stalls: entry
                .measured
                .stalls
                .iter()
                .map(|s| (s.start_s, s.duration_s))
                .collect(),
            session: Vec::new(),
            kernel: Vec::new(),
            verify_at: None,
            bad_blocks: Vec::new(),
            predicted_first_error: entry
                .expected
                .first_error_s
                .map(|t| (t, entry.expected.tolerance_s)),
            predicted_detection: entry.expected.detection_s.map(|w| (w.lo, w.hi)),
            measured_first_error: entry.measured.first_error_s,
            paths: Vec::new(),
            fs: Vec::new(),
        };
        // With several hosts, the probes of hosts after the first.
        let others: Vec<&str> = entry
            .measured
            .split_brain
            .iter()
            .flat_map(|b| b.writers.iter().skip(1).map(|w| w.probe.as_str()))
            .collect();
        let host_name = |h: u8| {
            entry
                .measured
                .split_brain
                .as_ref()
                .and_then(|b| b.writers.get(usize::from(h)))
                .map_or_else(|| format!("host{h}"), |w| w.host.clone())
        };
        for e in &history.entries {
            let t = rel(e.t);
            match &e.event {
                Event::Reservation {
                    host,
                    action,
                    ok,
                    detail,
                    state,
                } if action != "read" => {
                    let label = match ok {
                        true => format!("PR {}: {action}", host_name(*host)),
                        false => format!("PR {}: {action} FAILED", host_name(*host)),
                    };
                    let mut line = label.clone();
                    if let Some(st) = state {
                        line.push_str(&format!(
                            "; keys {}; holder {}",
                            st.keys.join(", "),
                            st.holder.as_deref().unwrap_or("none")
                        ));
                    }
                    if !detail.is_empty() {
                        line.push_str(&format!("; {detail}"));
                    }
                    tl.kernel.push((t, KernelMark::Reservation(label), line));
                }
                Event::Fault {
                    step, phase, kind, ..
                } => match phase {
                    FaultPhase::Begin => {
                        let label = entry
                            .faults
                            .get(*step)
                            .map_or_else(|| kind.clone(), |f| f.label.clone());
                        tl.faults.push(FaultWindow {
                            step: *step,
                            begin: t,
                            end: None,
                            label: format!("fault[{step}] {label}"),
                        });
                    }
                    FaultPhase::End => {
                        if let Some(f) = tl
                            .faults
                            .iter_mut()
                            .rev()
                            .find(|f| f.end.is_none() && f.step == *step)
                        {
                            f.end = Some(t);
                        }
                    }
                },
                Event::Probe { probe, event } => match event {
                    ProbeEvent::Op {
                        t: done,
                        start,
                        ok,
                        errno,
                        ..
                    } => {
                        let class = if *errno == Some(crate::check::cluster::EBADE) {
                            OpClass::Refused
                        } else if others.contains(&probe.as_str()) {
                            OpClass::OtherHost
                        } else if *ok {
                            OpClass::Ok
                        } else {
                            OpClass::Error
                        };
                        tl.ops.push((rel(*done), done - start, class));
                        tl.t0 = tl.t0.min(rel(*start));
                    }
                    ProbeEvent::Stalled { t: at, since, .. } => {
                        tl.ops.push((rel(*at), at - since, OpClass::InFlight));
                    }
                    ProbeEvent::Start { t: at, .. } => tl.t0 = tl.t0.min(rel(*at)),
                    ProbeEvent::VerifyStart { t: at, .. } => {
                        tl.verify_at.get_or_insert(rel(*at));
                    }
                    ProbeEvent::FsState {
                        t: at,
                        mount,
                        device,
                        line,
                        ..
                    } => {
                        let why = [device.as_ref().map(|d| format!("disk {d}")), line.clone()];
                        let why: Vec<String> = why.into_iter().flatten().collect();
                        tl.fs
                            .push((rel(*at), mount.as_str().to_string(), why.join("; ")));
                    }
                    ProbeEvent::FsRecovery {
                        t: at,
                        step,
                        ok,
                        detail,
                    } => tl.fs.push((
                        rel(*at),
                        format!(
                            "{}: {}",
                            step.as_str(),
                            if *ok { "works" } else { "failed" }
                        ),
                        detail.clone(),
                    )),
                    ProbeEvent::BadBlock {
                        t: at,
                        seq,
                        block,
                        found,
                        ..
                    } => tl.bad_blocks.push((
                        rel(*at),
                        *block,
                        match found {
                            // Several hosts: the other's stamp.
                            Some(Found::OtherRun { .. }) if !others.is_empty() => {
                                iscsi_chaos_formats::probe::OVERWRITTEN
                            }
                            Some(f) => f.class(*seq, *block),
                            None => "unreadable",
                        },
                    )),
                    _ => {}
                },
                Event::Session { state } if tl.session.last().map(|s| &s.1) != Some(state) => {
                    tl.session.push((t, state.clone()));
                }
                Event::Kernel { line } => {
                    tl.kernel
                        .push((t, KernelMark::classify(line), line.clone()))
                }
                Event::Path { path, session, dm } => {
                    let lane = tl.lane(*path);
                    if let Some(s) = session {
                        change(&mut lane.session, t, s);
                    }
                    if let Some(d) = dm {
                        change(&mut lane.dm, t, d);
                    }
                }
                Event::Wire(w) => {
                    if let Some(mark) = WireMark::of(w) {
                        tl.lane(w.path).wire.push((t, w.dir == Dir::ToTarget, mark));
                    }
                }
                _ => {}
            }
        }
        // The span: the probe's I/O, the faults and a filesystem's
        // recovery; session and kernel entries before or after it are
        // clipped.
        for &(t, lat, _) in &tl.ops {
            tl.t0 = tl.t0.min(t - lat);
            tl.t1 = tl.t1.max(t);
        }
        for (t, state, _) in &tl.fs {
            if state.contains(':') {
                tl.t1 = tl.t1.max(*t + 0.5);
            }
        }
        for f in &tl.faults {
            tl.t0 = tl.t0.min(f.begin);
            tl.t1 = tl.t1.max(f.end.unwrap_or(f.begin));
        }
        if !tl.t0.is_finite() || !tl.t1.is_finite() || tl.t1 - tl.t0 < 1.0 {
            let t0 = if tl.t0.is_finite() { tl.t0 } else { 0.0 };
            tl.t0 = t0;
            tl.t1 = t0 + 1.0;
        }
        tl
    }
}

const W: f64 = 1000.0;
const LEFT: f64 = 74.0;
const RIGHT: f64 = 24.0;
const PLOT_TOP: f64 = 96.0;
const PLOT_BOT: f64 = 300.0;
const SESSION_TOP: f64 = 326.0;
const SESSION_H: f64 = 18.0;
const KERNEL_Y: f64 = 358.0;
const KERNEL_ROWS: [f64; 3] = [384.0, 398.0, 412.0];
const LEGEND_Y: f64 = 436.0;
const H: f64 = 452.0;
/// A path's row (session and dm band, or wire lane) and the gap after it.
const ROW: f64 = 26.0;
const ROW_H: f64 = 18.0;
/// The wire legend's own line.
const LEGEND_LINE: f64 = 16.0;

const FONT: f64 = 11.0;
const GREY: &str = "#6b7280";
const RED: &str = "#dc2626";
const ORANGE: &str = "#ea580c";
const PURPLE: &str = "#7c3aed";
const BLUE: &str = "#2563eb";
/// A text's white outline, painted under its fill.
const HALO: &str =
    "stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"";

/// Label rows: each label goes on the first row where it does not overlap
/// the one before it.
struct Rows {
    right_edges: Vec<f64>,
}

impl Rows {
    fn new(n: usize) -> Rows {
        Rows {
            right_edges: vec![f64::NEG_INFINITY; n],
        }
    }

    /// The free row for a label from `x` of width `w`, if any.
    fn free(&mut self, x: f64, w: f64) -> Option<usize> {
        let row = (0..self.right_edges.len()).find(|&r| self.right_edges[r] + 6.0 <= x)?;
        self.right_edges[row] = x + w;
        Some(row)
    }

    /// As [`Rows::free`], but the last row when all are taken: a label
    /// that must be shown then overlaps rather than vanishes.
    fn place(&mut self, x: f64, w: f64) -> usize {
        self.free(x, w).unwrap_or_else(|| {
            let last = self.right_edges.len() - 1;
            self.right_edges[last] = self.right_edges[last].max(x + w);
            last
        })
    }
}

/// A step for about `n` ticks over `span` seconds: 1, 2 or 5 times a power
/// of ten.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-3);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// What a session state in sysfs means, for the band's tooltips.
fn session_meaning(state: &str) -> &'static str {
    match state {
        "LOGGED_IN" => "logged in: I/O flows",
        "FAILED" => "the connection failed: the initiator reconnects; I/O waits until replacement_timeout, then fails",
        "FREE" => "not logged in: the kernel's session is being set up or torn down (no recovery runs)",
        "GONE" => "the session no longer exists",
        _ => "a state this harness does not know",
    }
}

fn session_colour(state: &str) -> &'static str {
    match state {
        "LOGGED_IN" => "#16a34a",
        "FAILED" => RED,
        "FREE" | "GONE" => "#9ca3af",
        _ => "#eab308",
    }
}

fn latency_label(decade: i32) -> String {
    match decade {
        d if d < -3 => format!("{} µs", 10f64.powi(d + 6)),
        d if d < 0 => format!("{} ms", 10f64.powi(d + 3)),
        d => format!("{} s", 10f64.powi(d)),
    }
}

/// An x of 6 px at (px, py), as path data.
fn cross(px: f64, py: f64) -> String {
    format!(
        "M{} {} L{} {} M{} {} L{} {} ",
        num(px - 3.0),
        num(py - 3.0),
        num(px + 3.0),
        num(py + 3.0),
        num(px - 3.0),
        num(py + 3.0),
        num(px + 3.0),
        num(py - 3.0)
    )
}

/// The picture, as an SVG document.
pub fn render(tl: &Timeline) -> String {
    // Each path's rows go under the session band and push the kernel's
    // row and the legend down.
    let rows: usize = tl
        .paths
        .iter()
        .map(|p| {
            usize::from(!p.session.is_empty() || !p.dm.is_empty()) + usize::from(!p.wire.is_empty())
        })
        .sum::<usize>()
        + usize::from(!tl.fs.is_empty());
    let wired = tl.paths.iter().any(|p| !p.wire.is_empty());
    let dy = rows as f64 * ROW + if wired { LEGEND_LINE } else { 0.0 };
    let kernel_y = KERNEL_Y + dy;
    let kernel_row_y = KERNEL_ROWS.map(|r| r + dy);
    let legend_y = LEGEND_Y + dy - if wired { LEGEND_LINE } else { 0.0 };
    let mut svg = Svg::new(W, H + dy);
    let (t0, t1) = (tl.t0, tl.t1);
    let x = |t: f64| LEFT + (t.clamp(t0, t1) - t0) / (t1 - t0) * (W - LEFT - RIGHT);
    // Latency: decades from 0.1 ms to the one above the slowest operation
    // (at least 10 s, where iSCSI's timers live).
    let slowest = tl.ops.iter().map(|o| o.1).fold(10.0_f64, f64::max);
    let (lo_dec, hi_dec) = (-4, slowest.log10().ceil() as i32);
    let y = |lat: f64| {
        let l = lat.max(1e-4).log10();
        PLOT_BOT - (l - lo_dec as f64) / (hi_dec - lo_dec) as f64 * (PLOT_BOT - PLOT_TOP)
    };

    // Title.
    let verdict_colour = match tl.verdict.as_str() {
        "pass" => "#16a34a",
        "fail" | "error" => RED,
        _ => GREY,
    };
    svg.text(
        LEFT,
        20.0,
        14.0,
        Anchor::Start,
        &format!("font-weight=\"bold\" fill=\"{verdict_colour}\""),
        &tl.title,
    );
    let mut subtitle = tl.subtitle.clone();
    if subtitle.chars().count() > 150 {
        subtitle = subtitle.chars().take(149).collect::<String>() + "…";
    }
    svg.text(
        LEFT,
        36.0,
        FONT,
        Anchor::Start,
        "fill=\"#374151\"",
        &subtitle,
    );

    // Plot frame and the latency axis.
    svg.rect(
        LEFT,
        PLOT_TOP,
        W - LEFT - RIGHT,
        PLOT_BOT - PLOT_TOP,
        "fill=\"#ffffff\" stroke=\"#d1d5db\"",
        None,
    );
    for d in lo_dec..=hi_dec {
        let yy = y(10f64.powi(d));
        svg.line(LEFT, yy, W - RIGHT, yy, "stroke=\"#f3f4f6\"");
        svg.text(
            LEFT - 6.0,
            yy + 4.0,
            10.0,
            Anchor::End,
            "fill=\"#6b7280\"",
            &latency_label(d),
        );
    }
    svg.text(
        14.0,
        (PLOT_TOP + PLOT_BOT) / 2.0,
        10.0,
        Anchor::Middle,
        &format!(
            "fill=\"#6b7280\" transform=\"rotate(-90 14 {})\"",
            num((PLOT_TOP + PLOT_BOT) / 2.0)
        ),
        "I/O latency (log)",
    );

    // Fault windows, labelled above the plot.
    let mut fault_rows = Rows::new(3);
    for FaultWindow {
        begin, end, label, ..
    } in &tl.faults
    {
        let (xb, xe) = (x(*begin), x(end.unwrap_or(t1)));
        svg.rect(
            xb,
            PLOT_TOP,
            (xe - xb).max(1.0),
            PLOT_BOT - PLOT_TOP,
            "fill=\"#3b82f6\" fill-opacity=\"0.13\"",
            Some(label),
        );
        let shown = if end.is_none() {
            format!("{label} (never cleared)")
        } else {
            label.clone()
        };
        let row = fault_rows.place(xb, text_width(&shown, FONT));
        let ly = 54.0 + row as f64 * 13.0;
        svg.line(
            xb,
            ly + 2.0,
            xb,
            PLOT_TOP,
            "stroke=\"#3b82f6\" stroke-width=\"1\"",
        );
        svg.text(
            xb + 2.0,
            ly,
            FONT,
            Anchor::Start,
            "fill=\"#1d4ed8\"",
            &shown,
        );
    }
    if let Some(v) = tl.verify_at {
        svg.rect(
            x(v),
            PLOT_TOP,
            x(t1) - x(v),
            PLOT_BOT - PLOT_TOP,
            "fill=\"#a3a3a3\" fill-opacity=\"0.12\"",
            Some("read-back of acknowledged writes"),
        );
        svg.text(
            x(t1) - 3.0,
            PLOT_BOT - 8.0,
            10.0,
            Anchor::End,
            "fill=\"#6b7280\"",
            "verify",
        );
    }

    // The oracle's marks and the measured first error, labelled inside the
    // top of the plot.
    let mut mark_rows = Rows::new(3);
    // Labels inside the plot sit over the operations' dots: a white halo
    // (drawn under the letters) keeps them legible.
    let mut mark_label = |svg: &mut Svg, at: f64, colour: &str, text: &str| {
        let row = mark_rows.place(x(at), text_width(text, 10.0) + 4.0);
        svg.text(
            x(at) + 3.0,
            PLOT_TOP + 12.0 + row as f64 * 12.0,
            10.0,
            Anchor::Start,
            &format!("fill=\"{colour}\" {HALO}"),
            text,
        );
    };
    // Acknowledged writes found bad: where the probe found each. Those the
    // other host wrote over (several hosts) are the split brain's by the
    // hundred: a small mark each and one label.
    let overwritten = iscsi_chaos_formats::probe::OVERWRITTEN;
    let mut over = tl.bad_blocks.iter().filter(|b| b.2 == overwritten);
    if let Some(first) = over.clone().next() {
        for (at, block, _) in over.by_ref() {
            svg.circle(
                x(*at),
                PLOT_TOP + 4.0,
                2.5,
                &format!("fill=\"{BLUE}\" fill-opacity=\"0.5\""),
                Some(&format!("block {block}: {overwritten}, found at {at:.2} s")),
            );
        }
        let n = tl.bad_blocks.iter().filter(|b| b.2 == overwritten).count();
        mark_label(
            &mut svg,
            first.0,
            BLUE,
            &format!("{n} writes overwritten by the other host"),
        );
    }
    for (at, block, class) in tl.bad_blocks.iter().filter(|b| b.2 != overwritten) {
        svg.line(
            x(*at),
            PLOT_TOP,
            x(*at),
            PLOT_BOT,
            &format!("stroke=\"{RED}\" stroke-width=\"1.5\""),
        );
        svg.circle(
            x(*at),
            PLOT_TOP + 4.0,
            4.0,
            &format!("fill=\"{RED}\""),
            Some(&format!("block {block}: {class}, found at {at:.2} s")),
        );
        mark_label(&mut svg, *at, RED, &format!("block {block} {class}"));
    }
    if let Some((lo, hi)) = tl.predicted_detection {
        svg.rect(
            x(lo),
            PLOT_TOP,
            (x(hi) - x(lo)).max(2.0),
            PLOT_BOT - PLOT_TOP,
            &format!("fill=\"{PURPLE}\" fill-opacity=\"0.10\""),
            Some(&format!("predicted detection {lo:.1}-{hi:.1} s")),
        );
        svg.line(
            x(lo),
            PLOT_TOP,
            x(lo),
            PLOT_BOT,
            &format!("stroke=\"{PURPLE}\" stroke-dasharray=\"2 3\""),
        );
        mark_label(
            &mut svg,
            lo,
            PURPLE,
            &format!("predicted detection {lo:.1} s"),
        );
    }
    if let Some((at, tol)) = tl.predicted_first_error {
        svg.rect(
            x(at - tol),
            PLOT_TOP,
            (x(at + tol) - x(at - tol)).max(1.0),
            PLOT_BOT - PLOT_TOP,
            &format!("fill=\"{RED}\" fill-opacity=\"0.08\""),
            Some(&format!("predicted first error {at:.1} ± {tol:.1} s")),
        );
        svg.line(
            x(at),
            PLOT_TOP,
            x(at),
            PLOT_BOT,
            &format!("stroke=\"{RED}\" stroke-dasharray=\"5 3\""),
        );
        mark_label(
            &mut svg,
            at,
            RED,
            &format!("predicted first error {at:.1} ± {tol:.1} s"),
        );
    }
    if let Some(at) = tl.measured_first_error {
        svg.line(
            x(at),
            PLOT_TOP,
            x(at),
            PLOT_BOT,
            &format!("stroke=\"{RED}\" stroke-width=\"2\""),
        );
        mark_label(&mut svg, at, RED, &format!("first error {at:.1} s"));
    }

    // Stalls: a bar along the bottom of the plot.
    for (start, dur) in &tl.stalls {
        svg.rect(
            x(*start),
            PLOT_BOT - 5.0,
            (x(start + dur) - x(*start)).max(1.0),
            5.0,
            &format!("fill=\"{ORANGE}\""),
            Some(&format!("stall {dur:.1} s from {start:.1} s")),
        );
    }

    // Operations, one mark per pixel and class.
    let points: BTreeSet<(i64, i64, OpClass)> = tl
        .ops
        .iter()
        .map(|&(t, lat, c)| (x(t).round() as i64, y(lat).round() as i64, c))
        .collect();
    let mut crosses = String::new();
    let mut refused = String::new();
    for (px, py, class) in &points {
        let (px, py) = (*px as f64, *py as f64);
        match class {
            OpClass::Ok => svg.circle(px, py, 1.6, &format!("fill=\"{GREY}\""), None),
            OpClass::OtherHost => svg.circle(px, py, 1.6, &format!("fill=\"{BLUE}\""), None),
            OpClass::Refused => refused.push_str(&cross(px, py)),
            OpClass::InFlight => svg.circle(px, py, 2.2, &format!("fill=\"{ORANGE}\""), None),
            OpClass::Error => crosses.push_str(&cross(px, py)),
        }
    }
    if !refused.is_empty() {
        svg.path(
            refused.trim_end(),
            &format!("stroke=\"{PURPLE}\" stroke-width=\"1.5\" fill=\"none\""),
            Some("write refused: RESERVATION CONFLICT"),
        );
    }
    if !crosses.is_empty() {
        svg.path(
            crosses.trim_end(),
            &format!("stroke=\"{RED}\" stroke-width=\"1.5\" fill=\"none\""),
            Some("failed I/O"),
        );
    }

    // Time axis.
    let step = tick_step(t1 - t0, 12.0);
    let mut t = (t0 / step).ceil() * step;
    let axis_title = "s from the first fault";
    let title_left = W - RIGHT - text_width(axis_title, 10.0) - 12.0;
    while t <= t1 + 1e-9 {
        svg.line(x(t), PLOT_BOT, x(t), PLOT_BOT + 4.0, "stroke=\"#9ca3af\"");
        let decimals = if step < 1.0 { 1 } else { 0 };
        // No "-0", and no number under the axis title.
        let shown = if t.abs() < step / 2.0 { 0.0 } else { t };
        if x(t) < title_left {
            svg.text(
                x(t),
                PLOT_BOT + 15.0,
                10.0,
                Anchor::Middle,
                "fill=\"#6b7280\"",
                &format!("{shown:.decimals$}"),
            );
        }
        t += step;
    }
    svg.text(
        W - RIGHT,
        PLOT_BOT + 15.0,
        10.0,
        Anchor::End,
        "fill=\"#6b7280\"",
        axis_title,
    );

    // Session state band.
    row_label(&mut svg, SESSION_TOP, "session");
    for (from, until, (_, state)) in spans(&tl.session, |s| s.0, (t0, t1)) {
        let (xa, xb) = (x(from), x(until));
        svg.rect(
            xa,
            SESSION_TOP,
            (xb - xa).max(1.0),
            SESSION_H,
            &format!("fill=\"{}\"", session_colour(state)),
            Some(&format!(
                "{state} from {from:.1} s: {}",
                session_meaning(state)
            )),
        );
        if xb - xa > text_width(state, 10.0) + 6.0 {
            svg.text(
                (xa + xb) / 2.0,
                SESSION_TOP + 13.0,
                10.0,
                Anchor::Middle,
                "fill=\"#ffffff\"",
                state,
            );
        }
    }

    // Each path's rows.
    let mut top = SESSION_TOP + ROW;
    for lane in &tl.paths {
        if !lane.session.is_empty() || !lane.dm.is_empty() {
            path_band(&mut svg, &x, (t0, t1), top, lane);
            top += ROW;
        }
        if !lane.wire.is_empty() {
            wire_lane(&mut svg, &x, top, lane);
            top += ROW;
        }
    }
    if !tl.fs.is_empty() {
        fs_band(&mut svg, &x, (t0, t1), top, &tl.fs);
    }

    // Kernel lines (and the fencing's reservation actions): a tick each,
    // labelled once per kind and second.
    let pr = tl
        .kernel
        .iter()
        .any(|k| matches!(k.1, KernelMark::Reservation(_)));
    svg.text(
        LEFT - 6.0,
        kernel_y + 4.0,
        10.0,
        Anchor::End,
        "fill=\"#374151\"",
        if pr { "kernel, PR" } else { "kernel" },
    );
    svg.line(LEFT, kernel_y, W - RIGHT, kernel_y, "stroke=\"#e5e7eb\"");
    let mut kernel_rows = Rows::new(kernel_row_y.len());
    let mut labelled: Vec<(f64, &KernelMark)> = Vec::new();
    for (at, mark, line) in &tl.kernel {
        if *at < t0 || *at > t1 {
            continue;
        }
        let colour = if *mark == KernelMark::Other {
            "#9ca3af"
        } else {
            "#111827"
        };
        svg.path(
            &format!(
                "M{} {} L{} {}",
                num(x(*at)),
                num(kernel_y - 6.0),
                num(x(*at)),
                num(kernel_y + 6.0)
            ),
            &format!("stroke=\"{colour}\" stroke-width=\"1.5\""),
            Some(line),
        );
        let Some(label) = mark.label() else { continue };
        // Refused commands come by the hundred: the first is labelled.
        let once = *mark == KernelMark::Conflict;
        if labelled
            .iter()
            .any(|(t, m)| *m == mark && (once || (at - t).abs() < 1.0))
        {
            continue;
        }
        let label = format!("{label} ({at:.1} s)");
        let w = text_width(&label, 10.0);
        // No room: the tick keeps the line as its tooltip.
        let Some(row) = kernel_rows.free(x(*at) - 2.0, w + 4.0) else {
            continue;
        };
        labelled.push((*at, mark));
        let ly = kernel_row_y[row];
        svg.line(
            x(*at),
            kernel_y + 6.0,
            x(*at),
            ly - 9.0,
            "stroke=\"#d1d5db\"",
        );
        svg.text(
            x(*at) - 2.0,
            ly,
            10.0,
            Anchor::Start,
            "fill=\"#111827\"",
            &label,
        );
    }

    // Legend.
    let mut lx = LEFT;
    let mut legend = |svg: &mut Svg, swatch: &dyn Fn(&mut Svg, f64), text: &str| {
        swatch(svg, lx);
        svg.text(
            lx + 14.0,
            legend_y + 4.0,
            10.0,
            Anchor::Start,
            "fill=\"#374151\"",
            text,
        );
        lx += 22.0 + text_width(text, 10.0);
    };
    legend(
        &mut svg,
        &|s, at| s.circle(at + 4.0, legend_y, 2.0, &format!("fill=\"{GREY}\""), None),
        "I/O ok",
    );
    legend(
        &mut svg,
        &|s, at| {
            s.path(
                &format!(
                    "M{} {} L{} {} M{} {} L{} {}",
                    num(at + 1.0),
                    num(legend_y - 3.0),
                    num(at + 7.0),
                    num(legend_y + 3.0),
                    num(at + 1.0),
                    num(legend_y + 3.0),
                    num(at + 7.0),
                    num(legend_y - 3.0)
                ),
                &format!("stroke=\"{RED}\" stroke-width=\"1.5\""),
                None,
            )
        },
        "I/O error",
    );
    legend(
        &mut svg,
        &|s, at| s.circle(at + 4.0, legend_y, 2.5, &format!("fill=\"{ORANGE}\""), None),
        "still blocked",
    );
    // Several hosts: the others' I/O, and writes a reservation refused.
    if tl.ops.iter().any(|o| o.2 == OpClass::OtherHost) {
        legend(
            &mut svg,
            &|s, at| s.circle(at + 4.0, legend_y, 2.0, &format!("fill=\"{BLUE}\""), None),
            "other host",
        );
    }
    if tl.ops.iter().any(|o| o.2 == OpClass::Refused) {
        legend(
            &mut svg,
            &|s, at| {
                s.path(
                    cross(at + 4.0, legend_y).trim_end(),
                    &format!("stroke=\"{PURPLE}\" stroke-width=\"1.5\""),
                    None,
                )
            },
            "refused (PR)",
        );
    }
    legend(
        &mut svg,
        &|s, at| {
            s.rect(
                at,
                legend_y - 3.0,
                10.0,
                5.0,
                &format!("fill=\"{ORANGE}\""),
                None,
            )
        },
        "stall",
    );
    legend(
        &mut svg,
        &|s, at| {
            s.rect(
                at,
                legend_y - 5.0,
                10.0,
                10.0,
                "fill=\"#3b82f6\" fill-opacity=\"0.25\"",
                None,
            )
        },
        "fault",
    );
    // The oracle's and the measurement's vertical marks.
    for (style, text) in [
        (
            format!("stroke=\"{RED}\" stroke-dasharray=\"3 2\""),
            "predicted 1st error ± tol.",
        ),
        (
            format!("stroke=\"{RED}\" stroke-width=\"2\""),
            "measured 1st error",
        ),
        (
            format!("stroke=\"{PURPLE}\" stroke-dasharray=\"2 2\""),
            "predicted detection",
        ),
    ] {
        legend(
            &mut svg,
            &|s, at| s.line(at + 4.0, legend_y - 6.0, at + 4.0, legend_y + 6.0, &style),
            text,
        );
    }

    if wired {
        let ly = legend_y + LEGEND_LINE;
        let mut lx = LEFT;
        let marks = [
            WireMark::Write,
            WireMark::Read,
            WireMark::Command,
            WireMark::Good,
            WireMark::BadStatus,
            WireMark::Control,
            WireMark::Dropped,
            WireMark::Retransmission,
            WireMark::Reset,
        ];
        svg.text(
            lx,
            ly + 4.0,
            10.0,
            Anchor::Start,
            "fill=\"#374151\"",
            "wire (commands above, answers below):",
        );
        lx += 12.0 + text_width("wire (commands above, answers below):", 10.0);
        for mark in marks {
            if mark == WireMark::Reset {
                continue;
            }
            svg.line(
                lx + 4.0,
                ly - 6.0,
                lx + 4.0,
                ly + 6.0,
                &format!("stroke=\"{}\" stroke-width=\"2\"", mark.colour()),
            );
            let text = match mark {
                WireMark::Dropped => "dropped",
                WireMark::Control => "control",
                WireMark::Retransmission => "sent again / RST",
                m => m.name(),
            };
            svg.text(
                lx + 10.0,
                ly + 4.0,
                10.0,
                Anchor::Start,
                "fill=\"#374151\"",
                text,
            );
            lx += 18.0 + text_width(text, 10.0);
        }
    }

    svg.finish(&format!("timeline of {}", tl.title))
}

/// The spans of a band's states that show in `(t0, t1)`: each state from
/// its change (`at`) until the next change, the last until `t1`.
fn spans<'a, S>(
    states: &'a [S],
    at: impl Fn(&S) -> f64 + 'a,
    (t0, t1): (f64, f64),
) -> impl Iterator<Item = (f64, f64, &'a S)> + 'a {
    states.iter().enumerate().filter_map(move |(i, s)| {
        let (from, until) = (at(s), states.get(i + 1).map_or(t1, &at));
        (until >= t0 && from <= t1).then_some((from, until, s))
    })
}

/// A row's name, left of the plot, for a row whose band starts at `top`.
fn row_label(svg: &mut Svg, top: f64, name: &str) {
    svg.text(
        LEFT - 6.0,
        top + 13.0,
        10.0,
        Anchor::End,
        "fill=\"#374151\"",
        name,
    );
}

/// The filesystem's row: its state from each change on (rw green,
/// read-only amber, shut down red, unmounted grey), each recovery step a
/// tick (green: the workload ran after it; red: it did not).
fn fs_band(
    svg: &mut Svg,
    x: &dyn Fn(f64) -> f64,
    (t0, t1): (f64, f64),
    top: f64,
    fs: &[(f64, String, String)],
) {
    row_label(svg, top, "filesystem");
    let states: Vec<&(f64, String, String)> = fs.iter().filter(|s| !s.1.contains(':')).collect();
    for (from, until, (_, state, why)) in spans(&states, |s| s.0, (t0, t1)) {
        let (xa, xb) = (x(from), x(until));
        let colour = match state.as_str() {
            "rw" => "#16a34a",
            "read-only" => "#eab308",
            "shut down" => RED,
            _ => "#9ca3af",
        };
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        svg.rect(
            xa,
            top,
            (xb - xa).max(1.0),
            ROW_H,
            &format!("fill=\"{colour}\""),
            Some(&format!("filesystem {state} from {from:.1} s{why}")),
        );
        if xb - xa > text_width(state, 10.0) + 6.0 {
            svg.text(
                (xa + xb) / 2.0,
                top + 13.0,
                10.0,
                Anchor::Middle,
                "fill=\"#ffffff\"",
                state,
            );
        }
    }
    for (at, step, detail) in fs.iter().filter(|s| s.1.contains(':')) {
        if *at < t0 || *at > t1 {
            continue;
        }
        let colour = if step.ends_with("works") {
            "#14532d"
        } else {
            RED
        };
        svg.rect(
            x(*at) - 1.5,
            top - 2.0,
            3.0,
            ROW_H + 4.0,
            &format!("fill=\"{colour}\""),
            Some(&format!("recovery {step} at {at:.1} s: {detail}")),
        );
    }
}

/// A path's session state (upper half) and dm state (lower half).
fn path_band(
    svg: &mut Svg,
    x: &dyn Fn(f64) -> f64,
    (t0, t1): (f64, f64),
    top: f64,
    lane: &PathLane,
) {
    row_label(svg, top, &format!("path {}", lane.path));
    let half = ROW_H / 2.0;
    for (states, y, what) in [
        (&lane.session, top, "session"),
        (&lane.dm, top + half, "dm path"),
    ] {
        for (from, until, (_, state)) in spans(states, |s| s.0, (t0, t1)) {
            let (xa, xb) = (x(from), x(until));
            let colour = match state.as_str() {
                "active" => "#16a34a",
                "failed" => RED,
                s => session_colour(s),
            };
            svg.rect(
                xa,
                y,
                (xb - xa).max(1.0),
                half - 1.0,
                &format!("fill=\"{colour}\""),
                Some(&format!(
                    "path {} {what} {state} from {from:.1} s",
                    lane.path
                )),
            );
        }
    }
}

/// A path's wire lane: commands in the upper half, answers in the lower,
/// one tick per pixel and mark; resets, data sent again and dropped PDUs
/// across the lane.
fn wire_lane(svg: &mut Svg, x: &dyn Fn(f64) -> f64, top: f64, lane: &PathLane) {
    row_label(svg, top, &format!("wire {}", lane.path));
    svg.rect(LEFT, top, W - LEFT - RIGHT, ROW_H, "fill=\"#f9fafb\"", None);
    let mid = top + ROW_H / 2.0;
    svg.line(LEFT, mid, W - RIGHT, mid, "stroke=\"#e5e7eb\"");
    let mut ticks: std::collections::BTreeMap<WireMark, (BTreeSet<(i64, bool)>, usize)> =
        Default::default();
    for &(t, to_target, mark) in &lane.wire {
        let e = ticks.entry(mark).or_default();
        e.0.insert((x(t).round() as i64, to_target));
        e.1 += 1;
    }
    for (mark, (points, count)) in ticks {
        let mut d = String::new();
        for (px, to_target) in points {
            let (ya, yb) = if mark.tall() {
                (top, top + ROW_H)
            } else if to_target {
                (top + 1.0, mid - 1.0)
            } else {
                (mid + 1.0, top + ROW_H - 1.0)
            };
            d.push_str(&format!("M{} {}V{} ", px, num(ya), num(yb)));
        }
        let width = if mark == WireMark::Reset { 2.5 } else { 1.2 };
        svg.path(
            d.trim_end(),
            &format!(
                "stroke=\"{}\" stroke-width=\"{width}\" fill=\"none\"",
                mark.colour()
            ),
            Some(&format!("path {}: {count} × {}", lane.path, mark.name())),
        );
    }
}

/// Draws `<id>.timeline.svg` for every run whose history is in the output
/// folder, when the suite ends (so `merge` draws them too).
pub struct Timelines {
    pub out: OutDir,
}

impl Timelines {
    /// The picture of `entry`, from its saved history; `None` when the run
    /// left none (skipped, or it failed before its I/O).
    pub fn draw(&self, entry: &Entry) -> Option<Result<String, String>> {
        let path = self.out.path().join(history_file(&entry.id));
        let text = std::fs::read_to_string(&path).ok()?;
        Some(
            History::from_json_lines(&text)
                .map(|h| render(&Timeline::new(entry, &h)))
                .map_err(|e| format!("{}: not a history: {e}", path.display())),
        )
    }
}

impl Reporter for Timelines {
    fn event(&mut self, event: &RunEvent<'_>) {
        let RunEvent::SuiteFinished { report } = event else {
            return;
        };
        for entry in &report.scenarios {
            match self.draw(entry) {
                None => {}
                Some(Ok(svg)) => self.out.write_or_say(&file(&entry.id), svg.as_bytes()),
                Some(Err(e)) => eprintln!("iscsi-chaos: timeline of {}: {e}", entry.id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_lines_are_classified_by_what_they_mean() {
        let c = KernelMark::classify;
        assert_eq!(
            c(" connection1:0: detected conn error (1022)"),
            KernelMark::ConnError("1022".into())
        );
        assert_eq!(
            c("session1: session recovery timed out after 5 secs"),
            KernelMark::RecoveryTimedOut
        );
        assert_eq!(
            c("sd 2:0:0:0: rejecting I/O to offline device"),
            KernelMark::Offline
        );
        assert_eq!(
            c(" connection1:0: ping timeout of 5 secs expired, recv timeout 5"),
            KernelMark::PingTimeout
        );
        assert_eq!(
            c("I/O error, dev sda, sector 8 op 0x1:(WRITE)"),
            KernelMark::IoError
        );
        assert_eq!(
            c("scsi host2: iSCSI Initiator over TCP/IP"),
            KernelMark::Other
        );
        assert_eq!(c("sd 0:0:0:1: reservation conflict"), KernelMark::Conflict);
    }

    #[test]
    fn the_fencing_s_actions_and_refused_writes_are_drawn() {
        let mut h = History::default();
        let op = |t: f64, errno: Option<i32>| Event::Probe {
            probe: "node-a".into(),
            event: ProbeEvent::Op {
                t,
                start: t - 0.01,
                op: guest_probes::OpKind::Write,
                seq: 1,
                block: 1,
                ok: errno.is_none(),
                errno,
            },
        };
        h.push(1.0, op(1.0, None));
        h.push(
            2.0,
            Event::Reservation {
                host: 1,
                action: "preempt-and-abort".into(),
                ok: true,
                detail: String::new(),
                state: None,
            },
        );
        h.push(3.0, op(3.0, Some(crate::check::cluster::EBADE)));
        let entry: Entry = serde_json::from_value(serde_json::json!({
            "id": "fenced@lio", "name": "fenced", "target": "lio", "verdict": "pass",
            "reasons": [], "settings": {}, "faults": [],
            "expected": {"first_error_s": null, "tolerance_s": 1.5, "borderline": false,
                         "imprecise": false, "notes": []},
            "measured": {"first_error_s": null, "errors": 1, "errnos": [52], "max_stall_s": 0.0,
                         "stalls": [], "recovered_s": null, "acked_writes": 1, "lost_writes": 0,
                         "corrupt_writes": 0, "unverified_writes": 0, "ops": 2},
            "timings": {}
        }))
        .unwrap();
        let tl = Timeline::new(&entry, &h);
        assert_eq!(
            tl.ops.iter().map(|o| o.2).collect::<Vec<_>>(),
            [OpClass::Ok, OpClass::Refused]
        );
        assert!(tl
            .kernel
            .iter()
            .any(|k| k.1 == KernelMark::Reservation("PR host1: preempt-and-abort".into())));
        let svg = render(&tl);
        assert!(svg.contains("kernel, PR") && svg.contains("refused (PR)"));
    }

    #[test]
    fn ticks_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(tick_step(60.0, 12.0), 5.0);
        assert_eq!(tick_step(200.0, 12.0), 20.0);
        assert_eq!(tick_step(3.0, 12.0), 0.5);
    }

    #[test]
    fn labels_that_would_overlap_go_on_the_next_row() {
        let mut rows = Rows::new(2);
        assert_eq!(rows.place(0.0, 100.0), 0);
        assert_eq!(rows.place(50.0, 10.0), 1);
        assert_eq!(rows.place(120.0, 10.0), 0);
        // Every row taken: the last one, or none.
        assert_eq!(rows.free(60.0, 10.0), None);
        assert_eq!(rows.place(60.0, 10.0), 1);
    }
}
