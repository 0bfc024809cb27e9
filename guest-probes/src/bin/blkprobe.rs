//! The `blkprobe` binary: see [`guest_probes::blkprobe`]; started as
//! `fsprobe` (argv[0]), it is [`guest_probes::fsprobe`].

fn main() -> std::process::ExitCode {
    let arg0 = std::env::args_os().next().unwrap_or_default();
    guest_probes::main_as(&arg0).unwrap_or_else(guest_probes::blkprobe::main)
}
