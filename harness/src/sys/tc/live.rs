//! Against the real kernel: needs root, creates and deletes its own netns.
//! Run with `cargo test -p iscsi-chaos -- --ignored tc`.

use super::*;
use std::process::Command;

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed: {st}");
}

/// A scratch netns holding veth v0/v1; deleting the netns on drop (also when a
/// test panics) removes the veths with it.
struct ScratchNetns(String);

impl ScratchNetns {
    fn new() -> Self {
        let name = format!("tctest-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = ScratchNetns(name);
        let n = ns.0.as_str();
        ip(&[
            "-n", n, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        // No IPv6 (no MLD/ND chatter) and a static neighbour (no ARP): the only
        // packets through v0's qdisc are the test's own datagrams.
        let st = Command::new("ip")
            .args([
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.v0.disable_ipv6=1",
            ])
            .status()
            .unwrap();
        assert!(st.success());
        ip(&["-n", n, "addr", "add", "10.251.7.1/24", "dev", "v0"]);
        ip(&["-n", n, "link", "set", "v0", "up"]);
        ip(&["-n", n, "link", "set", "v1", "up"]);
        ip(&[
            "-n",
            n,
            "neigh",
            "replace",
            "10.251.7.2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "v0",
        ]);
        ns
    }

    /// Runs `f` on a fresh thread switched into this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
#[ignore = "needs root and a scratch network namespace"]
fn tc_live_tbf_replace_stats_delete() {
    let ns = ScratchNetns::new();
    ns.run(|| {
        let ifindex = nix::net::if_::if_nametoindex("v0").unwrap() as i32;
        let mut sock = RouteSocket::open().unwrap();

        let before = sock
            .qdisc_stats(ifindex)
            .unwrap()
            .expect("veth has a root qdisc");
        assert_eq!(before.kind, "noqueue");

        // 1000 bytes/s with a 1600-byte bucket and a 3000-byte queue: of 20
        // 1042-byte frames one or two go out at once, two wait, the rest drop.
        let tbf = Tbf {
            rate_bytes_per_s: 1000,
            burst_bytes: 1600,
            limit_bytes: 3000,
        };
        sock.replace_root_qdisc(ifindex, &Qdisc::Tbf(tbf)).unwrap();
        let fresh = sock.qdisc_stats(ifindex).unwrap().unwrap();
        assert_eq!((fresh.kind.as_str(), fresh.parent), ("tbf", TC_H_ROOT));
        assert_ne!(fresh.handle, 0);
        assert_eq!((fresh.packets, fresh.drops), (0, 0));

        let udp = std::net::UdpSocket::bind("10.251.7.1:0").unwrap();
        for _ in 0..20 {
            udp.send_to(&[0u8; 1000], "10.251.7.2:9").unwrap();
        }
        let s = sock.qdisc_stats(ifindex).unwrap().unwrap();
        assert_eq!(s.kind, "tbf");
        assert_eq!(
            s.packets + u64::from(s.drops) + u64::from(s.qlen),
            20,
            "{s:?}"
        );
        assert!(s.drops >= 10 && s.packets >= 1, "{s:?}");
        assert_eq!(s.bytes, s.packets * 1042, "{s:?}");
        assert_eq!(s.backlog, s.qlen * 1042, "{s:?}");
        assert!(s.overlimits >= s.drops, "{s:?}");

        // Replace in place (same handle, new parameters).
        let faster = Tbf {
            rate_bytes_per_s: 125_000,
            ..tbf
        };
        sock.replace_root_qdisc(ifindex, &Qdisc::Tbf(faster))
            .unwrap();
        assert_eq!(
            sock.qdisc_stats(ifindex).unwrap().unwrap().handle,
            fresh.handle
        );

        // netem: accepted where the kernel has it, otherwise a clear error.
        let netem = Qdisc::Netem(Netem {
            loss: 100.0,
            ..Default::default()
        });
        match sock.replace_root_qdisc(ifindex, &netem) {
            Ok(()) => assert_eq!(sock.qdisc_stats(ifindex).unwrap().unwrap().kind, "netem"),
            Err(e) => {
                let ne = NetlinkError::from_io(&e).unwrap_or_else(|| panic!("{e}"));
                assert_eq!(ne.errno, libc::ENOENT, "{e}");
                assert_eq!(
                    ne.extack.as_deref(),
                    Some("Specified qdisc kind is unknown")
                );
            }
        }

        sock.delete_root_qdisc(ifindex).unwrap();
        assert_eq!(sock.qdisc_stats(ifindex).unwrap().unwrap().kind, "noqueue");
        // Nothing left to delete: still Ok.
        sock.delete_root_qdisc(ifindex).unwrap();

        let e = sock.delete_root_qdisc(999_999).unwrap_err();
        assert_eq!(
            NetlinkError::from_io(&e).unwrap().errno,
            libc::ENODEV,
            "{e}"
        );
        assert_eq!(sock.qdisc_stats(999_999).unwrap(), None);
    });
}
