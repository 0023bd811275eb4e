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

/** A PID set as a mask indexed by PID: cheaper per packet than `Set.has`. */
export function pidMask(pids) {
  const mask = new Uint8Array(0x2000);
  for (const pid of pids) mask[pid] = 1;
  return mask;
}

/**
 * `packets` (whole 188-byte packets) without those whose PID is set in
 * `mask` (see `pidMask`). Returns the input itself when nothing is dropped.
 * With `dropped` (a `Uint32Array(0x2000)`), counts the packets dropped
 * per PID into it.
 */
export function dropPids(packets, mask, dropped) {
  // Copies runs of kept packets, not packet by packet: every call into
  // the typed array costs the interpreter more than the bytes it moves.
  let out = null;
  let kept = 0;
  let runStart = 0;
  for (let at = 0; at + PACKET <= packets.length; at += PACKET) {
    const pid = ((packets[at + 1] & 0x1f) << 8) | packets[at + 2];
    if (mask[pid] === 0) continue;
    if (dropped) dropped[pid] += 1;
    if (out === null) out = new Uint8Array(packets.length);
    out.set(packets.subarray(runStart, at), kept);
    kept += at - runStart;
    runStart = at + PACKET;
  }
  if (out === null) return packets;
  out.set(packets.subarray(runStart), kept);
  kept += packets.length - runStart;
  return out.subarray(0, kept);
}

/**
 * Adds the counts of `dropped` (see `dropPids`) for `pids` to `counter`
 * (labelled by PID), and clears them.
 */
export function reportDropped(counter, pids, dropped) {
  for (const pid of pids) {
    if (dropped[pid] > 0) {
      counter.add(dropped[pid], String(pid));
      dropped[pid] = 0;
    }
  }
}
