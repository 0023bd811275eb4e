#!/usr/bin/env bash
# Measures what the player socket send buffer (--socket-send-buffer) costs
# and buys: (1) 8 Mbit/s players across a network with a real round-trip
# time, through tests/bench/delay-line.py between two network namespaces,
# counting stalls and skipped bytes per buffer size; (2) the unsent bytes
# the kernel holds for players that read nothing, per buffer size.
#
# usage (root, iproute2, python3): tests/bench/send-buffer.sh [ONE_WAY_MS...]
# Binaries come from $BIN (default target/release; build them with
# `cargo build --release -p acemux -p ace-sim -p acemux-tests`).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release}
[ $# -gt 0 ] || set -- 50 100
DELAYS=("$@")
SIZES=(${SIZES:-64KiB 128KiB 256KiB 512KiB 0})
STALLED=${STALLED:-200}
SRV=acx-bench-srv CLI=acx-bench-cli
pids=() line=""

cleanup() {
    for p in "${pids[@]}" $line; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del $SRV 2>/dev/null || true
    ip netns del $CLI 2>/dev/null || true
    ip link del acxtun0 2>/dev/null || true
    ip link del acxtun1 2>/dev/null || true
}
trap cleanup EXIT

start_stack() { # $1 = send buffer
    ip netns exec $SRV "$BIN/ace-sim" --listen 127.0.0.1:6878 --bitrate 8000000 2>/dev/null &
    pids+=($!)
    ip netns exec $SRV "$BIN/acemux" --listen 10.213.0.1:8000 --engine 127.0.0.1:6878 --plugins none \
        --socket-send-buffer "$1" --max-connections-per-client 0 --grace-period 1 2>/dev/null &
    pids+=($!)
    for _ in $(seq 50); do
        ip netns exec $SRV python3 -c 'import socket; socket.create_connection(("10.213.0.1", 8000), 1)' 2>/dev/null && return
        sleep 0.1
    done
    echo "acemux did not come up" >&2
    exit 1
}

stop_stack() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}

for delay in "${DELAYS[@]}"; do
    ip netns add $SRV
    ip netns add $CLI
    ip netns exec $SRV ip link set lo up
    ip netns exec $CLI ip link set lo up
    python3 tests/bench/delay-line.py acxtun0 acxtun1 "$delay" > /tmp/acx-delay-line.out &
    line=$!
    for _ in $(seq 50); do grep -q ready /tmp/acx-delay-line.out 2>/dev/null && break; sleep 0.1; done
    ip link set acxtun0 netns $SRV
    ip link set acxtun1 netns $CLI
    ip -n $SRV addr add 10.213.0.1 peer 10.213.0.2 dev acxtun0
    ip -n $CLI addr add 10.213.0.2 peer 10.213.0.1 dev acxtun1
    ip -n $SRV link set acxtun0 mtu 9000 up
    ip -n $CLI link set acxtun1 mtu 9000 up
    # A connect to a closed port is refused after one round trip.
    rtt=$(ip netns exec $CLI python3 -c 'import socket, time
s = socket.socket(); t = time.time(); s.connect_ex(("10.213.0.1", 9)); print(round((time.time() - t) * 1000))')
    echo "== RTT ${rtt} ms (one way ${delay} ms)"
    for size in "${SIZES[@]}"; do
        start_stack "$size"
        out=$(ip netns exec $CLI "$BIN/acemux-load" --target 10.213.0.1:8000 --players 4 --ramp 1 --duration 20 --json 2>/dev/null) || true
        echo "$out" | python3 -c '
import json, sys
r, _ = json.JSONDecoder().raw_decode(sys.stdin.read())  # the JSON report, then the text one
mbit = r["bytes_per_player_min"] * 8 / r["seconds"] / 1e6
stalls, gaps, errors = r["stalls"], r["counter_gaps"], len(r["errors"])
print(f"send buffer {sys.argv[1]:>7}: slowest player {mbit:.2f} Mbit/s, stalls {stalls}, counter gaps (skips) {gaps}, errors {errors}")
' "$size"
        stop_stack
    done
    kill "$line" 2>/dev/null || true
    wait "$line" 2>/dev/null || true
    line=""
    ip netns del $SRV
    ip netns del $CLI
done

# (2) Players that read nothing, on loopback in one namespace.
ip netns add $SRV
ip netns exec $SRV ip link set lo up
ip netns exec $SRV ip addr add 10.213.0.1/32 dev lo
echo "== $STALLED players that read nothing (after 10 s; the write timeout drops them at 30 s)"
for size in "${SIZES[@]}"; do
    start_stack "$size"
    ip netns exec $SRV python3 - "$STALLED" <<'EOF' &
import socket, sys, time
socks = []
for i in range(int(sys.argv[1])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the reader holds little: what piles up is acemux's
    s.connect(("10.213.0.1", 8000))
    s.sendall(b"GET /ace/getstream?id=" + b"ab" * 20 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    socks.append(s)
time.sleep(15)
EOF
    pids+=($!)
    sleep 10
    queued=$(ip netns exec $SRV ss -tnH state established '( sport = :8000 )' | awk '{q += $2} END {print q + 0}')
    echo "send buffer ${size}: ${queued} bytes unsent in the kernel for ${STALLED} players ($((queued / STALLED / 1024)) KiB each)"
    stop_stack
done
