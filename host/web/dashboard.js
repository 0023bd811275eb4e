// acemux dashboard: reads the live feed (/proxy/events, one status
// snapshot a second), draws streams, engines, plugins and channels, and
// plays a channel through acemux's HLS output. Plain JavaScript, no build.
"use strict";

const HISTORY = 300; // samples kept per stream (5 minutes at one a second)
const TOKEN_KEY = "acemux-admin-token";
const $ = (id) => document.getElementById(id);

const history = new Map(); // stream key -> [{t, bytes, players}]
let last = null; // latest snapshot
let hls = null; // hls.js instance while watching
let latencyTimer = null; // shows hls.js's latency while watching
let channelsShown = "";
let channels = []; // the channel list, sent again only when it changed

// ---- small helpers -------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function bits(bps) {
  if (!isFinite(bps) || bps <= 0) return "—";
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + " Mbit/s";
  return (bps / 1e3).toFixed(0) + " kbit/s";
}

function bytes(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(0) + " KiB";
  return n + " B";
}

function age(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "—";
  const s = Math.floor(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

// ---- the live feed -------------------------------------------------------

function setFeed(text, cls) {
  const f = $("feed");
  f.textContent = text;
  f.className = "badge " + cls;
}

// A server-sent-events reader over fetch (EventSource cannot send the
// admin token), reconnecting by itself when acemux goes away.
async function follow() {
  for (;;) {
    let wait = 2000;
    try {
      const response = await fetch("/proxy/events", { headers: authHeaders(), cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        if (token()) sessionStorage.removeItem(TOKEN_KEY);
        setFeed(response.status === 403 ? "wrong admin token" : "status needs the admin token", "bad");
        $("sign-in").hidden = false;
        wait = 5000;
      } else if (!response.ok || !response.body) {
        setFeed("acemux answered " + response.status, "bad");
      } else {
        setFeed("live", "ok");
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (data) receive(JSON.parse(data));
          }
        }
      }
    } catch (e) {
      // acemux restarting, or the network: try again shortly.
    }
    if ($("feed").classList.contains("ok")) setFeed("reconnecting…", "warn");
    await new Promise((r) => setTimeout(r, wait));
  }
}

function receive(doc) {
  last = doc;
  for (const s of doc.sessions) {
    const key = s.ace_id + "/" + s.stream_id;
    const h = history.get(key) || [];
    const es = s.engine_stats;
    h.push({ t: doc.time, bytes: s.counters.upstream_bytes, players: s.client_count, speed: es ? es.speed_down ?? null : null });
    if (h.length > HISTORY) h.shift();
    history.set(key, h);
  }
  const live = new Set(doc.sessions.map((s) => s.ace_id + "/" + s.stream_id));
  for (const k of history.keys()) if (!live.has(k)) history.delete(k);
  render(doc);
}

// ---- drawing -------------------------------------------------------------

function channelName(_doc, id) {
  const c = channels.find((c) => c.id === id);
  return c ? c.name : id;
}

function stateClass(state) {
  if (state === "live") return "ok";
  if (state === "starting" || state === "prebuffering" || state === "recovering") return "warn";
  return "bad";
}

function rate(h) {
  if (h.length < 2) return NaN;
  const a = h[Math.max(0, h.length - 6)];
  const b = h[h.length - 1];
  return b.t > a.t ? ((b.bytes - a.bytes) * 8) / (b.t - a.t) : NaN;
}

const SVG = "http://www.w3.org/2000/svg";

// An empty chart `width` × `height` with its tooltip.
function chart(cls, width, height, tip) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", cls);
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("role", "img");
  const title = document.createElementNS(SVG, "title");
  title.textContent = tip;
  svg.append(title);
  return svg;
}

// `values` as a line across `svg`: a minute wide at first, then the whole
// history, scaled to the largest value.
function line(svg, values, cls) {
  if (values.length < 2) return;
  const [, , width, height] = svg.getAttribute("viewBox").split(" ").map(Number);
  const max = Math.max(...values, 1);
  const step = width / Math.max(values.length - 1, 59);
  const x0 = width - step * (values.length - 1);
  const points = values.map((v, i) => (x0 + i * step).toFixed(1) + "," + (height - 2 - (v / max) * (height - 4)).toFixed(1));
  const p = document.createElementNS(SVG, "polyline");
  p.setAttribute("class", cls);
  p.setAttribute("points", points.join(" "));
  svg.append(p);
}

function minutes(h) {
  return Math.round((h.length - 1) / 60) + " min";
}

function sparkline(h) {
  const svg = chart("spark", 120, 28, "bitrate in (solid) and players (dashed), last " + minutes(h));
  const rates = [];
  for (let i = 1; i < h.length; i++) {
    const dt = h[i].t - h[i - 1].t;
    rates.push(dt > 0 ? ((h[i].bytes - h[i - 1].bytes) * 8) / dt : 0);
  }
  line(svg, rates, "rate");
  line(svg, h.map((x) => x.players), "players");
  return svg;
}

// The engine's download speed (KB/s) over the history.
function speedline(h) {
  const svg = chart("spark speed", 60, 20, "the engine's download speed, last " + minutes(h));
  line(svg, h.map((x) => x.speed).filter((v) => v !== null && v !== undefined), "speed");
  return svg;
}

function cell(label, content, cls) {
  const td = el("td", { "data-label": label, class: cls });
  td.append(content instanceof Node ? content : document.createTextNode(String(content)));
  return td;
}

function renderSummary(doc) {
  const summary = $("summary");
  summary.replaceChildren(
    el("div", {}, el("b", {}, doc.sessions.length), "streams"),
    el("div", {}, el("b", {}, doc.total_clients), "players"),
    el("div", {}, el("b", {}, doc.engines.filter((e) => e.healthy).length + " / " + doc.engines.length), "engines healthy"),
    el("div", {}, el("b", {}, doc.connections.open), "connections"),
    el("div", {}, el("b", {}, age(doc.uptime_seconds)), "up"),
  );
}

function renderStreams(doc) {
  const body = $("streams").tBodies[0];
  const rows = [];
  for (const s of doc.sessions) {
    const h = history.get(s.ace_id + "/" + s.stream_id) || [];
    const state = s.state.state;
    const b = s.buffer;
    const c = s.counters;
    const fill = b.capacity_bytes ? Math.round((100 * b.bytes) / b.capacity_bytes) : 0;
    const actions = el("td", { "data-label": "Actions" });
    const name = s.channel ? s.channel.name : channelName(doc, s.ace_id);
    actions.append(el("button", { type: "button", "data-watch": s.ace_id, onclick: () => watch(hlsUrl(s), name) }, "Play"));
    if (doc.admin) {
      actions.append(" ", el("button", { type: "button", class: "danger", "data-stop": s.ace_id, onclick: () => stopStream(s.ace_id) }, "Stop"));
    }
    const players = cell("Players", s.ts_players + " TS + " + s.hls_viewers + " HLS", "num");
    players.dataset.total = s.client_count;
    players.dataset.ts = s.ts_players;
    players.dataset.hls = s.hls_viewers;
    players.dataset.field = "players";
    const es = s.engine_stats;
    const peers = cell("Peers", es && es.peers !== undefined && es.peers !== null ? es.peers : "—", "num");
    peers.dataset.field = "peers";
    const speed = cell("Speed", es && es.speed_down !== null && es.speed_down !== undefined ? es.speed_down + " KB/s " : "— ", "num");
    speed.dataset.field = "speed";
    speed.append(speedline(h));
    const engine = cell("Engine", s.engine_id ?? "—");
    engine.dataset.field = "engine";
    const tr = el("tr", { "data-stream": s.ace_id });
    tr.append(
      cell("Channel", s.channel ? channelCell(s.channel) : name),
      cell("State", el("span", { class: "state " + stateClass(state) }, state)),
      engine,
      players,
      peers,
      speed,
      cell("Bitrate in", bits(rate(h)), "num"),
      cell("Buffer", fill + " % of " + bytes(b.capacity_bytes) + ", " + b.span_seconds.toFixed(1) + " s", "num"),
      cell("Keyframes", b.keyframes, "num"),
      cell("Events", c.skips + " / " + c.drops + " / " + c.reconnects + " / " + c.failovers, "num"),
      cell("Age", age(doc.time - s.created_at), "num"),
      cell("Last minutes", sparkline(h)),
      actions,
    );
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  $("no-streams").hidden = rows.length > 0;
}

// A channel with several ids: its name, the id it plays (n of m), its
// switches, and the latest ones (reason, wait, backoff) on hover.
function channelCell(ch) {
  const at = ch.ids.findIndex((i) => i.playing) + 1;
  const left = ch.ids.filter((i) => i.retry_in_s !== null && i.retry_in_s !== undefined).length;
  const line = "id " + at + " of " + ch.ids.length + (ch.switches ? " · " + ch.switches + " switch" + (ch.switches > 1 ? "es" : "") : "") + (left ? " · " + left + " backing off" : "");
  const detail = el("small", { class: "channel-ids", "data-field": "channel" }, line);
  detail.title = ch.history.slice(-5).map((w) =>
    w.from.slice(0, 8) + " → " + w.to.slice(0, 8) + ": " + w.reason.replace("_", " ") +
    (w.wait_s !== null && w.wait_s !== undefined ? ", players waited " + w.wait_s.toFixed(1) + " s" : "") +
    ", retry in " + Math.round(w.backoff_s) + " s").join("\n") || "no switch yet";
  return el("span", {}, ch.name, el("br"), detail);
}

function hlsUrl(s) {
  if (s.key_type === "channel") return "/ace/manifest.m3u8?channel=" + s.ace_id;
  if (s.key_type !== "infohash" && s.key_type !== "content_id") {
    // Named by URL or magnet, or with output parameters: its own HLS by id.
    return "/hls/" + s.ace_id + "/index.m3u8";
  }
  return "/ace/manifest.m3u8?" + (s.key_type === "infohash" ? "infohash" : "content_id") + "=" + s.ace_id;
}

function renderChannels(doc) {
  if (doc.channels) channels = doc.channels;
  const group = $("channel-group").value;
  const shown = JSON.stringify([channels, group]);
  if (shown === channelsShown) return;
  channelsShown = shown;
  const groups = [...new Set(channels.map((c) => c.group).filter((g) => g))].sort();
  $("channel-group").replaceChildren(
    el("option", { value: "" }, "every group"),
    ...groups.map((g) => el("option", g === group ? { value: g, selected: "" } : { value: g }, g)),
  );
  const items = channels
    .filter((c) => !group || c.group === group)
    .map((c) =>
      el(
        "li",
        {},
        el("span", { class: "muted num" }, c.number ?? ""),
        c.logo ? el("img", { src: c.logo, alt: "" }) : "",
        el("span", {}, c.name),
        c.group ? el("span", { class: "muted" }, c.group) : "",
        c.source ? el("span", { class: "muted" }, "from " + c.source) : "",
        el("button", { type: "button", "data-play": c.id, onclick: () => watch(c.hls, c.name) }, "Play"),
      ),
    );
  $("channels").replaceChildren(...items);
  $("channel-count").textContent = channels.length ? "(" + channels.length + ")" : "";
  $("no-channels").hidden = items.length > 0;
}

function ago(unix) {
  if (!unix) return "never";
  const s = Math.max(0, Date.now() / 1000 - unix);
  if (s < 90) return s.toFixed(0) + " s ago";
  if (s < 5400) return (s / 60).toFixed(0) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

function renderSources(doc) {
  const rows = (doc.sources ?? []).map((src) => {
    const state = src.error ? ["failing", "bad"] : src.last_success ? ["ok", "ok"] : ["waiting", "warn"];
    const guide = src.guide ? (src.guide.error ? "failing" : src.guide.programmes + " programmes") : "—";
    return el(
      "tr",
      { "data-source": src.name },
      cell("Source", el("span", {}, src.name, " ", el("span", { class: "state " + state[1] }, state[0]))),
      cell("Kind", src.kind),
      cell("Channels", src.channels, "num"),
      cell("Skipped / excluded", src.skipped + " / " + src.excluded, "num"),
      cell("Last refresh", ago(src.last_success)),
      cell("Guide", guide),
      cell("Error", src.error ?? "—", src.error ? "errortext" : ""),
    );
  });
  $("sources").tBodies[0].replaceChildren(...rows);
  $("no-sources").hidden = rows.length > 0;
}

// Who may watch: each user's players and streams against its limits
// (full status only: a redacted one gives the count of users alone).
function renderUsers(doc) {
  const access = doc.access ?? {};
  const users = Array.isArray(access.users) ? access.users : [];
  $("users-section").hidden = users.length === 0;
  $("access-mode").textContent = access.player_access ? "(access: " + access.player_access + ")" : "";
  const of = (n, max) => (max ? n + " / " + max : String(n));
  const rows = users.map((u) =>
    el(
      "tr",
      { "data-user": u.name },
      cell("User", u.name),
      cell("Players", of(u.players, u.max_players), "num"),
      cell("Streams", of(u.streams, u.max_streams), "num"),
      cell("Groups", u.groups ? u.groups.join(", ") : "every group"),
    ),
  );
  $("users").tBodies[0].replaceChildren(...rows);
  const file = access.users_file;
  $("users-file").hidden = !file;
  if (file) {
    $("users-file").textContent = "Users file: " + file.users + " users" + (file.error ? " — not taken: " + file.error : "");
    $("users-file").className = file.error ? "errortext" : "muted";
  }
}

function renderEngines(doc) {
  const rows = doc.engines.map((e) => {
    const health = e.draining ? ["draining", "warn"] : e.healthy ? ["healthy", "ok"] : ["unhealthy", "bad"];
    const labels = e.labels ? Object.entries(e.labels).map(([k, v]) => k + "=" + v).join(", ") : "";
    return el(
      "tr",
      {},
      cell("Engine", e.id ?? "(hidden)"),
      cell("Health", el("span", { class: "state " + health[1] }, health[0])),
      cell("Load", e.load + " / " + e.capacity, "num"),
      cell("Pending", e.pending, "num"),
      cell("Forwarded", e.forwarded ? "yes" : "no"),
      cell("Labels", labels || "—"),
      cell("Last error", e.last_error ?? "—", e.last_error ? "errortext" : ""),
    );
  });
  $("engines").tBodies[0].replaceChildren(...rows);
}

// What a loaded plugin holds: native code plus its live instances' memory.
function memoryCell(m) {
  if (!m) return cell("Memory", "—", "num");
  const td = cell("Memory", bytes(m.total_bytes), "num");
  td.title = `native code ${bytes(m.code_bytes)}, ${m.instances} instance(s) with ${bytes(m.linear_bytes)} of memory`;
  return td;
}

function renderPlugins(doc) {
  const list = doc.plugins.plugins || [];
  const rows = list.map((p) => {
    const caps = p.capabilities ? Object.entries(p.capabilities).filter(([, v]) => v).map(([k]) => k).join(", ") : "—";
    const cls = p.status === "active" ? "ok" : p.status === "disabled" ? "warn" : "bad";
    const why = p.disabled_reason || p.error || p.reload_error;
    const status = el("span", {}, el("span", { class: "state " + cls }, p.status));
    if (why) status.append(el("div", { class: "errortext" }, why));
    const rec = p.recovery;
    if (rec && p.status === "disabled") {
      const when = rec.retry_at ? `retried in ${Math.max(0, rec.retry_at - Date.now() / 1000).toFixed(0)} s` : "stays off until its file changes";
      const relapses = rec.relapses ? `, ${rec.relapses} relapse${rec.relapses === 1 ? "" : "s"}` : "";
      status.append(el("div", { class: "errortext" }, when + relapses));
    }
    const st = p.stats || {};
    return el(
      "tr",
      {},
      cell("Plugin", p.name ?? "?"),
      cell("Phase", caps || "—"),
      cell("Status", status),
      cell("Calls", st.calls ?? "—", "num"),
      cell("Errors", st.errors ?? "—", "num"),
      cell("Timeouts", st.timeouts ?? "—", "num"),
      cell("p99 call", st.p99_call_us !== undefined ? st.p99_call_us.toFixed(0) + " µs" : "—", "num"),
      memoryCell(p.memory),
    );
  });
  $("plugins").tBodies[0].replaceChildren(...rows);
  $("no-plugins").hidden = rows.length > 0;
}

function render(doc) {
  $("version").textContent = doc.version;
  $("sign-in").hidden = doc.admin || !doc.admin_token_set;
  $("sign-out").hidden = !token();
  renderSummary(doc);
  renderStreams(doc);
  renderChannels(doc);
  renderSources(doc);
  renderUsers(doc);
  renderEngines(doc);
  renderPlugins(doc);
}

// ---- watching --------------------------------------------------------------

function watch(url, label) {
  stopWatching();
  const video = $("player");
  $("watch").hidden = false;
  $("watching").textContent = label;
  $("player-state").textContent = "";
  if (window.Hls && window.Hls.isSupported()) {
    // Low-Latency HLS: hls.js keeps the playlist's PART-HOLD-BACK behind
    // the live edge, with blocking reloads and part requests; when it falls
    // further behind (its start lands before a keyframe, a stall) it plays
    // up to 10% faster until it is back (pitch kept).
    hls = new window.Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.1 });
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) $("player-state").textContent = "playback error: " + data.details;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    latencyTimer = setInterval(showLatency, 1000);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // Safari, iOS: native HLS
  } else {
    $("player-state").textContent = "this browser cannot play HLS";
    return;
  }
  video.play().catch(() => {
    $("player-state").textContent = "press play to start";
  });
}

function showLatency() {
  const latency = hls ? hls.latency : NaN;
  const shown = Number.isFinite(latency) && latency > 0;
  $("player-latency").textContent = shown ? latency.toFixed(1) + " s behind live" : "";
  $("player-latency").dataset.latency = shown ? latency.toFixed(3) : "";
}

function stopWatching() {
  clearInterval(latencyTimer);
  latencyTimer = null;
  $("player-latency").textContent = "";
  if (hls) {
    hls.destroy();
    hls = null;
  }
  const video = $("player");
  video.pause();
  video.removeAttribute("src");
  video.load();
  $("watch").hidden = true;
}

// ---- admin -----------------------------------------------------------------

async function stopStream(id) {
  const name = last ? channelName(last, id) : id;
  if (!confirm("Stop " + name + " for every player?")) return;
  const r = await fetch("/proxy/sessions/" + id, { method: "DELETE", headers: authHeaders() });
  if (!r.ok) alert("Stop failed: " + (await r.text()));
}

function signIn() {
  const t = prompt("Admin token");
  if (!t) return;
  sessionStorage.setItem(TOKEN_KEY, t.trim());
  location.reload();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

$("sign-in").addEventListener("click", signIn);
$("sign-out").addEventListener("click", signOut);
$("stop-watching").addEventListener("click", stopWatching);
$("channel-group").addEventListener("change", () => last && renderChannels(last));
follow();
