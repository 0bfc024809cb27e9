//! Direct, synchronous block I/O on the probe's device (or a regular file in
//! tests), the 4096-aligned buffers O_DIRECT needs, and the guard that keeps
//! the probe off disks that are not its own iSCSI session's.

use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use anyhow::{bail, Context, Result};

/// Alignment of every I/O buffer: enough for O_DIRECT on 512e and 4Kn disks.
pub const BUF_ALIGN: usize = 4096;

/// A zeroed heap buffer aligned to [`BUF_ALIGN`].
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    pub fn new(len: usize) -> Self {
        assert!(len > 0, "empty I/O buffer");
        let layout = Layout::from_size_align(len, BUF_ALIGN).expect("buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, layout }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr points at layout.size() initialised bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this very layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// A failed or short transfer. `errno` is None for a short transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError {
    pub errno: Option<i32>,
}

/// Whole-block I/O: what the probe loop and the verifier need of a device.
pub trait BlockDev {
    fn block_size(&self) -> usize;
    fn read_block(&self, buf: &mut [u8], block: u64) -> Result<(), IoError>;
    fn write_block(&self, buf: &[u8], block: u64) -> Result<(), IoError>;
}

/// What the probe opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Block,
    File,
}

/// A block device or regular file opened O_RDWR|O_DIRECT|O_SYNC.
pub struct Device {
    file: File,
    path: PathBuf,
    kind: DeviceKind,
    size: u64,
    sector_size: u32,
    block_size: usize,
}

impl Device {
    /// Opens `path` for probing with `block_size`-byte blocks.
    ///
    /// With `expect_session`, only a block device whose sysfs ancestry runs
    /// through a `/<session>/` directory is accepted. Block devices are
    /// opened O_EXCL, so a mounted or otherwise claimed disk is refused too.
    ///
    /// The guard judges a descriptor, never a name: `/dev/sdX` names are
    /// reused as other lanes log in and out, so a name checked and then
    /// opened may be another disk by the open. The path is opened O_PATH
    /// (which opens no device, so another lane's disk is never claimed, not
    /// even for a moment), that descriptor is fstat'ed and judged, and the
    /// I/O descriptor is opened from it (`/proc/self/fd/N`) and must be the
    /// very same file.
    pub fn open(path: &Path, block_size: usize, expect_session: Option<&str>) -> Result<Device> {
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let judged =
            FdStat::of(&handle).with_context(|| format!("cannot fstat {}", path.display()))?;
        let kind = judged
            .guard(Path::new("/sys"), expect_session)
            .with_context(|| format!("refusing {}", path.display()))?;
        let mut flags = libc::O_DIRECT | libc::O_SYNC;
        if kind == DeviceKind::Block {
            // Never write over a mounted filesystem or under another probe.
            flags |= libc::O_EXCL;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
            .with_context(|| format!("cannot open {} O_DIRECT", path.display()))?;
        let opened =
            FdStat::of(&file).with_context(|| format!("cannot fstat {}", path.display()))?;
        if opened != judged {
            bail!(
                "refusing {}: the file opened is not the one checked",
                path.display()
            );
        }
        let (size, sector_size) = match kind {
            DeviceKind::Block => (blk_size(&file)?, blk_sector_size(&file)?),
            DeviceKind::File => (file.metadata()?.len(), 512),
        };
        if block_size == 0 || block_size % sector_size as usize != 0 {
            bail!(
                "block size {block_size} is not a multiple of the logical sector size {sector_size}"
            );
        }
        Ok(Device {
            file,
            path: path.to_path_buf(),
            kind,
            size,
            sector_size,
            block_size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    /// What fstat says of the open device (its disk: `rdev`).
    pub fn stat(&self) -> std::io::Result<FdStat> {
        FdStat::of(&self.file)
    }
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn sector_size(&self) -> u32 {
        self.sector_size
    }
}

/// One positioned transfer of a whole block: retried on EINTR; a short
/// transfer is a failure without an errno.
fn whole_block(
    len: usize,
    mut transfer: impl FnMut() -> std::io::Result<usize>,
) -> Result<(), IoError> {
    loop {
        return match transfer() {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(IoError { errno: None }),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(IoError {
                errno: e.raw_os_error(),
            }),
        };
    }
}

impl BlockDev for Device {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn read_block(&self, buf: &mut [u8], block: u64) -> Result<(), IoError> {
        debug_assert_eq!(buf.len(), self.block_size);
        let len = buf.len();
        whole_block(len, || self.file.read_at(buf, block * len as u64))
    }

    fn write_block(&self, buf: &[u8], block: u64) -> Result<(), IoError> {
        debug_assert_eq!(buf.len(), self.block_size);
        whole_block(buf.len(), || {
            self.file.write_at(buf, block * buf.len() as u64)
        })
    }
}

/// What fstat says of a descriptor, as far as the guard goes: which file
/// (device and inode of the node) and, for a block device, which disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdStat {
    /// None: neither a block device nor a regular file.
    pub kind: Option<DeviceKind>,
    pub dev: u64,
    pub ino: u64,
    /// The disk (major:minor) of a block device.
    pub rdev: u64,
}

impl FdStat {
    /// fstat of an open descriptor (an O_PATH one too).
    pub fn of(file: &File) -> std::io::Result<FdStat> {
        let meta = file.metadata()?;
        let ft = meta.file_type();
        let kind = if ft.is_block_device() {
            Some(DeviceKind::Block)
        } else if ft.is_file() {
            Some(DeviceKind::File)
        } else {
            None
        };
        Ok(FdStat {
            kind,
            dev: meta.dev(),
            ino: meta.ino(),
            rdev: meta.rdev(),
        })
    }

    /// The guard on this descriptor: a block device or regular file, and
    /// with `expect_session` a block device whose disk (`st_rdev`) is one of
    /// that session's ([`check_session`], sysfs under `sys_root`).
    pub fn guard(&self, sys_root: &Path, expect_session: Option<&str>) -> Result<DeviceKind> {
        let Some(kind) = self.kind else {
            bail!("neither a block device nor a regular file");
        };
        if let Some(session) = expect_session {
            if kind != DeviceKind::Block {
                bail!("not a block device, so it cannot belong to {session}");
            }
            let (major, minor) = (libc::major(self.rdev), libc::minor(self.rdev));
            check_session(sys_root, major, minor, session)?;
        }
        Ok(kind)
    }
}

/// Accepts the block device `major:minor` only if its canonical sysfs path
/// (under `sys_root`, normally `/sys`) has a `/<session>/` component, as every
/// disk of open-iscsi session N has `/sessionN/` in its ancestry.
pub fn check_session(sys_root: &Path, major: u32, minor: u32, session: &str) -> Result<PathBuf> {
    if session.is_empty() || session.contains('/') {
        bail!("bad session name {session:?}");
    }
    // /sys/dev/block/M:m resolves to the same device directory as
    // /sys/class/block/<dev>, and works for partitions and any device alias.
    let link = sys_root.join(format!("dev/block/{major}:{minor}"));
    let real = std::fs::canonicalize(&link)
        .with_context(|| format!("cannot resolve {}", link.display()))?;
    let needle = format!("/{session}/");
    if !real.to_string_lossy().contains(&needle) {
        bail!("{} does not belong to {session}", real.display());
    }
    Ok(real)
}

/// _IOR(0x12, 114, size_t): the device size in bytes.
const BLKGETSIZE64: u64 = {
    #[cfg(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))]
    const IOC_READ: u64 = 2 << 29;
    #[cfg(not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    const IOC_READ: u64 = 2 << 30;
    IOC_READ | ((std::mem::size_of::<usize>() as u64) << 16) | (0x12 << 8) | 114
};

fn blk_size(file: &File) -> Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 into `size`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("BLKGETSIZE64");
    }
    Ok(size)
}

fn blk_sector_size(file: &File) -> Result<u32> {
    let mut ssz: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int into `ssz`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::BLKSSZGET, &mut ssz as *mut _) };
    if rc != 0 || ssz <= 0 {
        return Err(std::io::Error::last_os_error()).context("BLKSSZGET");
    }
    Ok(ssz as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sys(real: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join(real);
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(dir.path().join("dev/block")).unwrap();
        std::os::unix::fs::symlink(&dev, dir.path().join("dev/block/8:16")).unwrap();
        dir
    }

    #[test]
    fn session_guard_accepts_own_session_only() {
        let sys = fake_sys("devices/platform/host3/session3/target3:0:0/3:0:0:1/block/sdb");
        assert!(check_session(sys.path(), 8, 16, "session3").is_ok());
        assert!(check_session(sys.path(), 8, 16, "session4").is_err());
        // A prefix of a component is not a match.
        assert!(check_session(sys.path(), 8, 16, "session").is_err());
        assert!(check_session(sys.path(), 8, 16, "session3/target3:0:0").is_err());
        assert!(check_session(sys.path(), 8, 17, "session3").is_err());
    }

    #[test]
    fn session_guard_refuses_non_iscsi_disk() {
        let sys = fake_sys("devices/pci0000:00/0000:00:04.0/virtio1/block/vda");
        assert!(check_session(sys.path(), 8, 16, "session1").is_err());
    }

    fn block(major: u32, minor: u32) -> FdStat {
        FdStat {
            kind: Some(DeviceKind::Block),
            dev: 5,
            ino: 42,
            rdev: libc::makedev(major, minor),
        }
    }

    #[test]
    fn the_guard_judges_the_descriptors_disk() {
        let sys = fake_sys("devices/platform/host3/session3/target3:0:0/3:0:0:1/block/sdb");
        assert_eq!(
            block(8, 16).guard(sys.path(), Some("session3")).unwrap(),
            DeviceKind::Block
        );
        // The name's disk was replaced by another (8:32, not session3's).
        let e = block(8, 32)
            .guard(sys.path(), Some("session3"))
            .unwrap_err();
        assert!(format!("{e:#}").contains("8:32"), "{e:#}");
        assert!(block(8, 16).guard(sys.path(), Some("session4")).is_err());
        // No session asked: any block device or file; never anything else.
        assert!(block(8, 32).guard(sys.path(), None).is_ok());
        let file = FdStat {
            kind: Some(DeviceKind::File),
            rdev: libc::makedev(8, 16),
            ..block(0, 0)
        };
        assert!(file.guard(sys.path(), Some("session3")).is_err());
        assert_eq!(file.guard(sys.path(), None).unwrap(), DeviceKind::File);
        let fifo = FdStat {
            kind: None,
            ..block(8, 16)
        };
        assert!(fifo.guard(sys.path(), None).is_err());
    }

    #[test]
    fn the_descriptor_opened_is_the_one_judged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let dev = Device::open(&path, 4096, None).unwrap();
        let by_name = FdStat::of(&File::open(&path).unwrap()).unwrap();
        assert_eq!(FdStat::of(&dev.file).unwrap(), by_name);
        // A file put in the name's place is another file.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        let replaced = FdStat::of(&File::open(&path).unwrap()).unwrap();
        assert_ne!(FdStat::of(&dev.file).unwrap(), replaced);
    }

    #[test]
    fn aligned_buf_is_aligned_and_zeroed() {
        for len in [512, 4096, 65536] {
            let buf = AlignedBuf::new(len);
            assert_eq!(buf.as_ptr() as usize % BUF_ALIGN, 0);
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn file_round_trip_with_o_direct() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::write(&path, vec![0u8; 8 * 4096]).unwrap();
        let dev = Device::open(&path, 4096, None).unwrap();
        assert_eq!(dev.kind(), DeviceKind::File);
        assert_eq!(dev.size(), 8 * 4096);
        let mut w = AlignedBuf::new(4096);
        w.fill(0xA5);
        dev.write_block(&w, 3).unwrap();
        let mut r = AlignedBuf::new(4096);
        dev.read_block(&mut r, 3).unwrap();
        assert_eq!(&r[..], &w[..]);
        // Past the end: a short (empty) read, reported without errno.
        assert_eq!(dev.read_block(&mut r, 8), Err(IoError { errno: None }));
    }

    #[test]
    fn regular_file_is_refused_with_expect_session() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        assert!(Device::open(&path, 4096, Some("session1")).is_err());
    }
}
