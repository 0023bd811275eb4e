#!/usr/bin/env bash
# The programme guide at size: a generated XMLTV guide of 1000 channels x
# 150 programmes (68 MB, each with a 270-byte description; 1.5 MB gzipped),
# read as a [[guides]] file, plain and gzipped, for a 1000-channel M3U
# source. Prints the time to the guide's first read, RSS (idle, after the
# read, after serving /epg.xml), and what /epg.xml costs the first time
# (render + compress), again (kept), plain and gzip, and 8 at once.
#   tests/bench/guide.sh ./target/release/acemux
set -euo pipefail
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import sys, time
d = sys.argv[1]
N, P = 1000, 150
now = int(time.time()) // 3600 * 3600
fmt = lambda t: time.strftime("%Y%m%d%H%M%S +0000", time.gmtime(t))
with open(f"{d}/list.m3u", "w") as f:
    f.write("#EXTM3U\n")
    for i in range(N):
        f.write(f'#EXTINF:-1 tvg-id="ch{i}.tv" group-title="G{i % 20}",Channel {i}\nacestream://{i:040x}\n')
with open(f"{d}/guide.xml", "w") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<tv>\n')
    for i in range(N):
        f.write(f'<channel id="ch{i}.tv"><display-name>Channel {i}</display-name></channel>\n')
    desc = "A description of the show &amp; its guests. " * 6
    for i in range(N):
        for p in range(P):
            s = now - 6 * 3600 + p * 1800
            f.write(f'<programme start="{fmt(s)}" stop="{fmt(s + 1800)}" channel="ch{i}.tv"><title lang="en">Show {p} on {i}</title><desc lang="en">{desc}</desc><category>Sport</category></programme>\n')
    f.write("</tv>\n")
PY
gzip -k "$dir/guide.xml"
kib() { awk -v k="$1" '$1 == k ":" {print int($2 / 1024)}' "/proc/$2/status"; }
for guide in guide.xml guide.xml.gz; do
    printf '[[sources]]\nname = "big"\nkind = "m3u"\npath = "%s/list.m3u"\n\n[[guides]]\nname = "big"\npath = "%s/%s"\n' "$dir" "$dir" "$guide" > "$dir/acemux.toml"
    port=$((20000 + RANDOM % 10000))
    start=$(date +%s.%N)
    RUST_LOG=warn "$bin" --config "$dir/acemux.toml" --listen "127.0.0.1:$port" --plugins none --engine 127.0.0.1:9 --dashboard off >/dev/null 2>&1 &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/proxy/status" | python3 -c 'import json, sys; g = json.load(sys.stdin)["guides"]; sys.exit(0 if g and g[0]["programmes"] > 0 else 1)' 2>/dev/null; do sleep 0.05; done
    ready=$(date +%s.%N)
    kept=$(curl -sf "http://127.0.0.1:$port/proxy/status" | python3 -c 'import json, sys; g = json.load(sys.stdin)["guides"][0]; print(g["channels"], "channels,", g["programmes"], "programmes")')
    read_rss=$(kib VmRSS $pid)
    first=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/epg.xml")
    plain=$(curl -s -o /dev/null -w '%{time_total} s, %{size_download} bytes' "http://127.0.0.1:$port/epg.xml")
    gz=$(curl -s -H 'accept-encoding: gzip' -o /dev/null -w '%{time_total} s, %{size_download} bytes' "http://127.0.0.1:$port/epg.xml")
    curls=(); for _ in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null "http://127.0.0.1:$port/epg.xml" & curls+=($!); done
    wait "${curls[@]}"
    echo "$guide: read $(echo "$ready - $start" | bc) s after start ($kept); RSS after the read $read_rss MiB, after serving $(kib VmRSS $pid) MiB (peak $(kib VmHWM $pid)); /epg.xml first $first s, then plain $plain, gzip $gz"
    kill $pid; wait $pid 2>/dev/null || true
done
printf '[[sources]]\nname = "big"\nkind = "m3u"\npath = "%s/list.m3u"\n' "$dir" > "$dir/idle.toml"
"$bin" --config "$dir/idle.toml" --listen 127.0.0.1:29999 --plugins none --engine 127.0.0.1:9 --dashboard off >/dev/null 2>&1 &
pid=$!; sleep 2
echo "no guide (the same 1000 channels): RSS $(kib VmRSS $pid) MiB"
kill $pid; wait $pid 2>/dev/null || true
