// The rule of the pid-drop filter, free of any WebAssembly binding so that
// `node --test` can run it as it is.

export const PACKET = 188;

/** The PID of the 188-byte packet at `at`. */
export function pidAt(packets, at) {
  return ((packets[at + 1] & 0x1f) << 8) | packets[at + 2];
}

/**
 * The set of PIDs to drop from a plugin's `[config]` (`pids = [..]`,
 * numbers 0..8191). Throws on anything else, so a typo is a load-time
 * error in acemux's log rather than a filter that silently drops nothing.
 */
export function pidsFromConfig(config) {
  const pids = config.pids ?? [];
  if (!Array.isArray(pids)) throw new Error('`pids` must be a list of PIDs');
  return new Set(
    pids.map((pid) => {
      if (!Number.isInteger(pid) || pid < 0 || pid > 0x1fff) {
        throw new Error(`\`pids\`: ${JSON.stringify(pid)} is not a PID (0..8191)`);
      }
      return pid;
    }),
  );
}

/**
 * `packets` (whole 188-byte packets) without those whose PID is in `drop`.
 * Returns the input itself when nothing is dropped.
 */
export function dropPids(packets, drop) {
  if (drop.size === 0) return packets;
  let kept = 0;
  const out = new Uint8Array(packets.length);
  for (let at = 0; at + PACKET <= packets.length; at += PACKET) {
    if (drop.has(pidAt(packets, at))) continue;
    out.set(packets.subarray(at, at + PACKET), kept);
    kept += PACKET;
  }
  return kept === packets.length ? packets : out.subarray(0, kept);
}
