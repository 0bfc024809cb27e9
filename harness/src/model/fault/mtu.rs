//! `mtu`: jumbo frames on the hosts, not on the switch: the switch's ports
//! get the smaller `mtu` and drop every larger frame as it comes in,
//! silently, one at a time, both ways, while both hosts keep the lane's
//! larger MTU (so TCP keeps sending large segments, on new connections
//! too); small ones (login, NOP-Out) pass. The lane's MTU must be larger
//! (checked by the parser), and a jumbo lane's hosts cut wire-sized frames
//! themselves ([`crate::env::lane::Lane::set_mtu`]), so no 64 KB
//! super-packet slips past the check. The ports' rx_dropped counters prove
//! the frames vanished.

use super::{Kind, LinkEffect, Reach, Registration};
use crate::history::{Effect, Event};
use crate::model::action::Action;
use crate::model::keys::{Bound, KeySpec, REQUIRED};
use crate::model::{Direction, TargetKind, MTU_RANGE};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mtu {
    pub mtu: u32,
}

pub const REGISTRATION: Registration = Registration {
    name: "mtu",
    doc: "Jumbo frames on the hosts, not on the switch: the switch's ports get the smaller `mtu` and drop every larger frame, silently, both ways, while both hosts keep the lane's MTU. Small packets (login, NOP-Out) pass. Needs `[lane] mtu` larger than the fault's.",
    options: &[KeySpec {
        unit: "bytes",
        default: REQUIRED,
        bound: Bound::Int {
            min: *MTU_RANGE.start(),
            max: *MTU_RANGE.end(),
        },
        ..KeySpec::new("mtu", "integer", "the MTU of the hop that drops larger frames; below [lane] mtu")
    }],
    whole_link: Some("a hop's MTU applies to both directions"),
    parse: |o, _| {
        let hint = "bytes, e.g. 1500";
        match o.integer("mtu", hint).ok()? {
            None => {
                o.missing(
                    "mtu",
                    "add `mtu = 1500`: the MTU of the hop that drops larger frames",
                );
                None
            }
            Some(v) if MTU_RANGE.contains(&v) => Some(Mtu { mtu: v as u32 }.into()),
            Some(v) => {
                o.err(
                    o.span("mtu"),
                    "mtu",
                    format!(
                        "must be from {} to {}, got {v}",
                        MTU_RANGE.start(),
                        MTU_RANGE.end()
                    ),
                    Some(hint.into()),
                );
                None
            }
        }
    },
    needs: &[],
    reach: Reach::Fabric,
    took_effect: ports_dropped,
};

/// The switch's ports dropped frames between the fault's start and end.
fn ports_dropped(events: &[&Event]) -> bool {
    let counts: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Effect {
                effect: Effect::PortMtu { rx_dropped, .. },
                ..
            } => Some(rx_dropped.iter().sum()),
            _ => None,
        })
        .collect();
    matches!((counts.first(), counts.last()), (Some(a), Some(b)) if b > a)
}

impl Kind for Mtu {
    fn direction(&self) -> Option<Direction> {
        Some(Direction::Both)
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::SetPortMtu {
                mtu: Some(self.mtu),
            },
            Action::SetPortMtu { mtu: None },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Oversize { mtu: self.mtu }
    }
    fn parameters(&self) -> String {
        format!("MTU {}", self.mtu)
    }
}

#[cfg(test)]
mod tests {
    use crate::history::{Effect, Entry, Event};
    use crate::model::fault::took_effect;

    fn port_mtu(t: f64, mtu: u32, rx_dropped: [u64; 2]) -> Entry {
        Entry {
            t,
            event: Event::Effect {
                step: 0,
                effect: Effect::PortMtu { mtu, rx_dropped },
            },
        }
    }

    #[test]
    fn it_took_effect_only_if_the_ports_dropped_frames_during_it() {
        let during = vec![port_mtu(1.0, 1500, [3, 4]), port_mtu(9.0, 9000, [3, 80])];
        assert!(took_effect("mtu", 0, None, &during));
        let nothing = vec![port_mtu(1.0, 1500, [3, 4]), port_mtu(9.0, 9000, [3, 4])];
        assert!(!took_effect("mtu", 0, None, &nothing));
        assert!(!took_effect("mtu", 0, None, &during[..1]));
        assert!(
            !took_effect("mtu", 1, None, &during),
            "another step's evidence"
        );
    }
}
