// Preloaded into a server that bench:http profiles (BENCH_PROFILE_DIR): `node --cpu-prof` writes its profile
// when the process exits, not when a signal ends it, and NestJS's shutdown hooks end the api by re-raising
// the signal.
process.once('SIGINT', () => process.exit(0));
