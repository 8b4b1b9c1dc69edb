#!/usr/bin/env node
'use strict';
// `npx bufferq ...`: the admin CLI. In a checkout (sources and dev dependencies present) it runs the
// TypeScript sources, so it is never older than the code; in a built image it runs dist/.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..', '..');
const SOURCE = path.join(ROOT, 'apps', 'cli', 'src', 'main.ts');
const BUILT = path.join(ROOT, 'dist', 'apps', 'cli', 'src', 'main.js');

function resolvable(name) {
  try {
    return require.resolve(name, { paths: [ROOT] });
  } catch {
    return undefined;
  }
}

let args;
const tsNode = fs.existsSync(SOURCE) && resolvable('ts-node/register/transpile-only');
if (tsNode) {
  args = ['-r', tsNode, '-r', resolvable('tsconfig-paths/register'), SOURCE];
} else if (fs.existsSync(BUILT)) {
  args = [BUILT];
} else {
  process.stderr.write('bufferq: the CLI is not built; run `npm run build` first\n');
  process.exit(1);
}
const result = spawnSync(process.execPath, [...args, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TS_NODE_PROJECT: process.env.TS_NODE_PROJECT ?? path.join(ROOT, 'tsconfig.json') },
});
process.exit(result.status ?? 1);
