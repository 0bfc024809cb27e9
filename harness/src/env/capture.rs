//! The switch's packet capture of one run: both ports of every path's
//! switch, read on a thread of its own from login to logout.
//!
//! Each frame is seen twice when the switch forwards it: coming in at the
//! port facing its sender (before the nemesis) and going out at the port
//! facing its receiver (after the nemesis: the kernel's taps run after the
//! qdisc). The two sightings are paired by their headers' bytes and length
//! (a frame netem corrupted past its headers pairs as delivered, which it
//! was): a frame seen coming
//! in and never going out within [`HORIZON_S`] was dropped; one seen going
//! out only was made by the switch (a reset's RST). Each frame is kept once,
//! at the time it came in, with its fate.
//!
//! A fault that holds frames (a stalled controller's plug) delivers them
//! long after they came in: while a hold is in place on a path and way,
//! and for [`HORIZON_S`] after it ends, frames there wait for their going
//! out however long it takes, and the other paths' frames go on past them.
//!
//! Every frame goes through the decoder (streams need all their bytes); the
//! mode decides which frames, and so which decoded events, are kept: the
//! whole run, or a window around each fault and every connection's setup
//! and end. Frames wait [`HOLD_S`] before that decision, so a window opening
//! at a fault's begin reaches back to before it.
//!
//! Invariant: the capture opens sockets only on the ports of the run's own
//! switches, and its thread ends (and its sockets close) at `finish`, before
//! the lanes are removed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use guest_probes::monotonic_now;
use iscsi_chaos_formats::wire::{CaptureSummary, Dir, Fate, Wire, WireWhat};

use crate::env::lane::Lane;
use crate::history::Event;
use crate::model::action::LinkSide;
use crate::model::{Capture as CaptureSpec, CaptureMode, CAPTURE_AFTER_S, CAPTURE_BEFORE_S};
use crate::sys::packet::{wait_readable, PacketSocket};
use crate::wire::decode::{Decoder, Frame};
use crate::wire::pcapng::{Record, Writer};

/// How long a frame seen coming in may take to go out before it counts as
/// dropped (netem delays longer than this make a frame "dropped" and its
/// late copy "made").
pub const HORIZON_S: f64 = 5.0;
/// How long a frame waits before it is kept or not (a window reaches this
/// far back).
const HOLD_S: f64 = CAPTURE_BEFORE_S + 0.5;
const POLL: Duration = Duration::from_millis(50);
/// The pause after each round: frames wait in the sockets' buffers (8 MiB
/// each) and are read in batches, not woken for one by one.
const PACE: Duration = Duration::from_millis(20);

/// One switch port's socket.
struct Port {
    path: u8,
    /// The port faces the initiator (frames coming in go to the target).
    faces_initiator: bool,
    socket: PacketSocket,
}

/// Fault windows: open while any fault is in place, reaching back and
/// forward by the window's margins.
#[derive(Default)]
struct Windows {
    open: usize,
    spans: Vec<(f64, Option<f64>)>,
}

impl Windows {
    fn fault(&mut self, begin: bool, t: f64) {
        if begin {
            self.open += 1;
            if self.open == 1 {
                self.spans.push((t - CAPTURE_BEFORE_S, None));
            }
        } else if self.open > 0 {
            self.open -= 1;
            if self.open == 0 {
                if let Some(last) = self.spans.last_mut() {
                    last.1 = Some(t + CAPTURE_AFTER_S);
                }
            }
        }
    }

    fn contains(&self, t: f64) -> bool {
        self.spans
            .iter()
            .any(|(from, to)| *from <= t && to.is_none_or(|to| t <= to))
    }
}

/// Frames of a path (`None`: every path) and way held by a fault from
/// `from` to `until` (`None`: still held).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hold {
    path: Option<u8>,
    dir: Dir,
    from: f64,
    until: Option<f64>,
}

impl Hold {
    /// Whether frame `p` is held here.
    fn covers(&self, p: &Pending) -> bool {
        self.path.is_none_or(|path| path == p.path)
            && self.dir == p.dir
            && p.t >= self.from - ORPHAN_S
            && self.until.is_none_or(|u| p.t <= u)
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    new_ports: Mutex<Vec<Port>>,
    windows: Mutex<Windows>,
    holds: Mutex<Vec<Hold>>,
}

/// What a capture leaves: its events for the history and its file.
pub struct Captured {
    pub events: Vec<(f64, Event)>,
    pub pcapng: Vec<u8>,
}

/// A run's capture, running.
pub struct Capture {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<Captured>>,
}

impl Capture {
    /// Starts the capture thread (it reads the ports [`Capture::add_path`]
    /// hands it). `file`: the pcapng's name, for the summary.
    pub fn start(spec: CaptureSpec, file: String) -> Result<Capture> {
        let shared = Arc::new(Shared::default());
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || run(&inner, spec, file))
            .context("starting the capture thread")?;
        Ok(Capture {
            shared,
            thread: Some(thread),
        })
    }

    /// Captures both ports of path `path`'s switch from now on.
    pub fn add_path(&self, path: u8, lane: &Lane) -> Result<()> {
        let switch = lane.switch().context("the lane has no switch")?;
        let mut ports = Vec::new();
        for (side, faces_initiator) in [(LinkSide::Initiator, true), (LinkSide::Target, false)] {
            let ifindex = lane.port_ifindex(side);
            let socket = switch
                .run_in(move || PacketSocket::open(ifindex))?
                .with_context(|| format!("a packet socket on {}", lane.port_name(side)))?;
            ports.push(Port {
                path,
                faces_initiator,
                socket,
            });
        }
        self.shared
            .new_ports
            .lock()
            .expect("capture ports")
            .extend(ports);
        Ok(())
    }

    /// A fault step began or ended now (opens and closes windows).
    pub fn fault(&self, begin: bool) {
        self.shared
            .windows
            .lock()
            .expect("capture windows")
            .fault(begin, monotonic_now());
    }

    /// A fault began (`begin`) or stopped holding the frames of `path`
    /// (`None`: every path) going `dir`: they are delivered late, not lost.
    pub fn hold(&self, path: Option<u8>, dir: Dir, begin: bool) {
        let now = monotonic_now();
        let mut holds = self.shared.holds.lock().expect("capture holds");
        if begin {
            holds.push(Hold {
                path,
                dir,
                from: now,
                until: None,
            });
        } else if let Some(h) = holds
            .iter_mut()
            .rev()
            .find(|h| h.path == path && h.dir == dir && h.until.is_none())
        {
            h.until = Some(now);
        }
    }

    /// Stops the capture and hands over what it kept.
    pub async fn finish(mut self) -> Result<Captured> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().context("the capture already finished")?;
        crate::sys::blocking::spawn(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the capture thread panicked"))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // An unfinished capture (a panic, an error before teardown) still
        // ends its thread.
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// A frame waiting for its fate and for the keep decision.
struct Pending {
    t: f64,
    realtime_ns: u64,
    path: u8,
    dir: Dir,
    data: Vec<u8>,
    orig_len: usize,
    fate: Option<Fate>,
    delay_s: Option<f64>,
}

/// Pairs the sightings of frames and releases them in the order they came
/// in.
#[derive(Default)]
struct Matcher {
    /// Frames by the time they came in (and a number, for frames of one
    /// time).
    queue: BTreeMap<(u64, u64), Pending>,
    next: u64,
    /// Frames seen coming in and not yet going out, by path, direction and
    /// bytes: their queue keys, oldest first.
    unmatched: HashMap<(u8, Dir, u64), VecDeque<(u64, u64)>>,
    /// Frames seen going out whose coming in was not read yet (the two
    /// ports' sockets are read one after the other): they wait
    /// [`ORPHAN_S`] for it before they count as made by the switch.
    orphans: HashMap<(u8, Dir, u64), VecDeque<Pending>>,
    /// The holds of the run so far.
    holds: Vec<Hold>,
}

/// How long a frame seen going out waits for its coming in to be read.
const ORPHAN_S: f64 = 1.0;

/// Bytes of a frame its pairing key is made of: the Ethernet, IP and TCP
/// headers (addresses, IP id, sequence and acknowledgment numbers, TCP
/// checksum) tell frames apart without reading their payload.
const KEY_BYTES: usize = 128;

/// The pairing key of a frame's bytes (FNV-1a over its headers and its
/// length: cheap, and a frame's two sightings have the same bytes).
fn digest(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data[..data.len().min(KEY_BYTES)]
        .iter()
        .chain(&(data.len() as u64).to_le_bytes())
    {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Matcher {
    /// Queues `p` in time order; its key.
    fn enqueue(&mut self, p: Pending) -> (u64, u64) {
        // Times are positive: their bits order like the numbers.
        let key = (p.t.max(0.0).to_bits(), self.next);
        self.next += 1;
        self.queue.insert(key, p);
        key
    }

    /// A frame coming into the switch (`incoming`) or going out of it.
    fn see(&mut self, mut p: Pending, incoming: bool) {
        let key = (p.path, p.dir, digest(&p.data));
        if incoming {
            if let Some(list) = self.orphans.get_mut(&key) {
                if let Some(out) = list.pop_front() {
                    if list.is_empty() {
                        self.orphans.remove(&key);
                    }
                    p.fate = Some(Fate::Delivered);
                    p.delay_s = Some((out.t - p.t).max(0.0));
                    self.enqueue(p);
                    return;
                }
            }
            let at = self.enqueue(p);
            self.unmatched.entry(key).or_default().push_back(at);
            return;
        }
        // Of identical frames waiting, the newest goes out first: a copy
        // the nemesis dropped (a RST sent again with the same bytes) stays
        // dropped rather than being paired with its later copy's sighting.
        if let Some(list) = self.unmatched.get_mut(&key) {
            while let Some(at) = list.pop_back() {
                if let Some(q) = self.queue.get_mut(&at) {
                    if q.fate.is_none() {
                        q.fate = Some(Fate::Delivered);
                        q.delay_s = Some((p.t - q.t).max(0.0));
                        if list.is_empty() {
                            self.unmatched.remove(&key);
                        }
                        return;
                    }
                }
            }
            self.unmatched.remove(&key);
        }
        self.orphans.entry(key).or_default().push_back(p);
    }

    /// The frames decided by `now` (all of them when `now` is infinite).
    fn release(&mut self, now: f64) -> Vec<Pending> {
        let mut made = Vec::new();
        self.orphans.retain(|_, list| {
            while list.front().is_some_and(|p| now - p.t >= ORPHAN_S) {
                made.extend(list.pop_front());
            }
            !list.is_empty()
        });
        for mut p in made {
            p.fate = Some(Fate::Made);
            self.enqueue(p);
        }
        // Frames leave in the order they came in; an undecided one stops
        // the rest, except on a held path and way, whose frames wait
        // (in their order) while the others go on.
        let mut ready = Vec::new();
        let mut waiting: Vec<(u8, Dir)> = Vec::new();
        for (key, p) in &self.queue {
            if now - p.t < HOLD_S {
                break;
            }
            if waiting.contains(&(p.path, p.dir)) {
                continue;
            }
            if p.fate.is_none() {
                let held = self.holds.iter().filter(|h| h.covers(p)).map(|h| h.until);
                let mut decided_at = p.t + HORIZON_S;
                let mut any = false;
                for until in held {
                    any = true;
                    decided_at = decided_at.max(until.unwrap_or(f64::INFINITY) + HORIZON_S);
                }
                if now < decided_at {
                    if !any {
                        break;
                    }
                    waiting.push((p.path, p.dir));
                    continue;
                }
            }
            ready.push(*key);
        }
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            let mut p = self.queue.remove(&key).expect("a queued frame");
            if p.fate.is_none() {
                p.fate = Some(Fate::Dropped);
            }
            out.push(p);
        }
        if self.queue.is_empty() {
            self.unmatched.clear();
        }
        out
    }
}

/// An event that always goes into the file: a connection's setup or end,
/// a login, logout, text exchange, task management, reject or async
/// message.
fn is_control(w: &Wire) -> bool {
    match &w.what {
        WireWhat::Tcp { flags, .. } => !flags.is_empty(),
        WireWhat::Pdu(p) => {
            matches!(p.opcode, 0x02..=0x04 | 0x06 | 0x22..=0x24 | 0x26 | 0x32 | 0x3f)
        }
    }
}

/// CPU time of the calling thread, seconds.
fn thread_cpu_s() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// The capture thread.
fn run(shared: &Shared, spec: CaptureSpec, file: String) -> Captured {
    let started = monotonic_now();
    // Packets carry wall-clock stamps; the history is monotonic.
    let offset = guest_probes::realtime_offset();
    let snaplen = spec.snaplen as usize;
    let cap = spec.max_mib as usize * 1024 * 1024;
    let mut ports: Vec<Port> = Vec::new();
    let mut matcher = Matcher::default();
    let mut decoder = Decoder::new();
    let mut writer = Writer::new(spec.snaplen, cap);
    let mut events: Vec<(f64, Event)> = Vec::new();
    let mut frames = 0u64;
    let mut truncated_at = None;
    // Whole frames are read (the decoder needs them); the file keeps
    // `snaplen` bytes of each.
    let mut buf = vec![0u8; 65536 + 4];
    let mut process = |p: Pending, events: &mut Vec<(f64, Event)>| {
        let fate = p.fate.unwrap_or(Fate::Dropped);
        let frame = Frame {
            t: p.t,
            path: p.path,
            dir: p.dir,
            fate,
            delay_s: p.delay_s,
            data: &p.data,
        };
        let decoded = decoder.feed(&frame);
        let in_window =
            spec.mode == CaptureMode::All || shared.windows.lock().expect("windows").contains(p.t);
        if !in_window && !decoded.iter().any(|(_, w)| is_control(w)) {
            return;
        }
        let record = Record {
            realtime: Duration::from_nanos(p.realtime_ns),
            path: p.path,
            dir: p.dir,
            fate,
            delay_s: p.delay_s,
            data: &p.data[..p.data.len().min(snaplen)],
            orig_len: p.orig_len as u32,
        };
        if writer.write(&record) {
            events.extend(decoded.into_iter().map(|(t, w)| (t, Event::Wire(w))));
        } else if truncated_at.is_none() {
            truncated_at = Some(p.t);
        }
    };
    loop {
        ports.extend(shared.new_ports.lock().expect("capture ports").drain(..));
        let stopping = shared.stop.load(Ordering::SeqCst);
        if !stopping {
            let sockets: Vec<&PacketSocket> = ports.iter().map(|p| &p.socket).collect();
            if sockets.is_empty() {
                std::thread::sleep(POLL);
            } else if let Err(e) = wait_readable(&sockets, POLL) {
                tracing::warn!("capture: poll: {e}");
                std::thread::sleep(POLL);
            }
        }
        let mut batch = Vec::new();
        for port in &ports {
            // A bounded read per port and round, so no port starves.
            for _ in 0..4096 {
                match port.socket.recv(&mut buf) {
                    Ok(Some(got)) => {
                        let outgoing = got.outgoing;
                        let incoming = !outgoing;
                        // Coming in at the port facing the initiator, or
                        // going out at the one facing the target: toward
                        // the target.
                        let dir = if incoming == port.faces_initiator {
                            Dir::ToTarget
                        } else {
                            Dir::ToInitiator
                        };
                        let realtime = got.realtime_ns as f64 / 1e9;
                        batch.push((
                            incoming,
                            Pending {
                                t: realtime - offset,
                                realtime_ns: got.realtime_ns,
                                path: port.path,
                                dir,
                                data: buf[..got.len].to_vec(),
                                orig_len: got.orig_len,
                                fate: None,
                                delay_s: None,
                            },
                        ));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("capture: recv on path {}: {e}", port.path);
                        break;
                    }
                }
            }
        }
        batch.sort_by(|a, b| a.1.t.total_cmp(&b.1.t));
        for (incoming, p) in batch {
            if incoming {
                frames += 1;
            }
            matcher.see(p, incoming);
        }
        let now = if stopping {
            f64::INFINITY
        } else {
            monotonic_now()
        };
        matcher
            .holds
            .clone_from(&shared.holds.lock().expect("capture holds"));
        for p in matcher.release(now) {
            process(p, &mut events);
        }
        if stopping {
            break;
        }
        std::thread::sleep(PACE);
    }
    let kernel_drops = ports.iter().map(|p| p.socket.drops()).sum();
    let bytes = writer.len() as u64;
    let written = writer.written;
    let pcapng = if writer.is_empty() {
        Vec::new()
    } else {
        writer.into_bytes()
    };
    events.push((
        monotonic_now(),
        Event::Capture(CaptureSummary {
            file: if pcapng.is_empty() {
                String::new()
            } else {
                file
            },
            frames,
            written,
            bytes: if pcapng.is_empty() { 0 } else { bytes },
            truncated_at,
            kernel_drops,
            cpu_s: thread_cpu_s(),
            wall_s: monotonic_now() - started,
        }),
    ));
    Captured { events, pcapng }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: f64, dir: Dir, data: &[u8]) -> Pending {
        Pending {
            t,
            realtime_ns: 0,
            path: 0,
            dir,
            data: data.to_vec(),
            orig_len: data.len(),
            fate: None,
            delay_s: None,
        }
    }

    fn fates(m: &mut Matcher, now: f64) -> Vec<(f64, Fate, Option<f64>)> {
        m.release(now)
            .into_iter()
            .map(|p| (p.t, p.fate.unwrap(), p.delay_s))
            .collect()
    }

    #[test]
    fn frames_seen_both_ways_are_delivered_once_at_their_coming_in() {
        let mut m = Matcher::default();
        m.see(frame(1.0, Dir::ToTarget, b"a"), true);
        m.see(frame(1.25, Dir::ToTarget, b"a"), false);
        m.see(frame(1.5, Dir::ToTarget, b"a"), true);
        m.see(frame(1.75, Dir::ToTarget, b"a"), false);
        assert_eq!(
            fates(&mut m, 100.0),
            [
                (1.0, Fate::Delivered, Some(0.25)),
                (1.5, Fate::Delivered, Some(0.25))
            ]
        );
    }

    #[test]
    fn a_frame_never_going_out_is_dropped_and_one_never_coming_in_was_made() {
        let mut m = Matcher::default();
        m.see(frame(1.0, Dir::ToTarget, b"lost"), true);
        m.see(frame(2.0, Dir::ToInitiator, b"rst"), false);
        // The same bytes the other way are not its sighting.
        m.see(frame(2.5, Dir::ToInitiator, b"lost"), false);
        assert!(
            fates(&mut m, 1.0 + HORIZON_S - 0.1).is_empty(),
            "still waiting"
        );
        assert_eq!(
            fates(&mut m, 100.0),
            [
                (1.0, Fate::Dropped, None),
                (2.0, Fate::Made, None),
                (2.5, Fate::Made, None)
            ]
        );
    }

    #[test]
    fn a_frame_read_going_out_before_its_coming_in_is_still_delivered_in_order() {
        let mut m = Matcher::default();
        m.see(frame(1.001, Dir::ToTarget, b"a"), false);
        // The answer to it was read before it came in.
        m.see(frame(1.002, Dir::ToInitiator, b"ack"), true);
        m.see(frame(1.003, Dir::ToInitiator, b"ack"), false);
        m.see(frame(1.0, Dir::ToTarget, b"a"), true);
        let got = fates(&mut m, 100.0);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].0, got[0].1), (1.0, Fate::Delivered));
        assert!((got[0].2.unwrap() - 0.001).abs() < 1e-9);
        assert_eq!(got[1].0, 1.002);
    }

    #[test]
    fn a_held_frame_waits_for_its_late_delivery_while_the_other_way_goes_on() {
        let mut m = Matcher::default();
        m.holds.push(Hold {
            path: Some(0),
            dir: Dir::ToTarget,
            from: 0.9,
            until: None,
        });
        m.see(frame(1.0, Dir::ToTarget, b"write"), true);
        m.see(frame(2.0, Dir::ToInitiator, b"nop-in"), true);
        m.see(frame(2.001, Dir::ToInitiator, b"nop-in"), false);
        // Long past the horizon, the hold still in place: the answer the
        // other way goes, the held write waits.
        let got = fates(&mut m, 30.0);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1), (2.0, Fate::Delivered));
        m.holds[0].until = Some(40.0);
        m.see(frame(40.01, Dir::ToTarget, b"write"), false);
        let got = fates(&mut m, 50.0);
        assert_eq!((got[0].0, got[0].1), (1.0, Fate::Delivered));
        assert!((got[0].2.unwrap() - 39.01).abs() < 1e-9);
        // A held frame that never went out is dropped once the hold ended
        // a horizon ago.
        m.see(frame(41.0, Dir::ToTarget, b"never"), true);
        m.holds.push(Hold {
            path: None,
            dir: Dir::ToTarget,
            from: 40.5,
            until: Some(42.0),
        });
        assert!(fates(&mut m, 41.0 + HORIZON_S + 0.5).is_empty());
        assert_eq!(
            fates(&mut m, 42.0 + HORIZON_S),
            [(41.0, Fate::Dropped, None)]
        );
    }

    #[test]
    fn a_copy_sent_again_is_delivered_and_the_dropped_one_stays_dropped() {
        let mut m = Matcher::default();
        m.see(frame(1.0, Dir::ToTarget, b"rst"), true);
        m.see(frame(1.6, Dir::ToTarget, b"rst"), true);
        m.see(frame(1.601, Dir::ToTarget, b"rst"), false);
        let got = fates(&mut m, 100.0);
        assert_eq!((got[0].0, got[0].1), (1.0, Fate::Dropped));
        assert_eq!((got[1].0, got[1].1), (1.6, Fate::Delivered));
    }

    #[test]
    fn a_frame_waits_long_enough_for_a_window_to_reach_back_to_it() {
        let mut m = Matcher::default();
        m.see(frame(10.0, Dir::ToTarget, b"a"), true);
        m.see(frame(10.001, Dir::ToTarget, b"a"), false);
        assert!(fates(&mut m, 10.0 + CAPTURE_BEFORE_S).is_empty());
        assert_eq!(fates(&mut m, 10.0 + HOLD_S).len(), 1);
    }

    #[test]
    fn windows_span_from_before_the_first_fault_to_after_the_last_ends() {
        let mut w = Windows::default();
        w.fault(true, 10.0);
        w.fault(true, 12.0);
        w.fault(false, 13.0);
        assert!(
            w.contains(8.0) && w.contains(100.0),
            "open while a fault is in place"
        );
        w.fault(false, 20.0);
        assert!(!w.contains(10.0 - CAPTURE_BEFORE_S - 0.1));
        assert!(w.contains(20.0 + CAPTURE_AFTER_S));
        assert!(!w.contains(20.0 + CAPTURE_AFTER_S + 0.1));
    }
}
