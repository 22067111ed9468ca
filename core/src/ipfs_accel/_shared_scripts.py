"""The Lua scripts of shared limits (``_shared``): one to admit an attempt, one to settle it,
one to renew leases, one to install the fingerprints' salt.

An endpoint's keys share one hash tag (one Redis Cluster slot), in this order:

1. ``budget`` (hash): ``r`` / ``t``, the theoretical arrival times (GCRA, server ms) of the
   next request and the next token;
2. ``pause`` (hash): ``until`` and ``reason`` of a pause (429 / overload with Retry-After,
   a token budget the server's headers say is spent); ``sf`` / ``sg`` / ``sn`` while the
   server says its requests budget is spent: when it is back, how far apart attempts go
   until it reports some left again, and when the next one may;
3. ``leases`` (sorted set): the cluster-wide concurrency slots, scored by their expiry;
4. ``queue`` (sorted set): the attempts waiting for a slot, scored by when they first
   asked: a freed slot goes to the longest waiting, not to whoever asks first after (the
   settle that frees it publishes the ids of the waiters whose turn it is on
   ``ipfs-accel:turn``, so they ask again at once rather than at their next poll);
5. ``alive`` (sorted set): when each waiter stops counting as one unless it asks again
   (a worker killed while waiting leaves the queue that soon);
6. ``health`` (hash): ``until``, the end of a cooldown after failures one worker saw,
   and ``off``, set while the key is refused (an authentication failure).

Times are the server's (``TIME``, ms), so hosts whose clocks differ agree.
"""

from __future__ import annotations

__all__ = ["ADMIT", "RENEW", "SALT", "SETTLE", "TURN"]

TURN = "ipfs-accel:turn"  # the channel of waiters whose turn it is

_KEEP = """
local function keep(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, math.ceil(ms)) end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""

# ARGV: ms per request, ms per token, tokens, max concurrent, lease id, lease ms, booked
# ('1': an earlier answer booked this attempt's budgets: pause and lease only), quiet ms.
# Returns {wait ms, why, reason (busy: the waiters ahead), TIME s, TIME us, lease held,
# health ('' well, 'off' refused key, or the ms left of a cooldown)}.
ADMIT = "-- ipfs-accel admit" + _KEEP + """
local maxc = tonumber(ARGV[4])
local lid = ARGV[5]
local held = 0
if maxc > 0 and redis.call('ZSCORE', KEYS[3], lid) then held = 1 end
local health = ''
local h = redis.call('HMGET', KEYS[6], 'off', 'until')
if h[1] then health = 'off'
elseif h[2] and tonumber(h[2]) > now then health = tostring(tonumber(h[2]) - now) end
local p = redis.call('HMGET', KEYS[2], 'until', 'reason', 'sf', 'sg', 'sn')
local pause = tonumber(p[1] or '0')
if pause > now then
  return {tostring(pause - now), 'pause', p[2] or '', t[1], t[2], held, health}
end
if maxc > 0 then
  if held == 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
    for i = 1, #gone do
      redis.call('ZREM', KEYS[4], gone[i])
      redis.call('ZREM', KEYS[5], gone[i])
    end
    local free = maxc - redis.call('ZCARD', KEYS[3])
    local waiting = redis.call('ZCARD', KEYS[4])
    local ahead = redis.call('ZRANK', KEYS[4], lid)
    if not ahead then ahead = waiting end
    if ahead >= free then
      local quiet = tonumber(ARGV[8])
      redis.call('ZADD', KEYS[4], 'NX', now, lid)
      redis.call('ZADD', KEYS[5], now + quiet, lid)
      keep(KEYS[4], quiet + 60000)
      keep(KEYS[5], quiet + 60000)
      local wait = 1
      if free <= 0 then
        local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
        wait = math.max(tonumber(first[2]) - now, 1)
      end
      return {tostring(wait), 'busy', tostring(ahead), t[1], t[2], 0, health}
    end
    if ahead < waiting then
      redis.call('ZREM', KEYS[4], lid)
      redis.call('ZREM', KEYS[5], lid)
    end
  end
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), lid)
  redis.call('PEXPIRE', KEYS[3], 2 * tonumber(ARGV[6]) + 60000)
  held = 1
end
local ri = tonumber(ARGV[1])
local ti = tonumber(ARGV[2])
local sf = tonumber(p[3] or '0')
if ARGV[7] ~= '1' and (ri > 0 or ti > 0 or sf > 0) then
  local b = redis.call('HMGET', KEYS[1], 'r', 't')
  local rt = tonumber(b[1] or '0')
  local tt = tonumber(b[2] or '0')
  local start = now
  if ri > 0 and rt > start then start = rt end
  if ti > 0 and tt > start then start = tt end
  local why = 'booked'
  if sf > 0 then
    local server = math.max(sf, tonumber(p[5] or '0'))
    if server > start then start = server; why = 'spent' end
    local gap = tonumber(p[4] or '0')
    redis.call('HSET', KEYS[2], 'sn', tostring(start + gap))
    keep(KEYS[2], start + gap - now + 60000)
  end
  if ri > 0 or ti > 0 then
    local ms = start - now + 60000
    if ri > 0 then redis.call('HSET', KEYS[1], 'r', tostring(start + ri)); ms = ms + ri end
    if ti > 0 then
      local booked = tonumber(ARGV[3]) * ti
      redis.call('HSET', KEYS[1], 't', tostring(start + booked)); ms = ms + booked
    end
    redis.call('PEXPIRE', KEYS[1], math.ceil(ms))
  end
  if start > now then return {tostring(start - now), why, '', t[1], t[2], held, health} end
end
return {'0', 'go', '', t[1], t[2], held, health}
"""

# Returns the server's TIME it read (for tests of the script).
# ARGV: lease id ('' none), tokens to add to the token budget (ms, negative: given back),
# pause ms (0 none), its reason, the requests budget spent (its reset in ms; -1: the server
# reports some left again; 0: nothing heard), health ('', 'well', 'sick' for a cooldown of
# the next ARGV's ms, 'off' marked for the next ARGV's ms), max concurrent, and the channel
# on which the ids of the waiters whose turn it is are published when a lease comes back.
SETTLE = "-- ipfs-accel settle" + _KEEP + """
if ARGV[1] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  -- the waiters whose turn it now is are told at once, wherever they are
  local free = tonumber(ARGV[8]) - redis.call('ZCARD', KEYS[3])
  if free > 0 then
    local turn = redis.call('ZRANGE', KEYS[4], 0, free - 1)
    if #turn > 0 then redis.call('PUBLISH', ARGV[9], table.concat(turn, ' ')) end
  end
end
local delta = tonumber(ARGV[2])
if delta ~= 0 then
  local tt = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
  if tt > 0 then redis.call('HSET', KEYS[1], 't', tostring(tt + delta)) end
end
local p = tonumber(ARGV[3])
if p > 0 then
  local cur = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
  if now + p > cur then
    redis.call('HSET', KEYS[2], 'until', tostring(now + p), 'reason', ARGV[4])
    keep(KEYS[2], p + 60000)
  end
end
local gap = tonumber(ARGV[5])
if gap > 0 then
  local sf = tonumber(redis.call('HGET', KEYS[2], 'sf') or '0')
  if now + gap > sf then sf = now + gap end
  redis.call('HSET', KEYS[2], 'sf', tostring(sf), 'sg', tostring(gap))
  keep(KEYS[2], sf - now + gap + 60000)
elseif gap < 0 then
  redis.call('HDEL', KEYS[2], 'sf', 'sg', 'sn')
end
local health = ARGV[6]
if health == 'well' then
  redis.call('HDEL', KEYS[6], 'until')
elseif health == 'sick' then
  local ms = tonumber(ARGV[7])
  local cur = tonumber(redis.call('HGET', KEYS[6], 'until') or '0')
  if now + ms > cur then redis.call('HSET', KEYS[6], 'until', tostring(now + ms)) end
  keep(KEYS[6], ms + 60000)
elseif health == 'off' then
  redis.call('HSET', KEYS[6], 'off', '1')
  keep(KEYS[6], tonumber(ARGV[7]))
end
return {t[1], t[2]}
"""

# KEYS: one endpoint's leases; ARGV: lease ms, then the lease ids to renew (those still there).
RENEW = """-- ipfs-accel renew
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 1
"""

# KEYS: the salt's key; ARGV: a salt to install if there is none. Returns the salt there.
SALT = """-- ipfs-accel salt
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""
