import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Slot, SlotOptions, Slots } from "./types.js";

/**
 * Slots per key in Redis, for limits on things that stay open (tunnels per repository): a sorted set per
 * key whose members are the held slots, scored by when each one's lease ends. Taking a slot drops the
 * expired leases and adds one only under `max`, in one script, so every instance counts against one
 * number. rate-limiter-flexible counts events in windows and has no such thing, hence the two small
 * scripts here.
 *
 * Each instance renews the leases it holds every third of `leaseMs`, so an instance that dies (SIGKILL,
 * a lost machine) holds its slots for at most `leaseMs` more; a renewal re-adds a lease that lapsed
 * while Redis was away. Times are Redis's own (`TIME`), so the instances' clocks never meet.
 */

/** KEYS[1]: the key's set. ARGV: max, lease ms, member. 1 when the slot was taken, 0 when all are held. */
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/** KEYS[1]: the key's set. ARGV: lease ms, then the members this instance holds under it. */
const renewScript = `
local t = redis.call('TIME')
local ends = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], ends, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

interface SlotCommands {
  tollgateSlotAcquire(key: string, max: number, leaseMs: number, member: string): Promise<number>;
  tollgateSlotRenew(key: string, leaseMs: number, ...members: string[]): Promise<number>;
}

/** Default lease: a dead instance's slots are free again within 30 s. */
const defaultLeaseMs = 30_000;

/** What {@link createRedisSlots} needs of the store it belongs to. */
export interface RedisSlotsContext {
  readonly redis: Redis;
  /** True (and reported) while Redis is known to be down: fail at once. */
  readonly unavailable: (what: string) => boolean;
  /** Reports a failed call by its code (never its arguments). */
  readonly report: (what: string, error: unknown) => void;
}

/**
 * @example
 * const slots = createRedisSlots(context, { keyPrefix: "cc:tunnel:db", max: 20 });
 * const slot = await slots.acquire("12345"); // undefined: 20 already open
 * slot?.release();
 */
export function createRedisSlots(
  context: RedisSlotsContext,
  options: SlotOptions,
): Slots & {
  close(): void;
} {
  const { redis, unavailable, report } = context;
  if (typeof (redis as unknown as Partial<SlotCommands>).tollgateSlotAcquire !== "function") {
    redis.defineCommand("tollgateSlotAcquire", { numberOfKeys: 1, lua: acquireScript });
    redis.defineCommand("tollgateSlotRenew", { numberOfKeys: 1, lua: renewScript });
  }
  const commands = redis as unknown as SlotCommands;
  const leaseMs = options.leaseMs ?? defaultLeaseMs;
  const instance = randomUUID();
  let sequence = 0;
  // The slots this instance holds, by the store key they are under: renewed together, one call per key.
  const held = new Map<string, Set<string>>();
  let renewal: NodeJS.Timeout | undefined;

  const renewAll = (): void => {
    if (unavailable("renew")) return;
    for (const [key, members] of held) {
      commands.tollgateSlotRenew(key, leaseMs, ...members).catch((error: unknown) => report("renew", error));
    }
  };
  const track = (key: string, member: string): void => {
    let members = held.get(key);
    if (members === undefined) {
      members = new Set();
      held.set(key, members);
    }
    members.add(member);
    if (renewal === undefined) {
      renewal = setInterval(renewAll, Math.max(1, Math.floor(leaseMs / 3)));
      renewal.unref();
    }
  };
  const untrack = (key: string, member: string): void => {
    const members = held.get(key);
    members?.delete(member);
    if (members?.size === 0) held.delete(key);
    if (held.size === 0 && renewal !== undefined) {
      clearInterval(renewal);
      renewal = undefined;
    }
  };

  return {
    async acquire(value) {
      if (unavailable("slots")) throw new Error("redis not connected");
      const key = `${options.keyPrefix}:${value}`;
      sequence += 1;
      const member = `${instance}:${sequence}`;
      const taken = await commands.tollgateSlotAcquire(key, options.max, leaseMs, member);
      if (taken !== 1) return undefined;
      track(key, member);
      let released = false;
      const slot: Slot = {
        release() {
          if (released) return;
          released = true;
          untrack(key, member);
          // Lost when Redis is away: the lease then ends by itself within leaseMs.
          if (!unavailable("release"))
            redis.zrem(key, member).catch((error: unknown) => report("release", error));
        },
      };
      return slot;
    },
    close() {
      if (renewal !== undefined) clearInterval(renewal);
      renewal = undefined;
      held.clear();
    },
  };
}
