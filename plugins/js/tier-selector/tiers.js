// The rule of the tier selector, free of any WebAssembly binding so that
// `node --test` can run it as it is.

/**
 * The selector's settings from its `[config]`: `label` (default `tier`)
 * names the engine label to look at; `tiers` maps a player address prefix
 * to the tier its players get (longest prefix wins); `default` is the tier
 * of everyone else (none: no opinion). Throws on a wrong type, naming it.
 */
export function settingsFromConfig(config) {
  const label = config.label ?? 'tier';
  const tiers = config.tiers ?? {};
  if (typeof label !== 'string') throw new Error('`label` must be a string');
  if (typeof tiers !== 'object' || Array.isArray(tiers)) throw new Error('`tiers` must be a table');
  for (const [prefix, tier] of Object.entries(tiers)) {
    if (typeof tier !== 'string') throw new Error(`\`tiers\`: the tier of ${JSON.stringify(prefix)} must be a string`);
  }
  if (config.default !== undefined && typeof config.default !== 'string') {
    throw new Error('`default` must be a string');
  }
  // Longest prefix first.
  const prefixes = Object.keys(tiers).sort((a, b) => b.length - a.length);
  return { label, tiers, prefixes, fallback: config.default ?? null };
}

/** The tier of a player (`ip:port`, or none), or null. */
export function tierOf(settings, clientAddress) {
  if (clientAddress) {
    const prefix = settings.prefixes.find((p) => clientAddress.startsWith(p));
    if (prefix !== undefined) return settings.tiers[prefix];
  }
  return settings.fallback;
}

/**
 * Among `engines` (objects with `id`, `labels` as [name, value] pairs,
 * `forwarded`, `active`, `pending`, `capacity`), the one to use for a
 * player of `tier`: the least loaded of that tier, port-forwarded first,
 * then by id so the answer is stable. Null when no engine has the tier.
 */
export function choose(settings, tier, engines) {
  if (tier === null) return null;
  let best = null;
  for (const e of engines) {
    if (!e.labels.some(([name, value]) => name === settings.label && value === tier)) continue;
    if (best === null || better(e, best)) best = e;
  }
  return best === null ? null : best.id;
}

function better(a, b) {
  if (a.forwarded !== b.forwarded) return a.forwarded;
  const load = (e) => (e.active + e.pending) / Math.max(e.capacity, 1);
  if (load(a) !== load(b)) return load(a) < load(b);
  return a.id < b.id;
}
