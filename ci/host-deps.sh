#!/bin/sh
# Host packages the lab needs (QEMU, debootstrap, mkfs.ext4) and the
# browser that checks report.html (chromium), installed only
# when missing. Run as root. The harness itself needs none of them when the
# host runs scenarios natively (open-iscsi, tgt and the kernel modules then).
set -eu
need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
command -v mkfs.ext4 >/dev/null 2>&1 || need="$need e2fsprogs"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
# The wire test compares our iSCSI decoder with tshark's on lab captures.
command -v tshark >/dev/null 2>&1 || need="$need tshark"
# The fio probe's unit test runs fio on a file.
command -v fio >/dev/null 2>&1 || need="$need fio"
# `cargo xtask browser-check` opens report.html in it.
command -v chromium >/dev/null 2>&1 || need="$need chromium"
if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "ci/host-deps.sh: missing:$need; run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
