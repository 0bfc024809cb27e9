//! `port_down`: a switch port stops forwarding (`port = "target"`, the
//! default: the array's port; or `"initiator"`: the host's), then forwards
//! again. The bridge port is disabled, not its link: the host beside it
//! keeps carrier and sees nothing local, unlike `link_down` (the host's own
//! cable pulled). Every frame in or out of the port vanishes silently: to
//! the initiator it is a blackhole of both directions.

use super::{evidence, Kind, LinkEffect, Reach, Registration};
use crate::history::Effect;
use crate::model::action::{Action, LinkSide};
use crate::model::keys::{Bound, KeySpec};
use crate::model::timing::OutageMode;
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PortDown {
    /// The side the port faces.
    pub port: LinkSide,
}

pub const REGISTRATION: Registration = Registration {
    name: "port_down",
    doc: "A switch port stops forwarding, then forwards again. The bridge port is disabled, not its link: the host beside it keeps carrier and sees nothing local, unlike `link_down`. Every frame in or out of the port vanishes silently: a blackhole of both directions to the initiator.",
    options: &[KeySpec {
        default: "\"target\"",
        bound: Bound::Words(&["target", "initiator"]),
        ..KeySpec::new("port", "string", "the port that stops: the one facing the target (the array's) or the initiator (the host's)")
    }],
    whole_link: Some("a port that stops forwarding cuts both directions: choose it with `port`"),
    parse: |o, _| {
        let hint = "\"target\" (the array's port) or \"initiator\" (the host's)";
        let port = super::link_down::side(o, "port", LinkSide::Target, hint)?;
        Some(PortDown { port }.into())
    },
    needs: &[],
    reach: Reach::Fabric,
    took_effect: |events| {
        evidence::effect(
            events,
            |e| matches!(e, Effect::Port { forwarding: false, state, .. } if state == "disabled"),
        )
    },
};

impl Kind for PortDown {
    fn direction(&self) -> Option<Direction> {
        Some(Direction::Both)
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::SetPort {
                side: self.port,
                forwarding: false,
            },
            Action::SetPort {
                side: self.port,
                forwarding: true,
            },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode::SilentDrop)
    }
    fn parameters(&self) -> String {
        format!("port facing the {}", self.port.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::history::{Effect, Entry, Event};
    use crate::model::action::{Action, LinkSide};
    use crate::model::fault::took_effect;
    use crate::model::{Run, Scenario, TargetKind};

    const HEAD: &str = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
        [initiator]\nnoop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5\n\
        [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n";

    fn parse(fault: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{HEAD}[[fault]]\n{fault}"), "p.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn disables_the_target_port_by_default_and_enables_it_again() {
        let s = parse("kind = \"port_down\"\nstart_s = 3\nduration_s = 15\n").unwrap();
        let steps = crate::plan::steps::plan(&s.faults);
        let actions: Vec<(f64, Action)> =
            steps.iter().map(|s| (s.at_s, s.action.clone())).collect();
        let set = |forwarding| Action::SetPort {
            side: LinkSide::Target,
            forwarding,
        };
        assert_eq!(actions, [(3.0, set(false)), (18.0, set(true))]);
        let s = parse("kind = \"port_down\"\nport = \"initiator\"\nstart_s = 3\nduration_s = 5\n")
            .unwrap();
        assert!(matches!(
            crate::plan::steps::plan(&s.faults)[0].action,
            Action::SetPort {
                side: LinkSide::Initiator,
                forwarding: false
            }
        ));
    }

    #[test]
    fn bad_ports_are_located() {
        let e = parse("kind = \"port_down\"\nport = \"uplink\"\nstart_s = 3\nduration_s = 5\n")
            .unwrap_err();
        assert!(
            e.contains("p.toml:14:8: fault[0].port: unknown port `uplink`"),
            "{e}"
        );
        let e =
            parse("kind = \"port_down\"\ndirection = \"to_target\"\nstart_s = 3\nduration_s = 5\n")
                .unwrap_err();
        assert!(e.contains("fault[0].direction: does not apply"), "{e}");
    }

    /// A silent outage: EIO at I + N + R after the port stops (9 s).
    #[test]
    fn the_oracle_treats_it_as_a_silent_outage() {
        let s = parse("kind = \"port_down\"\nstart_s = 3\nduration_s = 15\n").unwrap();
        let p = crate::oracle::predict_run(&Run {
            scenario: s,
            target: TargetKind::Lio,
        });
        let e = p.first_error_s.expect("an error");
        assert!((e - 9.0).abs() <= 0.5, "{e}");
    }

    #[test]
    fn it_took_effect_only_if_the_port_was_disabled() {
        let port = |forwarding: bool, state: &str| {
            vec![Entry {
                t: 1.0,
                event: Event::Effect {
                    step: 0,
                    effect: Effect::Port {
                        port: "target".into(),
                        forwarding,
                        state: state.into(),
                    },
                },
            }]
        };
        assert!(took_effect("port_down", 0, None, &port(false, "disabled")));
        assert!(!took_effect(
            "port_down",
            0,
            None,
            &port(false, "forwarding")
        ));
        assert!(!took_effect(
            "port_down",
            0,
            None,
            &port(true, "forwarding")
        ));
    }
}
