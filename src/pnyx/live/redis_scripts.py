"""The Lua scripts of the Redis live state (``redis.RedisLiveState``), and their
registration on a client.

Each script is one atomic step that a round trip per command could not make safe: a
snapshot part written only when newer (``PUT_PART_LUA``), the capped audience
(``AUDIENCE_ADD_LUA``, ``AUDIENCE_PAGE_LUA``), a token bucket (``TAKE_LUA``, the steps
of ``token_bucket.take``) and a fenced lease (``ACQUIRE_LUA``, ``RENEW_LUA``,
``RELEASE_LUA``). The keys they touch are laid out in ``keys.py``.

``Scripts.register`` registers them all on one client: redis-py runs each by its SHA
(EVALSHA) and loads it again when the server answers NOSCRIPT (a restarted server, a
promoted replica), so nothing is loaded ahead of use.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

# KEYS[1] snapshot hash; ARGV: part, JSON, part version, notification channel, TTL in ms
# ('' for none: the hash keeps what expiry it has). Returns the new snapshot version, or
# nil when the part version is not newer (and then nothing changes, the TTL neither).
PUT_PART_LUA = """
local pv = redis.call('HGET', KEYS[1], 'pv:' .. ARGV[1])
if pv and tonumber(pv) >= tonumber(ARGV[3]) then
  return false
end
redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], ARGV[2], 'pv:' .. ARGV[1], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PUBLISH', ARGV[4], v)
return v
"""

# Remove ``members`` (a Lua table) from the audience and its last-heard set, 500 at a time
# (unpack's stack is limited).
_AUDIENCE_DROP = """
local function drop(members)
  for i = 1, #members, 500 do
    local chunk = {unpack(members, i, math.min(i + 499, #members))}
    redis.call('ZREM', KEYS[1], unpack(chunk))
    redis.call('ZREM', KEYS[2], unpack(chunk))
  end
end
"""

# KEYS[1] audience (score: join time), KEYS[2] last heard; ARGV: member, score, cap, TTL.
# Adds the member to both, then trims the audience to the cap (and the trimmed from both).
AUDIENCE_ADD_LUA = (
    _AUDIENCE_DROP
    + """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
drop(redis.call('ZRANGE', KEYS[1], 0, -tonumber(ARGV[3]) - 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
"""
)

# KEYS[1] audience, KEYS[2] last heard; ARGV: heard since ('' for no pruning), the top
# score ('+inf' or '(<before>'), limit. Members last heard before ARGV[1] are removed
# (at most the capped set), then a page, highest join time first: {member, score, ...}.
AUDIENCE_PAGE_LUA = (
    _AUDIENCE_DROP
    + """
if ARGV[1] ~= '' then
  drop(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1]))
end
if tonumber(ARGV[3]) <= 0 then
  return {}
end
return redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], '-inf', 'WITHSCORES', 'LIMIT', 0, ARGV[3])
"""
)

# KEYS[1] bucket hash; ARGV: rate, burst, now, cost. Mirrors token_bucket.take.
# Returns {allowed (0/1), retry_after as a string (Lua numbers would be truncated)}.
TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
else
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tokens + elapsed * rate)
  if now > ts then ts = now end
end
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', retry)}
"""

# KEYS[1] lease, KEYS[2] fence; ARGV: holder, ttl ms. Returns the token, or nil if held
# by another. The holder already holding it keeps its token and gets a fresh TTL.
ACQUIRE_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, token = string.match(cur, '^(.*)|(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
"""

# KEYS[1] lease; ARGV: "<holder>|<token>", ttl ms. 1 if renewed, 0 if lost.
RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] lease; ARGV: "<holder>|<token>". Deletes only our own lease.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Scripts:
    """Every script above, registered on one client (call one with ``keys=`` and
    ``args=``, as redis-py's ``AsyncScript``)."""

    put_part: AsyncScript
    take: AsyncScript
    acquire: AsyncScript
    renew: AsyncScript
    release: AsyncScript
    audience_add: AsyncScript
    audience_page: AsyncScript

    @classmethod
    def register(cls, client: aioredis.Redis) -> Scripts:
        return cls(
            put_part=client.register_script(PUT_PART_LUA),
            take=client.register_script(TAKE_LUA),
            acquire=client.register_script(ACQUIRE_LUA),
            renew=client.register_script(RENEW_LUA),
            release=client.register_script(RELEASE_LUA),
            audience_add=client.register_script(AUDIENCE_ADD_LUA),
            audience_page=client.register_script(AUDIENCE_PAGE_LUA),
        )
