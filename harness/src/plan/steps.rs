//! Fault steps: what the nemesis does at each instant of a run's timeline,
//! as data (the primitive actions and their undo). Pure.

use crate::history::FaultPhase;
pub use crate::model::action::*;
use crate::model::Fault;

/// One step of the fault timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Seconds from the start of the I/O phase.
    pub at_s: f64,
    /// The fault's index in the file (the history's `step`).
    pub fault: usize,
    pub phase: FaultPhase,
    pub kind: &'static str,
    pub action: Action,
    /// The host it acts on (a fault of the target: host 0, whose reach
    /// holds the target every host shares).
    pub host: u8,
    /// The host's path it acts on (`None`: every path).
    pub path: Option<u8>,
}

/// The timeline of a scenario's faults, in time order: a begin and an end
/// per fault, per pulse for a flap.
pub fn plan(faults: &[Fault]) -> Vec<Step> {
    let mut steps = Vec::new();
    for f in faults {
        let (begin, end) = f.kind.actions();
        for (s, e) in f.pulses() {
            for (at_s, phase, action) in [
                (s, FaultPhase::Begin, begin.clone()),
                (e, FaultPhase::End, end.clone()),
            ] {
                steps.push(Step {
                    at_s,
                    fault: f.index,
                    phase,
                    kind: f.kind.name(),
                    action,
                    host: f.host,
                    path: f.path,
                });
            }
        }
    }
    // Stable: a pulse's end stays before the next begin at the same instant.
    steps.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, Scenario};
    use crate::wire::nft::Rule;
    use crate::wire::tc::{Netem, Qdisc};
    use std::time::Duration;

    fn netem(q: &Qdisc) -> &Netem {
        match q {
            Qdisc::Netem(n) => n,
            other => panic!("expected netem, got {}", other.kind()),
        }
    }

    #[test]
    fn a_blackhole_is_total_netem_loss() {
        let n = netem(&blackhole()).clone();
        assert_eq!(n.loss, 100.0);
        assert_eq!(n.delay, Duration::ZERO);
    }

    #[test]
    fn a_bandwidth_cap_never_panics_outside_the_parser_bounds() {
        let t = tbf_for(u64::MAX);
        assert_eq!((t.burst_bytes, t.limit_bytes), (u32::MAX, u32::MAX));
    }

    const HEAD: &str = "version = 1\nduration_s = 40\n[lane]\ntarget = \"tgt\"\n";

    fn plan_of(faults: &str) -> Vec<Step> {
        let s = Scenario::parse(&format!("{HEAD}{faults}"), "p.toml").unwrap();
        plan(&s.faults)
    }

    #[test]
    fn a_flap_is_one_blackhole_per_pulse() {
        let steps = plan_of(
            "[[fault]]\nkind = \"flap\"\ndirection = \"to_initiator\"\non_s = 2\nperiod_s = 5\nstart_s = 3\nduration_s = 12\n",
        );
        let times: Vec<(f64, FaultPhase)> = steps.iter().map(|s| (s.at_s, s.phase)).collect();
        use FaultPhase::*;
        assert_eq!(
            times,
            vec![
                (3.0, Begin),
                (5.0, End),
                (8.0, Begin),
                (10.0, End),
                (13.0, Begin),
                (15.0, End)
            ]
        );
        assert!(steps.iter().all(|s| s.fault == 0 && s.kind == "flap"));
        match &steps[0].action {
            Action::Shape { direction, qdisc } => {
                assert_eq!(*direction, Direction::ToInitiator);
                assert_eq!(netem(qdisc).loss, 100.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            steps[1].action,
            Action::Clear {
                direction: Direction::ToInitiator
            }
        );
    }

    #[test]
    fn a_last_pulse_is_cut_at_the_fault_end() {
        let steps = plan_of(
            "[[fault]]\nkind = \"flap\"\non_s = 3\nperiod_s = 5\nstart_s = 0\nduration_s = 7\n",
        );
        let ends: Vec<f64> = steps
            .iter()
            .filter(|s| s.phase == FaultPhase::End)
            .map(|s| s.at_s)
            .collect();
        assert_eq!(ends, vec![3.0, 7.0]);
    }

    #[test]
    fn target_stop_and_netem_steps() {
        let steps = plan_of(
            "[[fault]]\nkind = \"target_stop\"\nstart_s = 10\nduration_s = 4\n\
             [[fault]]\nkind = \"netem\"\nloss_pct = 5\ndirection = \"to_target\"\nstart_s = 1\nduration_s = 5\n",
        );
        assert_eq!(steps.len(), 4);
        assert_eq!((steps[0].fault, steps[0].at_s), (1, 1.0));
        match &steps[0].action {
            Action::Shape { direction, qdisc } => {
                assert_eq!(*direction, Direction::ToTarget);
                assert_eq!(netem(qdisc).loss, 5.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(steps[2].action, Action::StopTarget);
        assert_eq!(
            (steps[3].action.clone(), steps[3].at_s),
            (Action::StartTarget, 14.0)
        );
    }

    #[test]
    fn reset_mtu_and_tbf_steps() {
        let steps = plan_of(
            "[[fault]]\nkind = \"reset\"\non_s = 1\nperiod_s = 4\nstart_s = 1\nduration_s = 6\n\
             [[fault]]\nkind = \"tbf\"\nrate_kbit = 8000\nstart_s = 20\nduration_s = 5\n",
        );
        let actions: Vec<(f64, Action)> =
            steps.iter().map(|s| (s.at_s, s.action.clone())).collect();
        let reset = Action::Firewall { rule: Rule::Reset };
        assert_eq!(
            actions[..4],
            [
                (1.0, reset.clone()),
                (2.0, Action::ClearFirewall),
                (5.0, reset),
                (6.0, Action::ClearFirewall)
            ]
        );
        match &actions[4].1 {
            Action::Shape {
                direction,
                qdisc: Qdisc::Tbf(t),
            } => {
                assert_eq!(*direction, Direction::Both);
                assert_eq!(t.rate_bytes_per_s, 1_000_000);
                assert!(t.burst_bytes >= 64 * 1024 && t.limit_bytes > t.burst_bytes);
            }
            other => panic!("{other:?}"),
        }
        let s = Scenario::parse(
            &format!("{}mtu = 9000\n[[fault]]\nkind = \"mtu\"\nmtu = 1500\nstart_s = 1\nduration_s = 5\n", HEAD),
            "p.toml",
        )
        .unwrap();
        assert_eq!(
            plan(&s.faults)[0].action,
            Action::SetPortMtu { mtu: Some(1500) }
        );
    }

    #[test]
    fn target_side_faults_begin_and_undo() {
        let steps = plan_of(
            "[[fault]]\nkind = \"portal_remove\"\nstart_s = 1\nduration_s = 2\n\
             [[fault]]\nkind = \"access_revoke\"\nstart_s = 5\nduration_s = 3\n\
             [[fault]]\nkind = \"slow_store\"\nio_delay_ms = 1500\nstart_s = 10\nduration_s = 4\n",
        );
        let got: Vec<(f64, &str, Action)> = steps
            .iter()
            .map(|s| (s.at_s, s.kind, s.action.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1.0, "portal_remove", Action::SetPortal { present: false }),
                (3.0, "portal_remove", Action::SetPortal { present: true }),
                (5.0, "access_revoke", Action::SetAccess { allowed: false }),
                (8.0, "access_revoke", Action::SetAccess { allowed: true }),
                (10.0, "slow_store", Action::SetStoreDelay { ms: 1500.0 }),
                (14.0, "slow_store", Action::SetStoreDelay { ms: 0.0 }),
            ]
        );
    }
}
