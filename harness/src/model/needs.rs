//! What a run may need of its host, as data; `runner::doctor` probes it.

/// One thing of the host a run may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requirement {
    Root,
    /// A kernel module: loaded, built in, or loadable.
    Module(&'static str),
    /// A program on PATH and the Debian package that has it.
    Tool {
        name: &'static str,
        package: &'static str,
    },
    /// configfs mounted at /sys/kernel/config (LIO).
    Configfs,
    /// LIO's folder for persistent-reservation state (`<db_root>/pr`):
    /// without it every PERSISTENT RESERVE OUT fails with NOT READY.
    LioPrFolder,
}

use Requirement::{Module, Tool};

pub const NETEM: Requirement = Module("sch_netem");
pub const TGTD: Requirement = Tool {
    name: "tgtd",
    package: "tgt",
};
pub const TGTADM: Requirement = Tool {
    name: "tgtadm",
    package: "tgt",
};
/// For firewall fault kinds (reject, drop by rule).
pub const NFT: Requirement = Tool {
    name: "nft",
    package: "nftables",
};

/// For an fs probe: mount and umount, and each filesystem's mkfs and repair.
pub const MOUNT: Requirement = Tool {
    name: "mount",
    package: "mount",
};
/// What `[fencing]` needs: sg_persist.
pub const SG_PERSIST: Requirement = Tool {
    name: "sg_persist",
    package: "sg3-utils",
};
/// The fio probe's program.
pub const FIO: Requirement = Tool {
    name: "fio",
    package: "fio",
};
pub const EXT4: &[Requirement] = &[
    MOUNT,
    Tool {
        name: "mkfs.ext4",
        package: "e2fsprogs",
    },
    Tool {
        name: "e2fsck",
        package: "e2fsprogs",
    },
];
pub const XFS: &[Requirement] = &[
    MOUNT,
    Module("xfs"),
    Tool {
        name: "mkfs.xfs",
        package: "xfsprogs",
    },
    Tool {
        name: "xfs_repair",
        package: "xfsprogs",
    },
];

/// For reset and MTU faults (nftables rules in the lane's namespace).
pub const FIREWALL: &[Requirement] = &[NFT, Module("nf_tables"), Module("nft_reject_bridge")];
/// For slow_store faults (dm-delay over a loop device).
pub const SLOW_STORE: &[Requirement] = &[
    Module("dm_delay"),
    Tool {
        name: "dmsetup",
        package: "dmsetup",
    },
    Tool {
        name: "losetup",
        package: "mount",
    },
];
