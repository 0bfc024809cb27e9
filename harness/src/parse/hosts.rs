//! `[[host]]`: the initiator hosts of a run (one by default), and the
//! `host = N` of a probe or a fault checked against them.

use toml::Spanned;

use super::diag::shorten;
use super::raw::{RawFencing, RawHost};
use super::schema::MAX_NAME_LEN;
use super::Ctx;
use crate::model::{FenceTrigger, Fencing, Host, MAX_HOSTS};

pub(super) fn build_hosts(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<RawHost>],
    lane_paths: Option<u8>,
) -> Option<Vec<Host>> {
    if raw.is_empty() {
        return Some(vec![Host {
            name: "host0".into(),
        }]);
    }
    if raw.len() > MAX_HOSTS {
        ctx.err(
            raw[MAX_HOSTS].span(),
            &format!("host[{MAX_HOSTS}]"),
            format!("{} hosts: a run has at most {MAX_HOSTS}", raw.len()),
            Some("two hosts sharing one disk is what a cluster scenario needs".into()),
        );
        return None;
    }
    if raw.len() > 1 && lane_paths.is_some_and(|p| p > 1) {
        ctx.err(
            raw[1].span(),
            "host[1]",
            "several hosts on a lane of several paths are not modelled yet".into(),
            Some("use one path per host ([lane] paths = 1), or one host".into()),
        );
        return None;
    }
    let mut ok = true;
    let mut hosts: Vec<Host> = Vec::new();
    for (i, h) in raw.iter().enumerate() {
        let name = match &h.get_ref().name {
            None => format!("host{i}"),
            Some(n) => {
                let name = n.get_ref().clone();
                let field = format!("host[{i}].name");
                if name.is_empty()
                    || name.chars().count() > MAX_NAME_LEN
                    || name.chars().any(char::is_control)
                {
                    ctx.err(
                        n.span(),
                        &field,
                        format!(
                            "must be 1 to {MAX_NAME_LEN} characters, without control characters"
                        ),
                        Some("a short word, e.g. \"node-a\"".into()),
                    );
                    ok = false;
                } else if hosts.iter().any(|o| o.name == name) {
                    ctx.err(
                        n.span(),
                        &field,
                        format!("a host named `{}` already exists", shorten(&name)),
                        Some("give each host its own name".into()),
                    );
                    ok = false;
                }
                name
            }
        };
        hosts.push(Host { name });
    }
    ok.then_some(hosts)
}

/// `[fencing]`: two different hosts of the scenario's, and a time inside
/// the I/O phase.
pub(super) fn build_fencing(
    ctx: &mut Ctx<'_>,
    raw: &Spanned<RawFencing>,
    hosts: Option<usize>,
    duration_s: Option<f64>,
) -> Option<Fencing> {
    let f = raw.get_ref();
    if hosts.is_some_and(|n| n < 2) {
        ctx.err(
            raw.span(),
            "fencing",
            "fencing needs two hosts, one to fence the other".into(),
            Some("declare two [[host]] tables".into()),
        );
        return None;
    }
    let survivor = host_index(
        ctx,
        f.survivor.span(),
        *f.survivor.get_ref(),
        "fencing.survivor",
        hosts,
    );
    let victim = host_index(
        ctx,
        f.victim.span(),
        *f.victim.get_ref(),
        "fencing.victim",
        hosts,
    );
    let (survivor, victim) = (survivor?, victim?);
    if survivor == victim {
        ctx.err(
            f.victim.span(),
            "fencing.victim",
            format!("is the survivor too (host {victim})"),
            Some("the survivor fences another host".into()),
        );
        return None;
    }
    let end = duration_s.unwrap_or(f64::INFINITY);
    let (field, value, trigger) = match (&f.at_s, &f.after_victim_stall_s) {
        (Some(at), None) => ("fencing.at_s", at, FenceTrigger::At(*at.get_ref())),
        (None, Some(after)) => (
            "fencing.after_victim_stall_s",
            after,
            FenceTrigger::VictimStalled(*after.get_ref()),
        ),
        (Some(_), Some(after)) => {
            ctx.err(
                after.span(),
                "fencing.after_victim_stall_s",
                "is given with at_s: the fence has one trigger".into(),
                Some(
                    "keep at_s (a time) or after_victim_stall_s (the victim's I/O stuck that long)"
                        .into(),
                ),
            );
            return None;
        }
        (None, None) => {
            ctx.err(
                raw.span(),
                "fencing",
                "has no trigger".into(),
                Some("add at_s = 7 (a time) or after_victim_stall_s = 4 (the victim's I/O stuck that long)".into()),
            );
            return None;
        }
    };
    let x = *value.get_ref();
    let lowest = match trigger {
        FenceTrigger::At(_) => 0.0,
        FenceTrigger::VictimStalled(_) => 0.5,
    };
    if !(x.is_finite() && x >= lowest && x < end) {
        ctx.err(
            value.span(),
            field,
            format!("must be from {lowest} to less than duration_s ({end} s), got {x}"),
            Some(match trigger {
                FenceTrigger::At(_) => "seconds from the start of the I/O phase, e.g. 7".into(),
                FenceTrigger::VictimStalled(_) => {
                    "seconds an operation of the victim's probe is blocked, e.g. 4".into()
                }
            }),
        );
        return None;
    }
    Some(Fencing {
        survivor,
        victim,
        trigger,
    })
}

/// A `host = N` of `field` (a probe's or a fault's): 0 to `hosts - 1`.
/// `hosts` is `None` when `[[host]]` did not parse (no cross-check).
pub(super) fn host_index(
    ctx: &mut Ctx<'_>,
    span: std::ops::Range<usize>,
    n: i64,
    field: &str,
    hosts: Option<usize>,
) -> Option<u8> {
    let count = hosts.unwrap_or(MAX_HOSTS);
    if (0..count as i64).contains(&n) {
        return Some(n as u8);
    }
    ctx.err(
        span,
        field,
        format!("must be a host from 0 to {}, got {n}", count - 1),
        Some(format!("the scenario has {count} host(s) ([[host]])")),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, one, GOOD};
    use crate::model::Scenario;

    /// GOOD with two hosts, a probe on each (the second starting at 8 s), a
    /// fault on host 0, and `extra` appended.
    fn two_hosts(extra: &str) -> String {
        let probes = GOOD.replace(
            "[[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n",
            "[[host]]\nname = \"a\"\n[[host]]\nname = \"b\"\n\
             [[probe]]\nname = \"a\"\nkind = \"blkprobe\"\n\
             [[probe]]\nname = \"b\"\nkind = \"blkprobe\"\nhost = 1\nstart_s = 8\n",
        );
        format!("{probes}{extra}")
    }

    #[test]
    fn two_hosts_each_with_a_probe_and_a_fault_on_one() {
        let text = two_hosts("").replace(
            "direction = \"to_target\"\n",
            "direction = \"to_target\"\nhost = 1\n",
        );
        let s = Scenario::parse(&text, "x.toml").unwrap();
        let names: Vec<&str> = s.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            s.probes
                .iter()
                .map(|p| (p.host, p.start_s))
                .collect::<Vec<_>>(),
            [(0, 0.0), (1, 8.0)]
        );
        // Sorted by start: the 5 s fault (host 1) first.
        assert_eq!(s.faults.iter().map(|f| f.host).collect::<Vec<_>>(), [1, 0]);
        // One host by default.
        let one_host = Scenario::parse(GOOD, "x.toml").unwrap();
        assert_eq!(one_host.hosts.len(), 1);
        assert_eq!(one_host.probes[0].host, 0);
    }

    #[test]
    fn hosts_probes_and_faults_are_checked_against_each_other() {
        // A probe on a host that does not exist.
        let d = one(&two_hosts("").replace("host = 1\n", "host = 2\n"));
        assert_eq!(d.field, "probe[1].host");
        assert!(d.message.contains("from 0 to 1, got 2"), "{d:?}");
        // Two probes on one host.
        let d = one(&two_hosts("").replace("host = 1\n", "host = 0\n"));
        assert_eq!(d.field, "probe[1].host");
        assert!(d.message.contains("has a probe already"), "{d:?}");
        // A fault on a host that does not exist; the line is the fault's.
        let text = two_hosts("").replace(
            "direction = \"to_target\"\n",
            "direction = \"to_target\"\nhost = 5\n",
        );
        let d = one(&text);
        assert_eq!(d.field, "fault[1].host");
        let line = text.lines().position(|l| l == "host = 5").unwrap() + 1;
        assert_eq!(d.line, line);
        // A fault of the target takes no host.
        let d = one(&two_hosts(
            "[[fault]]\nkind = \"target_stop\"\nstart_s = 20\nduration_s = 2\nhost = 1\n",
        ));
        assert_eq!(d.field, "fault[2].host");
        assert!(d.message.contains("every host shares"), "{d:?}");
        // start_s past the run, and on a kind that cannot wait.
        let d = one(&two_hosts("").replace("start_s = 8\n", "start_s = 25\n"));
        assert_eq!(d.field, "probe[1].start_s");
        let d = one(&two_hosts("").replace(
            "[[probe]]\nname = \"b\"\nkind = \"blkprobe\"",
            "[[probe]]\nname = \"b\"\nkind = \"fs\"",
        ));
        assert_eq!(d.field, "probe[1].start_s");
        // Three hosts; the same name twice; hosts on a multipath lane.
        let d = one(&two_hosts("[[host]]\n"));
        assert_eq!(d.field, "host[2]");
        let d = one(&two_hosts("").replace("name = \"b\"\n[[probe]]", "name = \"a\"\n[[probe]]"));
        assert_eq!(d.field, "host[1].name");
        let d = err(&two_hosts("").replace("lun_size_mib = 32", "lun_size_mib = 32\npaths = 2"));
        assert!(d.iter().any(|d| d.field == "host[1]"), "{d:#?}");
        // A second probe without a second host is refused as before.
        let d = one(&GOOD.replace(
            "[[probe]]\nkind = \"blkprobe\"\ninterval_ms = 10\n",
            "[[probe]]\nkind = \"blkprobe\"\n[[probe]]\nname = \"x\"\nkind = \"blkprobe\"\n",
        ));
        assert_eq!(d.field, "probe[1]");
    }

    #[test]
    fn fencing_names_two_different_hosts_and_a_time_inside_the_run() {
        let fenced = two_hosts("[fencing]\nsurvivor = 1\nvictim = 0\nat_s = 7\n");
        let s = Scenario::parse(&fenced, "x.toml").unwrap();
        let f = s.fencing.unwrap();
        assert_eq!(
            (f.survivor, f.victim, f.trigger),
            (1, 0, crate::model::FenceTrigger::At(7.0))
        );
        assert_ne!(crate::model::Fencing::key(0), crate::model::Fencing::key(1));
        let d = one(&fenced.replace("victim = 0", "victim = 1"));
        assert_eq!(d.field, "fencing.victim");
        assert!(d.message.contains("is the survivor too"), "{d:?}");
        let d = one(&fenced.replace("survivor = 1", "survivor = 3"));
        assert_eq!(d.field, "fencing.survivor");
        let d = one(&fenced.replace("at_s = 7", "at_s = 99"));
        assert_eq!(d.field, "fencing.at_s");
        // Or once the victim's I/O is stuck long enough; one trigger only.
        let stall = fenced.replace("at_s = 7", "after_victim_stall_s = 4");
        let f = Scenario::parse(&stall, "x.toml").unwrap().fencing.unwrap();
        assert_eq!(f.trigger, crate::model::FenceTrigger::VictimStalled(4.0));
        let d = one(&stall.replace("after_victim_stall_s = 4", "after_victim_stall_s = 0.1"));
        assert_eq!(d.field, "fencing.after_victim_stall_s");
        assert!(d.message.contains("from 0.5"), "{d:?}");
        let d = one(&fenced.replace("at_s = 7", "at_s = 7\nafter_victim_stall_s = 4"));
        assert_eq!(d.field, "fencing.after_victim_stall_s");
        assert!(d.message.contains("one trigger"), "{d:?}");
        let d = one(&fenced.replace("at_s = 7\n", ""));
        assert_eq!(d.field, "fencing");
        assert!(d.message.contains("no trigger"), "{d:?}");
        // One host: nobody to fence.
        let d = one(&format!(
            "{GOOD}[fencing]\nsurvivor = 1\nvictim = 0\nat_s = 7\n"
        ));
        assert_eq!(d.field, "fencing");
        // A fenced run on tgt is skipped with the reason; on LIO it runs.
        let runs = crate::model::Run {
            scenario: s.clone(),
            target: crate::model::TargetKind::Tgt,
        };
        assert!(runs.unsupported().unwrap().contains("PREEMPT AND ABORT"));
        let lio = crate::model::Run {
            scenario: s,
            target: crate::model::TargetKind::Lio,
        };
        assert_eq!(lio.unsupported(), None);
    }
}
