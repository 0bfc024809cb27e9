#!/bin/sh
# PID 1 of the lab VM (installed as /usr/local/sbin/lab-init by the image recipe).
# Mounts what the harness needs, loads the kernel modules, runs the job that
# `lab run` (iscsi-chaos or cargo xtask) put on the `job` 9p share, records its exit status
# there, and powers off (and never exits: PID 1). There is no service manager: the VM lives for one job.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/netns /run/lock/iscsi
mount -t tmpfs tmpfs /tmp
# The root disk is a throw-away overlay (qemu -snapshot): writable, never saved.
mount -o remount,rw /
hostname lab
ip link set lo up

echo "lab: userspace up after $(cut -d' ' -f1 /proc/uptime) s" > /dev/console
# Modules load in parallel: under TCG each signed module costs a noticeable
# verification time, and the 9p shares are needed before anything else.
modprobe -a 9p 9pnet_virtio
for m in sd_mod iscsi_tcp sch_netem target_core_mod iscsi_target_mod loop \
         target_core_file target_core_iblock veth; do
    modprobe -q "$m" || echo "lab: modprobe $m failed" > /dev/console &
done
wait
mount -t configfs configfs /sys/kernel/config

mkdir -p /lab/job /lab/work /lab/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /lab/job
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro work /lab/work 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /lab/out 2>/dev/null

status=125
if [ -f /lab/job/run.sh ]; then
    echo "lab: running job after $(cut -d' ' -f1 /proc/uptime) s" > /dev/console
    sh /lab/job/run.sh < /dev/null > /dev/console 2>&1
    status=$?
else
    echo "lab: no job found on the job share" > /dev/console
fi
echo "$status" > /lab/job/status
sync
umount /lab/out /lab/work /lab/job 2>/dev/null
# PID 1 must never exit: the kernel panics ("Attempted to kill init!"). Once
# power-off is under way the root disk goes away and any program run from it
# (`sleep`) fails, so after the trigger only shell builtins run: a `read` on a
# FIFO held open for reading and writing (on /run, a tmpfs) blocks for good,
# and if it cannot, the loop still never ends. (`command exec`: a failed
# redirection of a plain `exec` would end the shell.)
mkfifo /run/lab-init.hold 2>/dev/null
command exec 3<> /run/lab-init.hold 2>/dev/null
echo o > /proc/sysrq-trigger
while :; do
    read -r _ <&3
done
