#!/bin/sh
# Re-capture the golden netlink messages that harness/src/tc.rs is tested against.
#
# Usage (as root): capture.sh TC_BINARY SUFFIX
#   capture.sh /usr/sbin/tc tc6.1            # Debian bookworm's iproute2 6.1.0
#   capture.sh /tmp/iproute2-head/tc/tc head # iproute2 built from git (7.1.0-dev, ee2a4a86)
#
# tc encodes the whole request before the kernel sees it, so netem goldens can be
# captured even on a kernel without sch_netem (tc then exits with "Specified qdisc
# kind is unknown", which is expected). Each golden is the exact byte dump that
# `strace -f -e trace=sendmsg -e write=all -s 65535 -xx` prints for tc's one
# RTM_NEWQDISC / RTM_DELQDISC / RTM_GETQDISC sendmsg, on veth "v0" inside a scratch
# netns that this script creates and deletes. nlmsg_seq (time-based) and the ifindex
# are kept as captured; the tests read them back out of the golden.
# The dump reply golden is the kernel's answer (recvmsg, -e read=all) to
# `tc -s qdisc show dev v0` with a tbf installed.
set -eu
TC=$1
SUF=$2
DIR=$(cd "$(dirname "$0")" && pwd)
NS=tcgolden-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up

# extract FILE TYPE: hex of the first buffer whose decoded header names TYPE.
extract() {
	python3 - "$1" "$2" <<'PY'
import sys, re
path, msgtype = sys.argv[1], sys.argv[2]
out, grab = [], False
for line in open(path):
    line = re.sub(r"^[0-9]+ +", "", line)  # strace -f -o prefixes the pid
    if line.startswith(("sendmsg(", "recvmsg(")):
        if out:
            break
        grab = ("nlmsg_type=" + msgtype) in line and "MSG_PEEK" not in line
        continue
    m = re.match(r"^ \| [0-9a-f]{5}  (.{49})", line)
    if grab and m:
        out.extend(re.findall(r"[0-9a-f]{2}", m.group(1)))
if not out:
    sys.exit("no %s buffer in %s" % (msgtype, path))
print("".join(out))
PY
}

cap() { # NAME TYPE tc-args...
	name=$1; type=$2; shift 2
	ip netns exec "$NS" strace -f -e trace=sendmsg -e write=all -s 65535 -xx \
		-o /tmp/$NS.trace "$TC" "$@" >/dev/null 2>&1 || true
	extract /tmp/$NS.trace "$type" > "$DIR/$name.$SUF.hex"
	echo "$name: $TC $*"
}

cap netem_loss100       RTM_NEWQDISC qdisc replace dev v0 root netem loss 100%
cap netem_loss_corr     RTM_NEWQDISC qdisc replace dev v0 root netem loss 5% 30%
cap netem_delay         RTM_NEWQDISC qdisc replace dev v0 root netem delay 100ms 10ms 25%
cap netem_duplicate     RTM_NEWQDISC qdisc replace dev v0 root netem duplicate 1% 10%
cap netem_corrupt       RTM_NEWQDISC qdisc replace dev v0 root netem corrupt 0.1% 5%
cap netem_reorder       RTM_NEWQDISC qdisc replace dev v0 root netem delay 10ms reorder 25% 50% gap 5
cap netem_rate          RTM_NEWQDISC qdisc replace dev v0 root netem rate 1mbit 20 100 -4
cap netem_rate64        RTM_NEWQDISC qdisc replace dev v0 root netem rate 40gbit
cap netem_all           RTM_NEWQDISC qdisc replace dev v0 root netem limit 5000 delay 100ms 10ms 25% loss 5% 30% duplicate 1% 10% corrupt 0.1% 5% reorder 25% 50% gap 5 rate 1mbit 20 100 -4
cap tbf                 RTM_NEWQDISC qdisc replace dev v0 root tbf rate 1mbit burst 32768 limit 102400
cap tbf_rate64          RTM_NEWQDISC qdisc replace dev v0 root tbf rate 40gbit burst 1000000 limit 2000000
cap del_root            RTM_DELQDISC qdisc del dev v0 root

# Kernel replies (recvmsg, -e read=all): an extended-ack error and a plain ack.
reply() { # NAME TYPE tc-args...
	name=$1; type=$2; shift 2
	ip netns exec "$NS" strace -f -e trace=recvmsg -e read=all -s 65535 -xx \
		-o /tmp/$NS.trace "$TC" "$@" >/dev/null 2>&1 || true
	extract /tmp/$NS.trace "$type" > "$DIR/$name.$SUF.hex"
	echo "$name: $TC $* (recvmsg)"
}
# Only valid on a kernel without sch_netem (ENOENT, "Specified qdisc kind is unknown").
reply error_no_netem     NLMSG_ERROR qdisc replace dev v0 root netem loss 100%
reply ack_tbf            NLMSG_ERROR qdisc replace dev v0 root tbf rate 1mbit burst 32768 limit 102400

# The kernel's dump reply with a real tbf (tbf exists on this kernel) that has seen
# traffic: 20 UDP datagrams of 1000 bytes to a static neighbour through an 8 kbit/s
# tbf with a 3000-byte limit, so bytes, packets, drops, overlimits, backlog and qlen
# are all non-zero and distinct.
"$TC" -n "$NS" qdisc replace dev v0 root tbf rate 8kbit burst 1600 limit 3000
ip netns exec "$NS" sysctl -qw net.ipv6.conf.v0.disable_ipv6=1
ip -n "$NS" addr add 10.251.0.1/24 dev v0
ip -n "$NS" neigh replace 10.251.0.2 lladdr 02:00:00:00:00:02 dev v0
ip netns exec "$NS" python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(20): s.sendto(bytes(1000), ("10.251.0.2", 9))'
ip netns exec "$NS" strace -f -e trace=recvmsg -e read=all -s 65535 -xx \
	-o /tmp/$NS.trace "$TC" -s qdisc show dev v0 >/dev/null 2>&1
extract /tmp/$NS.trace RTM_NEWQDISC > "$DIR/dump_reply_tbf.$SUF.hex"
echo "dump_reply_tbf: $TC -s qdisc show dev v0 (recvmsg)"
"$TC" -n "$NS" -s qdisc show dev v0
rm -f /tmp/$NS.trace
