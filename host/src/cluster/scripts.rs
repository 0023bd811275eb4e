//! The Lua scripts that make each cluster operation atomic in Redis.
//!
//! Times are Redis's own clock (`TIME`), never an instance's: instances on
//! different machines agree on when a lease expired without synchronised
//! clocks. Slot leases are sorted-set members scored by their expiry, so an
//! expired member stays visible (and its engine session can be stopped by a
//! survivor) until a sweep removes it.

use std::sync::LazyLock;

use redis::Script;

/// Redis's clock in milliseconds, as a Lua prelude.
macro_rules! now_ms {
    () => {
        "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    };
}

/// KEYS[1] content key; ARGV owner value, lease ms, `" <advertise url>"`.
/// Takes the content if free or ours (renewing the lease) — ours includes
/// a lease held under our address by an earlier process (a restart with a
/// new instance id: that process is gone, we listen there now). Returns
/// the owner value either way.
pub static CLAIM_CONTENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local v = redis.call('GET', KEYS[1])
         if v == false or v == ARGV[1] or string.sub(v, -string.len(ARGV[3])) == ARGV[3] then
           redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
           return ARGV[1]
         end
         return v",
    )
});

/// KEYS[1] content key; ARGV owner value. Deletes it only if ours.
pub static RELEASE_CONTENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
         return 0",
    )
});

/// KEYS[1] engine's slot set; ARGV member, cap, lease ms. Takes a slot if
/// fewer than `cap` slots are held (renews a slot already held). A slot
/// whose instance died counts until a sweep has stopped its engine
/// session and released it: that session runs on the engine until then.
/// 1 = taken, 0 = full.
pub static TAKE_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        "local lease = tonumber(ARGV[3])
         if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
           redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
           return 1
         end
         if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
         redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
         redis.call('PEXPIRE', KEYS[1], lease * 20)
         return 1"
    ))
});

/// KEYS[1] slot set, KEYS[2] engine sessions hash; ARGV member, lease ms,
/// engine session command URL (`""`: none yet), cap. Renews a slot Redis
/// counts; one it does not (taken while Redis was unreachable, or lost
/// when Redis restarted empty) is added under the cap like a new one.
/// 1 = kept, 0 = the engine is full without it (its stream must move).
pub static KEEP_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        "local lease = tonumber(ARGV[2])
         if not redis.call('ZSCORE', KEYS[1], ARGV[1])
            and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
           return 0
         end
         redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
         redis.call('PEXPIRE', KEYS[1], lease * 20)
         if ARGV[3] ~= '' then
           redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
           redis.call('PEXPIRE', KEYS[2], lease * 20)
         end
         return 1"
    ))
});

/// KEYS[1] slot set, KEYS[2] engine sessions hash; ARGV member. Gives a
/// slot back.
pub static RELEASE_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('HDEL', KEYS[2], ARGV[1])
         return redis.call('ZREM', KEYS[1], ARGV[1])",
    )
});

/// KEYS[1] slot set, KEYS[2] engine sessions hash; ARGV lease ms. Finds
/// expired slots (their instance stopped renewing: it died). One whose
/// engine session is known stays counted, held by the caller for one more
/// lease, and comes back as `member, command URL`: the caller, and only it,
/// stops that session and then releases the slot (if it cannot, the slot
/// expires again and the next sweep retries). One without a session is
/// removed. Returns `{live slots, member, URL, member, URL…}`.
pub static SWEEP_SLOTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        "local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
         local out = {0}
         for _, member in ipairs(expired) do
           local url = redis.call('HGET', KEYS[2], member)
           if url then
             redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member)
             table.insert(out, member)
             table.insert(out, url)
           else
             redis.call('ZREM', KEYS[1], member)
           end
         end
         out[1] = redis.call('ZCOUNT', KEYS[1], now, '+inf')
         return out"
    ))
});

/// KEYS[1] instance set; ARGV instance id, lease ms. Marks this instance
/// alive, forgets dead ones, returns how many are alive.
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        now_ms!(),
        "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
         redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
         return redis.call('ZCARD', KEYS[1])"
    ))
});
