#!/usr/bin/env bash
# Plugin cost by language: component size, compile (load) time fresh and
# from the compile cache, memory of acemux with the plugin loaded, and the
# selector call time over 40 stream starts with 8 engines, for the Rust
# `sticky-engine`, the Python `region-selector` and the JavaScript
# `tier-selector`; then the plugins bench (criterion) with the Python and
# JavaScript components beside the Rust ones: selector call, 64 KiB filter
# batch (JavaScript `pid-drop` set to drop null packets, like the Rust
# `null-strip`), instantiation, memory per instance; and all of that again
# with every plugin compiled by Winch instead of Cranelift.
#
#   cargo build --release -p acemux -p ace-sim
#   cargo build --profile plugin --target wasm32-wasip2 -p sticky-engine
#   npm install --prefix plugins/js
#   tests/bench/plugin-languages.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
acemux=target/release/acemux
sim=target/release/ace-sim

(cd plugins/python/region-selector &&
    componentize-py -d ../../../wit -w selector-plugin componentize app -o "$work/region-selector.wasm" >/dev/null)
(cd plugins/js && npm run --silent build >/dev/null && mv tier-selector.wasm pid-drop.wasm "$work/")
cp target/wasm32-wasip2/plugin/sticky_engine.wasm "$work/sticky-engine.wasm"

{
    printf 'max_streams_per_engine = 100\n'
    for i in 1 2 3 4 5 6 7 8; do
        "$sim" --listen "127.0.0.1:1710$i" --bitrate 200000 >/dev/null 2>&1 &
        region=$([ $((i % 2)) -eq 0 ] && echo local || echo far)
        tier=$([ $((i % 2)) -eq 0 ] && echo gold || echo silver)
        printf '[[engines]]\naddress = "127.0.0.1:1710%s"\nlabels = { region = "%s", tier = "%s" }\n' "$i" "$region" "$tier"
    done
} > "$work/acemux.toml"

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# name, file, toml
run() {
    local name=$1 wasm=$2 toml=${3:-}
    rm -rf "$work/plugins" && mkdir -p "$work/plugins" "$work/cache"
    cp "$wasm" "$work/plugins/$name.wasm"
    [ -n "$toml" ] && cp "$toml" "$work/plugins/$name.toml"
    for pass in fresh cached; do
        [ $pass = fresh ] && rm -rf "$work/cache"/*
        "$acemux" --config "$work/acemux.toml" --listen 127.0.0.1:17100 --plugins "$work/plugins" \
            --plugin-cache "$work/cache" --dashboard off --grace-period 0.2 >/dev/null 2>&1 &
        local pid=$! started
        started=$(date +%s.%N)
        until curl -sf http://127.0.0.1:17100/healthz >/dev/null; do sleep 0.05; done
        local ready
        ready=$(date +%s.%N)
        local plugin
        plugin=$(curl -s http://127.0.0.1:17100/plugins | python3 -c "import json,sys; p=[p for p in json.load(sys.stdin)['plugins'] if p['name']=='$name'][0]; print(p['compiled'], round(p['compile_ms']))")
        local rss
        rss=$(rss_kib $pid)
        if [ $pass = cached ]; then
            for n in $(seq 1 40); do
                curl -s -m 0.3 -o /dev/null "http://127.0.0.1:17100/ace/getstream?id=$(printf '%08x' $n)bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" || true
            done
            local calls
            calls=$(curl -s http://127.0.0.1:17100/plugins | python3 -c "import json,sys; p=[p for p in json.load(sys.stdin)['plugins'] if p['name']=='$name'][0]['stats']; print(p['calls'], 'calls, mean', round(p['mean_call_us'],1), 'us, p99', round(p['p99_call_us'],1), 'us')")
            echo "$name: $calls"
        fi
        printf '%s %s: compiled %s, start to ready %.2f s, RSS %.1f MiB\n' "$name" $pass "$plugin" \
            "$(echo "$ready - $started" | bc)" "$(echo "$rss / 1024" | bc -l)"
        kill -TERM $pid && wait $pid 2>/dev/null || true
    done
    printf '%s: component %.1f MB\n' "$name" "$(echo "$(stat -c %s "$wasm") / 1000000" | bc -l)"
}

"$acemux" --config "$work/acemux.toml" --listen 127.0.0.1:17100 --plugins none --dashboard off >/dev/null 2>&1 &
pid=$!
until curl -sf http://127.0.0.1:17100/healthz >/dev/null; do sleep 0.05; done
printf 'no plugins: RSS %.1f MiB\n' "$(echo "$(rss_kib $pid) / 1024" | bc -l)"
kill -TERM $pid && wait $pid 2>/dev/null || true

run sticky-engine "$work/sticky-engine.wasm"
run region-selector "$work/region-selector.wasm" plugins/python/region-selector/region-selector.toml
run tier-selector "$work/tier-selector.wasm" plugins/js/tier-selector/tier-selector.toml

mkdir -p "$work/languages"
cp "$work/region-selector.wasm" plugins/python/region-selector/region-selector.toml \
    "$work/tier-selector.wasm" plugins/js/tier-selector/tier-selector.toml "$work/pid-drop.wasm" "$work/languages/"
sed 's/^pids = .*/pids = [8191]/' plugins/js/pid-drop/pid-drop.toml > "$work/languages/pid-drop.toml"
for compiler in cranelift winch; do
    echo "== plugins compiled by $compiler"
    ACEMUX_BENCH_COMPILER=$compiler ACEMUX_BENCH_PLUGINS="$work/languages" cargo bench -q -p acemux --bench plugins 2>&1 |
        grep -E '^(selector|filter|instantiate|[a-z-]+: (component|compiled))|time:|thrpt:'
done
