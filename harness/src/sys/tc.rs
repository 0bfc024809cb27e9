//! The live side of tc: a blocking NETLINK_ROUTE socket that sends the
//! requests [`crate::wire::tc`] encodes and reads qdisc statistics back.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use crate::wire::tc::*;

/// A blocking `NETLINK_ROUTE` socket in the network namespace of the thread that
/// opens it (`setns` affects only the calling thread: open it on a dedicated
/// thread switched into the target namespace, never on an async worker).
/// Requests are sent one at a time and wait for their answer (5 s timeout).
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
}

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

impl RouteSocket {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned right away.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        // SAFETY: raw is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all-zero means "kernel picks the port id".
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the size passed.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        // Extended acks carry the kernel's reason; capped acks keep replies small.
        // Both are best effort (old kernels lack them).
        let _ = setsockopt(&fd, SOL_NETLINK, NETLINK_EXT_ACK, &1i32);
        let _ = setsockopt(&fd, SOL_NETLINK, NETLINK_CAP_ACK, &1i32);
        let tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        Ok(RouteSocket { fd, seq: 1 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: msg is a valid buffer; an unconnected netlink socket sends to the kernel.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short netlink send",
            ));
        }
        Ok(())
    }

    /// Receives messages answering `seq` until `done` says stop.
    fn recv_until(
        &self,
        seq: u32,
        mut done: impl FnMut(Message) -> io::Result<bool>,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n as usize > buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "netlink reply larger than receive buffer",
                ));
            }
            for m in parse_messages(&buf[..n as usize])? {
                let mseq = match &m {
                    Message::Qdisc { seq, .. }
                    | Message::Ack { seq }
                    | Message::Error { seq, .. }
                    | Message::Done { seq }
                    | Message::Other { seq, .. } => *seq,
                };
                // Stale answers to an earlier, timed-out request are skipped.
                if mseq == seq && done(m)? {
                    return Ok(());
                }
            }
        }
    }

    fn request_ack(
        &mut self,
        build: impl FnOnce(u32) -> Result<Vec<u8>, TcError>,
    ) -> io::Result<()> {
        let seq = self.next_seq();
        let request = build(seq)?;
        crate::sys::blocking::blocking(|| {
            self.send(&request)?;
            self.recv_until(seq, |m| match m {
                Message::Ack { .. } => Ok(true),
                Message::Error { error, .. } => Err(error.into()),
                _ => Ok(false),
            })
        })
    }

    /// `tc qdisc replace dev IFINDEX root ...`. On a kernel without netem this
    /// fails with ENOENT and extack "Specified qdisc kind is unknown".
    pub fn replace_root_qdisc(&mut self, ifindex: i32, qdisc: &Qdisc) -> io::Result<()> {
        self.request_ack(|seq| new_qdisc_request(ifindex, qdisc, seq))
    }

    /// `tc qdisc del dev IFINDEX root`. Deleting when there is nothing to delete
    /// (the kernel's ENOENT, "Cannot delete qdisc with handle of zero.") counts
    /// as success, so cleanup is idempotent; a missing device is still ENODEV.
    pub fn delete_root_qdisc(&mut self, ifindex: i32) -> io::Result<()> {
        match self.request_ack(|seq| Ok(del_root_qdisc_request(ifindex, seq))) {
            Err(e) if NetlinkError::from_io(&e).is_some_and(|n| n.errno == libc::ENOENT) => Ok(()),
            r => r,
        }
    }

    /// The root qdisc of `ifindex` and its counters, or None if the kernel
    /// reports no root qdisc for it (e.g. no such device).
    pub fn qdisc_stats(&mut self, ifindex: i32) -> io::Result<Option<QdiscStats>> {
        Ok(self
            .dump_qdiscs()?
            .into_iter()
            .find(|q| q.ifindex == ifindex && q.parent == TC_H_ROOT))
    }

    /// Every qdisc in this namespace.
    pub fn dump_qdiscs(&mut self) -> io::Result<Vec<QdiscStats>> {
        let seq = self.next_seq();
        let mut out = Vec::new();
        crate::sys::blocking::blocking(|| {
            self.send(&dump_qdiscs_request(seq))?;
            self.recv_until(seq, |m| match m {
                Message::Qdisc { qdisc, .. } => {
                    out.push(qdisc);
                    Ok(false)
                }
                Message::Done { .. } => Ok(true),
                Message::Error { error, .. } => Err(error.into()),
                _ => Ok(false),
            })
        })?;
        Ok(out)
    }
}

/// Kinds of root qdisc the harness installs: the only ones it ever removes.
pub const OUR_KINDS: [&str; 3] = ["netem", "tbf", "plug"];

/// Index of link `name` in the calling thread's namespace.
fn ifindex_of(name: &str) -> Option<i32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index as i32)
}

/// The netem, tbf or plug root qdisc on link `link` of the calling thread's
/// namespace, if there is one.
pub fn our_root_qdisc(link: &str) -> io::Result<Option<QdiscStats>> {
    let Some(ifindex) = ifindex_of(link) else {
        return Ok(None);
    };
    Ok(RouteSocket::open()?
        .qdisc_stats(ifindex)?
        .filter(|q| OUR_KINDS.contains(&q.kind.as_str())))
}

/// Removes the netem, tbf or plug root qdisc of link `link` (none: nothing to do).
pub fn remove_our_root_qdisc(link: &str) -> io::Result<()> {
    if let Some(q) = our_root_qdisc(link)? {
        RouteSocket::open()?.delete_root_qdisc(q.ifindex)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "tc/live.rs"]
mod live;
