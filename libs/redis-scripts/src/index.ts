// The one way every lib runs Lua in Redis: scripts in files named after what they do and how many keys
// they take, loaded once per server, with constants shared with TypeScript defined in TypeScript. And the
// one watchdog for a client whose connection went silent, which every lib's Redis clients share, and the one
// window in which a call made while a client reconnects waits for it.
export { isCluster, RedisScript } from './redis-script';
export type { RedisLike, ScriptConstants } from './redis-script';
export { shardOf } from './key-shard';
export { ReconnectWindow } from './reconnect-window';
export { SilentConnectionWatchdog } from './silent-connection-watchdog';
