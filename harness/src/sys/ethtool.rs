//! Segmentation offloads through the ethtool ioctl (`ethtool -K DEV tso off
//! gso off`). A link with them on hands its driver 64 KB super-packets that
//! pass every MTU check on the way (the kernel lets a GSO packet through
//! one); with them off the stack cuts wire-sized frames itself before the
//! driver, as a real NIC puts them on a real wire.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_GSG: u32 = 0x18;
const ETHTOOL_SSG: u32 = 0x19;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

fn call(ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {ifname:?} is too long"),
        ));
    }
    // SAFETY: a plain datagram socket, owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut value = EthtoolValue { cmd, data };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        _pad: [0; 16],
    };
    for (dst, src) in req.name.iter_mut().zip(ifname.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: req and value outlive the call; the kernel reads name and
    // reads/writes value through the pointer.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.data)
}

/// Turns TCP and generic segmentation offload of link `ifname` (in the
/// caller's network namespace) on or off.
pub fn set_segmentation_offload(ifname: &str, on: bool) -> io::Result<()> {
    call(ifname, ETHTOOL_STSO, u32::from(on))?;
    call(ifname, ETHTOOL_SGSO, u32::from(on))?;
    Ok(())
}

/// Turns scatter-gather of link `ifname` on or off. Off, TCP cannot hand
/// the link pages it does not own (no zero-copy sends): every frame holds
/// a copy of its bytes, made when it was sent, as a frame a real NIC has
/// put on a real wire does.
pub fn set_scatter_gather(ifname: &str, on: bool) -> io::Result<()> {
    call(ifname, ETHTOOL_SSG, u32::from(on))?;
    Ok(())
}

/// Whether link `ifname` has scatter-gather on.
pub fn scatter_gather(ifname: &str) -> io::Result<bool> {
    Ok(call(ifname, ETHTOOL_GSG, 0)? != 0)
}

/// Whether link `ifname` has (TSO, GSO) on.
pub fn segmentation_offload(ifname: &str) -> io::Result<(bool, bool)> {
    Ok((
        call(ifname, ETHTOOL_GTSO, 0)? != 0,
        call(ifname, ETHTOOL_GGSO, 0)? != 0,
    ))
}
