//! The `blkprobe` binary: see [`guest_probes::blkprobe`].

fn main() -> std::process::ExitCode {
    guest_probes::blkprobe::main()
}
