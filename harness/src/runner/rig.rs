//! A run's rig: everything it builds, as data. One target (and its store)
//! serves a list of hosts; each host is a list of paths (a lane: cable,
//! switch, subnet; the nemesis's hold on that switch; a node record and a
//! session), and a host of several paths has a multipath map over its
//! sessions' disks. Path 0 is `paths[0]` like any other: its lane owns the
//! target's namespace only because it is made first.
//!
//! Invariant: [`Rig::teardown`] removes whatever was made, in reverse order
//! of creation, whatever happened before (error, hung probe, Ctrl-C), and
//! then walks the run's ledger for what it missed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use guest_probes::monotonic_now;

use crate::env::capture::{Capture, Captured};
use crate::env::initiator::{Node, Session};
use crate::env::lane::Lane;
use crate::env::monitor::Ours;
use crate::env::multipath::MultipathMap;
use crate::env::target::slow_store::SlowStore;
use crate::env::target::{InitiatorAllow, LunSpec, Target};
use crate::history::{Event, FaultPhase, History};
use crate::ledger::Ledger;
use crate::model::{CaptureMode, Initiator};
use crate::nemesis::{self, Action, PathReach, Reach, Step, Switch};
use crate::plan::PlannedRun;

/// Everything a run created, torn down in reverse order of creation.
pub struct Rig {
    run_id: String,
    /// The lane number the suite gave the run (names, subnets, ledger).
    lane: u8,
    pub hosts: Vec<HostRig>,
    /// The LUN's delayable store, when a `slow_store` fault needs it.
    store: Option<SlowStore>,
    target: Option<Target>,
    /// The undo steps of faults in place now (begun, not yet ended), in
    /// the order they began: the wind-down carries them out, newest first.
    pub in_place: Vec<Step>,
    /// The switch's capture of every path, from before the first login to
    /// after the last logout.
    capture: Option<Capture>,
    /// What the capture kept, once the teardown finished it.
    pub captured: Option<Captured>,
    /// The target's persistent-reservation state file, once reservations
    /// were used (removed after the target).
    pr_state_file: Option<PathBuf>,
}

/// One initiator host: its paths, and the map over them when there are
/// several.
#[derive(Default)]
pub struct HostRig {
    pub paths: Vec<PathRig>,
    pub map: Option<MultipathMap>,
}

/// One path: its lane, the nemesis's hold on its switch, the node record
/// and the session over it.
pub struct PathRig {
    pub lane: Lane,
    pub switch: Option<Switch>,
    /// Another host's iface record (its initiator name).
    pub iface: Option<String>,
    pub node: Option<Node>,
    pub session: Option<Session>,
}

/// What a host's probe does its I/O on: a session's disk (checked to be
/// that session's by the probe), or a multipath map (checked against the
/// sessions' disks when it was made).
pub enum ProbeDevice {
    Session { disk: PathBuf, session: String },
    Map(PathBuf),
}

impl Rig {
    /// An empty rig of run `run_id` on lane `lane`.
    pub fn new(run_id: &str, lane: u8) -> Rig {
        Rig {
            run_id: run_id.to_string(),
            lane,
            hosts: Vec::new(),
            store: None,
            target: None,
            in_place: Vec::new(),
            capture: None,
            captured: None,
            pr_state_file: None,
        }
    }

    /// Writes down the file the target will keep reservation state in
    /// (LIO), before the first reservation command makes it.
    pub fn record_pr_state_file(&mut self) -> Result<()> {
        let Some(path) = self.target.as_ref().and_then(Target::pr_state_file) else {
            return Ok(());
        };
        if path.exists() {
            anyhow::bail!(
                "{} exists already: another LUN with our unit serial? Not touched",
                path.display()
            );
        }
        self.ledger()
            .record(crate::ledger::Object::PrStateFile { path: path.clone() })?;
        self.pr_state_file = Some(path);
        Ok(())
    }

    /// The ledger everything of this rig is written in.
    pub fn ledger(&self) -> Ledger {
        Ledger::of_run(&self.run_id).lane(self.lane)
    }

    /// An empty work folder for a probe's filesystem, with the mount on it
    /// written down before the probe makes it (so a killed run's mount is
    /// detached by the cleanup, before its folder is removed).
    pub fn mount_point(&self) -> Result<crate::ledger::WorkFolder> {
        let ledger = self.ledger();
        let folder = ledger.work_folder(&self.run_id, self.lane, "mnt")?;
        ledger.record(crate::ledger::Object::Mount {
            path: folder.path().to_path_buf(),
        })?;
        Ok(folder)
    }

    /// Builds the rig of `planned` into `self` (what was made stays in
    /// `self` on error, for the teardown).
    pub async fn create(&mut self, planned: &PlannedRun) -> Result<()> {
        let scenario = &planned.run.scenario;
        if scenario.capture.mode != CaptureMode::Off {
            self.capture = Some(Capture::start(scenario.capture, planned.capture_file())?);
        }
        let mut host = HostRig::default();
        let mut first = Lane::create(&self.run_id, self.lane)
            .await
            .context("creating the lane")?;
        set_mtu(&mut first, scenario.lane.mtu, 0).await?;
        host.paths.push(PathRig::new(first));
        self.hosts.push(host);
        let first = &self.hosts[0].paths[0].lane;
        let spec = LunSpec {
            size_bytes: scenario.lane.lun_size_mib * 1024 * 1024,
            allow: InitiatorAllow::Address(first.initiator_addr()),
        };
        if scenario.needs_slow_store() {
            self.store = Some(SlowStore::create(first, spec.size_bytes).await?);
        }
        let store = self.store.as_ref().map(|s| s.device().to_path_buf());
        let target = Target::setup_on(planned.run.target, first, spec, store.as_deref()).await?;
        allow_digests(&target, &scenario.initiator).await?;
        self.target = Some(target);
        // The scenario's login wait (bounded by the parser), and slack for
        // iscsiadm itself.
        let login_bound = Duration::from_secs(scenario.initiator.login_wait_s() + 15);
        for p in 0..scenario.lane.paths {
            self.create_path(planned, 0, p, login_bound).await?;
        }
        // A further host: one path (its own switch and subnet), logging in
        // under an initiator name of its own.
        for h in 1..scenario.hosts.len() {
            self.hosts.push(HostRig::default());
            self.create_path(planned, h, 0, login_bound).await?;
        }
        if scenario.lane.paths > 1 {
            let disks = self.hosts[0]
                .paths
                .iter()
                .map(|p| Ok(p.session.as_ref().context("no session")?.disk.clone()))
                .collect::<Result<Vec<_>>>()?;
            let ledger = self.ledger();
            let mp = scenario.multipath.clone().unwrap_or_default();
            self.hosts[0].map = Some(
                MultipathMap::create(&ledger, &self.run_id, self.lane, &mp, &disks)
                    .await
                    .context("the multipath map")?,
            );
        }
        Ok(())
    }

    /// Path `p` of host `h`: its lane (host 0's path 0 exists already; a
    /// further one has its own switch and subnet, its target end in path
    /// 0's namespace, a portal of the one target), the lane's MTU, the
    /// switch, the firewall rules its steps will use tried once, the node
    /// record (another host's through an iface record of its initiator
    /// name) and the login. The lane's path number (names, subnet, the
    /// capture's path) counts every host's paths.
    async fn create_path(
        &mut self,
        planned: &PlannedRun,
        h: usize,
        p: u8,
        login_bound: Duration,
    ) -> Result<()> {
        let scenario = &planned.run.scenario;
        let wire = scenario.wire_path(h as u8, p);
        let what = |s: &str| match (h, p) {
            (0, 0) => s.to_string(),
            (0, p) => format!("{s} on path {p}"),
            (h, _) => format!("{s} of host {h}"),
        };
        let ledger = self.ledger();
        let target = self.target.as_mut().context("no target")?;
        let portal = if wire == 0 {
            target.portal().addr
        } else {
            let mut lane = Lane::create_path(&self.hosts[0].paths[0].lane, wire)
                .await
                .with_context(|| what("creating the path"))?;
            set_mtu(&mut lane, scenario.lane.mtu, wire).await?;
            self.hosts[h].paths.push(PathRig::new(lane));
            let lane = &self.hosts[h].paths[p as usize].lane;
            target
                .add_portal(lane)
                .await
                .with_context(|| what("the target's portal"))?
        };
        let iface = match h {
            0 => None,
            h => {
                let h = h as u8;
                let initiator = crate::model::names::host_initiator_iqn(&self.run_id, self.lane, h);
                target
                    .admit(&initiator)
                    .await
                    .with_context(|| what("admitting the initiator"))?;
                let name = crate::model::names::iface_name(&self.run_id, self.lane, h);
                crate::env::initiator::host_iface(&ledger, &name, &initiator).await?;
                Some(name)
            }
        };
        let iqn = target.portal().iqn.clone();
        let path = &mut self.hosts[h].paths[p as usize];
        path.iface.clone_from(&iface);
        if scenario
            .faults
            .iter()
            .any(|f| f.kind.copies_at_send() && f.path.is_none_or(|want| want == p))
        {
            path.lane
                .copy_at_send()
                .with_context(|| what("copies at send"))?;
        }
        if let Some(capture) = &self.capture {
            capture
                .add_path(wire, &path.lane)
                .with_context(|| what("capturing the switch's ports"))?;
        }
        let switch = path.switch.insert(Switch::new(&path.lane, portal)?);
        let mut rules = Vec::new();
        for step in planned.steps.iter().filter(|s| addresses(s, h, p)) {
            if let Action::Firewall { rule } = &step.action {
                if !rules.contains(rule) {
                    rules.push(*rule);
                }
            }
        }
        for rule in rules {
            switch
                .firewall()
                .warm_up(rule)
                .context("trying the firewall rule before the run")?;
        }
        let settings = scenario.initiator.iscsiadm_settings();
        let node = Node::create(
            path.lane.ledger(),
            &iqn,
            portal,
            iface.as_deref(),
            &settings,
        )
        .await?;
        let node = path.node.insert(node);
        path.session = Some(
            node.login(login_bound)
                .await
                .with_context(|| what("logging in"))?,
        );
        Ok(())
    }

    /// What `step` reaches: the target, the store, and the paths of its host
    /// it addresses.
    pub fn reach(&mut self, step: &Step) -> Reach<'_> {
        let paths = match self.hosts.get_mut(usize::from(step.host)) {
            Some(host) => host
                .paths
                .iter_mut()
                .enumerate()
                .filter(|(k, _)| step.path.is_none_or(|want| usize::from(want) == *k))
                .filter_map(|(k, p)| {
                    let PathRig { lane, switch, .. } = p;
                    switch.as_mut().map(|switch| PathReach {
                        path: k as u8,
                        lane: &*lane,
                        switch,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        Reach {
            target: self.target.as_mut(),
            store: self.store.as_mut(),
            paths,
        }
    }

    /// Carries out `step` through the nemesis; its evidence goes into
    /// `history` whether it succeeded or not.
    pub async fn apply(&mut self, step: &Step, history: &mut History) -> Result<()> {
        let mut evidence = Vec::new();
        let result = nemesis::apply(self.reach(step), step, &mut evidence).await;
        if let Some(capture) = &self.capture {
            let begin = step.phase == FaultPhase::Begin;
            capture.fault(begin);
            if let Some(direction) = step.action.holds() {
                for dir in direction.dirs() {
                    capture.hold(step.path, dir, begin);
                }
            }
        }
        for (t, event) in evidence {
            history.push(t, event);
        }
        result
    }

    /// Every path of every host, with its host and path number.
    pub fn paths(&self) -> impl Iterator<Item = (usize, u8, &PathRig)> {
        self.hosts.iter().enumerate().flat_map(|(h, host)| {
            host.paths
                .iter()
                .enumerate()
                .map(move |(p, path)| (h, p as u8, path))
        })
    }

    /// What the kernel's lines of this run may name: every session's
    /// names, and its host's map (`dm-N`).
    pub fn kernel_names(&self) -> Vec<Ours> {
        let mut all = Vec::new();
        for host in &self.hosts {
            let maps: Vec<String> = host
                .map
                .iter()
                .filter_map(|m| std::fs::canonicalize(&m.device).ok())
                .filter_map(|d| Some(d.file_name()?.to_string_lossy().into_owned()))
                .collect();
            for p in &host.paths {
                if let (Some(s), Some(n)) = (&p.session, &p.node) {
                    let mut ours = s.kernel_names(n);
                    ours.maps.clone_from(&maps);
                    all.push(ours);
                }
            }
        }
        all
    }

    /// Records the timers the kernel uses for the run's sessions now: path
    /// 0's keys as they are, a further path's prefixed `path<N>.`, a
    /// further host's `host<N>.`.
    pub fn settings_now(&self, history: &mut History, when: &str) {
        let mut values = std::collections::BTreeMap::new();
        for (h, p, path) in self.paths() {
            if let Some(session) = &path.session {
                for (key, v) in session.effective_settings() {
                    let key = match (h, p) {
                        (0, 0) => key,
                        (0, p) => format!("path{p}.{key}"),
                        (h, _) => format!("host{h}.{key}"),
                    };
                    values.insert(key, v);
                }
            }
        }
        history.push(
            monotonic_now(),
            Event::Settings {
                when: when.to_string(),
                values,
            },
        );
    }

    /// Removes everything, in reverse order, then walks the run's ledger;
    /// reports the first failure but always tries every step.
    pub async fn teardown(&mut self) -> Result<()> {
        let mut first_error: Option<anyhow::Error> = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                tracing::warn!("teardown: {e:#}");
                first_error.get_or_insert(e);
            }
        };
        for host in &mut self.hosts {
            for path in &mut host.paths {
                if let Some(mut switch) = path.switch.take() {
                    note(switch.clear_all());
                }
            }
        }
        for host in &mut self.hosts {
            // The map before its paths' sessions.
            if let Some(mut map) = host.map.take() {
                note(map.teardown().await);
            }
            for path in host.paths.iter_mut().rev() {
                path.session = None;
                if let Some(node) = path.node.take() {
                    note(node.logout().await);
                    note(node.delete().await);
                }
                // After the record that names it.
                if let Some(iface) = path.iface.take() {
                    note(crate::sys::iscsi::delete_iface(&iface).await);
                }
            }
        }
        // After the logouts (their PDUs are in it), before the lanes.
        if let Some(capture) = self.capture.take() {
            match capture.finish().await {
                Ok(captured) => self.captured = Some(captured),
                Err(e) => note(Err(e.context("finishing the capture"))),
            }
        }
        if let Some(mut target) = self.target.take() {
            note(target.teardown().await);
        }
        // After the target let go of it, before the lane.
        if let Some(mut store) = self.store.take() {
            note(store.teardown().await);
        }
        if let Some(path) = self.pr_state_file.take() {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => note(Err(
                    anyhow::Error::new(e).context(format!("removing {}", path.display())),
                )),
                _ => {}
            }
        }
        // Further paths before the lane whose namespace they share.
        while let Some(mut host) = self.hosts.pop() {
            while let Some(mut path) = host.paths.pop() {
                note(path.lane.destroy().await);
            }
        }
        // The ledger's unwinding: whatever the steps above missed (or could not
        // reach after an error) is removed here, newest first.
        let removal = self.ledger().unwind().await;
        for removed in &removal.removed {
            tracing::warn!("teardown: {removed} was still there; removed through the ledger");
        }
        if !removal.is_clean() {
            note(Err(anyhow::anyhow!(
                "left behind: {}",
                removal.failed.join("; ")
            )));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl PathRig {
    fn new(lane: Lane) -> PathRig {
        PathRig {
            lane,
            switch: None,
            iface: None,
            node: None,
            session: None,
        }
    }
}

impl HostRig {
    /// What this host's probe does its I/O on: the map over its paths, or
    /// its one session's disk.
    pub fn probe_device(&self) -> Result<ProbeDevice> {
        if let Some(map) = &self.map {
            return Ok(ProbeDevice::Map(map.device.clone()));
        }
        let session = self.first_session()?;
        Ok(ProbeDevice::Session {
            disk: session.disk.clone(),
            session: session.name.clone(),
        })
    }

    /// The session of the host's first path (its only one unless the lane
    /// has several): its disk is the host's own SCSI disk of the LUN.
    pub fn first_session(&self) -> Result<&Session> {
        self.paths
            .first()
            .and_then(|p| p.session.as_ref())
            .context("no session")
    }

    /// Each path's (number, session sysfs folder, disk `major:minor`), for
    /// the path monitor.
    pub fn path_devices(&self) -> Vec<(u8, PathBuf, String)> {
        self.paths
            .iter()
            .enumerate()
            .filter_map(|(k, p)| p.session.as_ref().map(|s| (k as u8, s)))
            .map(|(k, s)| {
                let dev = s
                    .disk
                    .file_name()
                    .and_then(|d| {
                        std::fs::read_to_string(Path::new("/sys/block").join(d).join("dev")).ok()
                    })
                    .map(|t| t.trim().to_string())
                    .unwrap_or_default();
                (k, s.sysfs.clone(), dev)
            })
            .collect()
    }

    /// Logs every path's session out (the wind-down of a probe blocked in
    /// the kernel: a logout fails the queued I/O). Bounded by `deadline`
    /// in all.
    pub async fn logout_all(&self, deadline: Duration) -> Option<String> {
        let nodes: Vec<Node> = self.paths.iter().filter_map(|p| p.node.clone()).collect();
        if nodes.is_empty() {
            return Some("no node record to log out".to_string());
        }
        let all = async {
            let mut problems = Vec::new();
            for node in nodes {
                if let Err(e) = node.logout().await {
                    problems.push(format!("{e:#}"));
                }
            }
            problems
        };
        match tokio::time::timeout(deadline, all).await {
            Ok(problems) if problems.is_empty() => None,
            Ok(problems) => Some(problems.join("; ")),
            Err(_) => Some(format!("the logout took over {} s", deadline.as_secs())),
        }
    }
}

/// A new lane's MTU, when the scenario sets one.
async fn set_mtu(lane: &mut Lane, mtu: Option<u32>, p: u8) -> Result<()> {
    let Some(mtu) = mtu else {
        return Ok(());
    };
    lane.set_mtu(mtu)
        .await
        .with_context(|| format!("setting path {p}'s MTU to {mtu}"))
}

/// Whether `step` acts on path `p` of host `h`.
fn addresses(step: &Step, h: usize, p: u8) -> bool {
    usize::from(step.host) == h && step.path.is_none_or(|want| want == p)
}

/// tgt's targets refuse digests by default (HeaderDigest/DataDigest
/// "None"), so an initiator asking only for CRC32C could not log in: allow
/// CRC32C on the target when the scenario's initiator asks for it.
/// (The tgtadm call lives in `target::tgt`.)
async fn allow_digests(target: &Target, initiator: &Initiator) -> Result<()> {
    for (key, name) in [
        ("node.conn[0].iscsi.HeaderDigest", "HeaderDigest"),
        ("node.conn[0].iscsi.DataDigest", "DataDigest"),
    ] {
        let wants = initiator
            .extra
            .get(key)
            .is_some_and(|v| v.to_ascii_uppercase().contains("CRC32C"));
        if !wants {
            continue;
        }
        // LIO's default already lists CRC32C.
        if let Target::Tgt(t) = target {
            t.allow_crc32c(name)
                .await
                .with_context(|| format!("allowing {name} CRC32C on tgt"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(host: u8, path: Option<u8>) -> Step {
        Step {
            at_s: 0.0,
            fault: 0,
            phase: FaultPhase::Begin,
            kind: "blackhole",
            action: Action::ClearFirewall,
            host,
            path,
        }
    }

    #[test]
    fn a_step_addresses_its_host_and_path_or_every_path() {
        assert!(addresses(&step(0, None), 0, 0));
        assert!(addresses(&step(0, None), 0, 3));
        assert!(addresses(&step(0, Some(1)), 0, 1));
        assert!(!addresses(&step(0, Some(1)), 0, 0));
        assert!(!addresses(&step(1, None), 0, 0));
    }
}
