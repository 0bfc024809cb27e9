//! `link_down`: the cable pulled. One veth end (`end = "initiator"`, the
//! default, or `"target"`) is set administratively down for the fault's
//! duration, then up again: carrier loss on both ends, not a silent drop.
//!
//! Measured in the lab (kernel 6.1, open-iscsi 2.1.8, I = N = 2, R = 5; 18
//! outages of 3-17 s on both ends):
//! - iscsi_tcp ignores carrier: no early conn error on either end; the
//!   NOP-Out timeout detects it, I + N after the last PDU (conn error 1022),
//!   like a blackhole; EIO at detection + R (+0.03-0.16 s).
//! - Initiator end down: its connected route goes, so every reconnect fails
//!   at once (ENETUNREACH); iscsid retries every 3 s (3.1-3.3 s).
//! - Target end down: the route stays (linkdown), a connect waits for ARP
//!   (1 s, then 3-4 s) and fails with EHOSTUNREACH, then iscsid waits 3 s:
//!   about 7 s per attempt; an attempt in flight when the link comes back
//!   succeeds.
//! - A short pull (under the detection time) stalls the I/O in flight and
//!   it completes 0.1-0.4 s after the link is up: no error.

use super::{evidence, Kind, LinkEffect, Reach, Registration};
use crate::history::Effect;
use crate::model::action::{Action, LinkSide};
use crate::model::keys::{Bound, KeySpec};
use crate::model::timing::{Detection, OutageMode, Reconnect, Restore, Resume};
use crate::model::{Direction, TargetKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkDown {
    pub end: LinkSide,
}

/// A reconnect with the target's end down: ARP gives up (3-4 s), then
/// iscsid waits 3 s.
pub const TARGET_END_RETRY_S: f64 = 7.0;
/// A reconnect with the initiator's end down fails at once (no route);
/// iscsid waits 3 s.
pub const INITIATOR_END_RETRY_S: f64 = 3.0;

pub const REGISTRATION: Registration = Registration {
    name: "link_down",
    doc: "The cable pulled: one veth end is set administratively down for the fault's duration, then up again. Carrier loss on both ends, not a silent drop; iscsi_tcp ignores carrier, so the NOP-Out timeout detects it, and reconnects fail until the link is up.",
    options: &[KeySpec {
        default: "\"initiator\"",
        bound: Bound::Words(&["initiator", "target"]),
        ..KeySpec::new("end", "string", "the end of the link set down: the initiator's (its route goes, reconnects fail at once) or the target's (reconnects wait for ARP)")
    }],
    whole_link: Some("a pulled cable cuts both directions: choose the end with `end`"),
    parse: |o, _| {
        let hint = "\"initiator\" (the host's end) or \"target\"";
        let end = side(o, "end", LinkSide::Initiator, hint)?;
        Some(LinkDown { end }.into())
    },
    needs: &[],
    reach: Reach::Fabric,
    took_effect: |events| {
        evidence::effect(
            events,
            |e| matches!(e, Effect::Link { up: false, oper, .. } if oper != "up"),
        )
    },
};

/// Option `key` naming a side of the link (`"initiator"` or `"target"`),
/// `default` when absent; an unknown value is a problem in `o`.
pub(super) fn side(
    o: &mut super::Options<'_>,
    key: &str,
    default: LinkSide,
    hint: &str,
) -> Option<LinkSide> {
    match o.string(key, hint).ok()?.as_deref() {
        None => Some(default),
        Some("initiator") => Some(LinkSide::Initiator),
        Some("target") => Some(LinkSide::Target),
        Some(other) => {
            o.err(
                o.span(key),
                key,
                format!("unknown {key} `{other}`"),
                Some(hint.into()),
            );
            None
        }
    }
}

impl Kind for LinkDown {
    fn direction(&self) -> Option<Direction> {
        Some(Direction::Both)
    }
    fn actions(&self) -> (Action, Action) {
        (
            Action::SetLink {
                end: self.end,
                up: false,
            },
            Action::SetLink {
                end: self.end,
                up: true,
            },
        )
    }
    fn link_effect(&self, _: TargetKind) -> LinkEffect {
        LinkEffect::Outage(OutageMode {
            detection: Detection::Silent,
            resume: Resume::AtEnd,
            reconnect: Reconnect::Every(match self.end {
                LinkSide::Initiator => INITIATOR_END_RETRY_S,
                LinkSide::Target => TARGET_END_RETRY_S,
            }),
            restore: Restore::Nothing,
        })
    }
    fn parameters(&self) -> String {
        format!("{} end", self.end.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::history::{Effect, Entry, Event};
    use crate::model::action::{Action, LinkSide};
    use crate::model::fault::{took_effect, FaultKind};
    use crate::model::{Run, Scenario, TargetKind};

    const HEAD: &str = "version = 1\nduration_s = 30\n[lane]\ntarget = \"tgt\"\n\
        [initiator]\nnoop_out_interval = 2\nnoop_out_timeout = 2\nreplacement_timeout = 5\n\
        [[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n";

    fn parse(fault: &str) -> Result<Scenario, String> {
        Scenario::parse(&format!("{HEAD}[[fault]]\n{fault}"), "c.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn pulls_the_initiator_end_by_default_and_plugs_it_back() {
        let s = parse("kind = \"link_down\"\nstart_s = 3\nduration_s = 15\n").unwrap();
        let FaultKind::LinkDown(k) = s.faults[0].kind else {
            panic!("{:?}", s.faults[0].kind)
        };
        assert_eq!(k.end, LinkSide::Initiator);
        let steps = crate::plan::steps::plan(&s.faults);
        let actions: Vec<(f64, Action)> =
            steps.iter().map(|s| (s.at_s, s.action.clone())).collect();
        assert_eq!(
            actions,
            [
                (
                    3.0,
                    Action::SetLink {
                        end: LinkSide::Initiator,
                        up: false
                    }
                ),
                (
                    18.0,
                    Action::SetLink {
                        end: LinkSide::Initiator,
                        up: true
                    }
                ),
            ]
        );
    }

    #[test]
    fn bad_ends_and_directions_are_located() {
        let e = parse("kind = \"link_down\"\nend = \"switch\"\nstart_s = 3\nduration_s = 5\n")
            .unwrap_err();
        assert!(
            e.contains("c.toml:14:7: fault[0].end: unknown end `switch`"),
            "{e}"
        );
        let e =
            parse("kind = \"link_down\"\ndirection = \"to_target\"\nstart_s = 3\nduration_s = 5\n")
                .unwrap_err();
        assert!(e.contains("fault[0].direction: does not apply"), "{e}");
        let e = parse("kind = \"link_down\"\nend = 1\nstart_s = 3\nduration_s = 5\n").unwrap_err();
        assert!(e.contains("fault[0].end: invalid type"), "{e}");
    }

    /// The measured figures: EIO at I + N + R after the pull (9.0-9.4 s
    /// measured); a 3 s pull is shorter than detection: no error.
    #[test]
    fn the_oracle_expects_eio_after_detection_and_replacement() {
        for end in ["initiator", "target"] {
            let s = parse(&format!(
                "kind = \"link_down\"\nend = \"{end}\"\nstart_s = 3\nduration_s = 15\n"
            ))
            .unwrap();
            let p = crate::oracle::predict_run(&Run {
                scenario: s,
                target: TargetKind::Tgt,
            });
            let e = p.first_error_s.expect("an error");
            assert!((e - 9.0).abs() <= 0.5, "{end}: {e}");
            assert!(!p.borderline, "{p:?}");
        }
        let s = parse("kind = \"link_down\"\nstart_s = 3\nduration_s = 2\n").unwrap();
        let p = crate::oracle::predict_run(&Run {
            scenario: s,
            target: TargetKind::Lio,
        });
        assert_eq!(p.first_error_s, None, "{p:?}");
    }

    #[test]
    fn it_took_effect_only_if_the_end_went_down() {
        let link = |up: bool, oper: &str| {
            vec![Entry {
                t: 1.0,
                event: Event::Effect {
                    step: 0,
                    effect: Effect::Link {
                        end: "initiator".into(),
                        up,
                        oper: oper.into(),
                    },
                },
            }]
        };
        assert!(took_effect("link_down", 0, None, &link(false, "down")));
        assert!(!took_effect("link_down", 0, None, &link(false, "up")));
        assert!(!took_effect("link_down", 0, None, &link(true, "up")));
    }
}
