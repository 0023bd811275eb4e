#!/usr/bin/env bash
# CPU an idle acemux spends in 10 s: with an empty plugin directory (`dir`)
# or with plugins off (`none`). No engine traffic (the engine address is
# closed, so only the 10-s health probe runs).
#   tests/bench/idle-cpu.sh ./target/release/acemux dir 18101
set -euo pipefail
bin=$1 plugins=$2 port=${3:-18101}
dir=$(mktemp -d)
if [ "$plugins" = dir ]; then p="$dir/plugins.d"; else p=none; fi
"$bin" --listen "127.0.0.1:$port" --engine 127.0.0.1:1 --plugins "$p" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
a=$(ticks)
sleep 10
b=$(ticks)
echo "$bin plugins=$plugins: $(awk -v a="$a" -v b="$b" -v t="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/t}') CPU-s in 10 s idle"
