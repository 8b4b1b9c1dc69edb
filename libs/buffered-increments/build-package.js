#!/usr/bin/env node
'use strict';
// Builds the publishable @bufferq/buffered-increments into dist/packages/buffered-increments (the folder
// `npm pack` / `npm publish` take): compiled JavaScript and type declarations of this lib and of the Lua
// loader it uses (@bufferq/redis-scripts, rewritten to a relative import, so the package depends on no
// other @bufferq lib), the Lua scripts next to the compiled loader calls, this folder's package.json
// (without its scripts), README.md and CHANGELOG.md.
// Usage: node libs/buffered-increments/build-package.js [--pack <destination folder>]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const LIB = __dirname;
const ROOT = path.join(LIB, '..', '..');
const OUT = path.join(ROOT, 'dist', 'packages', 'buffered-increments');
const TSCONFIG = path.join(LIB, 'tsconfig.package.json');
const COMPILED_LIB = path.join(OUT, 'lib', 'buffered-increments', 'src');

function run(command, args, cwd = ROOT) {
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${path.basename(command)} ${args.join(' ')} failed`);
}

function filesUnder(folder) {
  return fs.readdirSync(folder, { recursive: true }).map((file) => path.join(folder, file));
}

/** Every import the package makes of another @bufferq lib is a file the package lacks: refuse it. */
function assertSelfContained() {
  const offending = filesUnder(path.join(OUT, 'lib'))
    .filter((file) => /\.(js|d\.ts)$/.test(file))
    .filter((file) => /(require\(|from |import\()\s*["']@bufferq\//.test(fs.readFileSync(file, 'utf8')));
  if (offending.length) {
    throw new Error(`the package still imports other @bufferq libs in: ${offending.map((f) => path.relative(OUT, f))}`);
  }
}

function build() {
  fs.rmSync(OUT, { recursive: true, force: true });
  run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', TSCONFIG]);
  run(process.execPath, [require.resolve('tsc-alias/dist/bin/index.js'), '-p', TSCONFIG]);
  // The shards load their scripts from `<compiled buffer-shard.js folder>/scripts`.
  fs.cpSync(path.join(LIB, 'src', 'scripts'), path.join(COMPILED_LIB, 'scripts'), {
    recursive: true,
    filter: (source) => fs.statSync(source).isDirectory() || source.endsWith('.lua'),
  });
  const manifest = JSON.parse(fs.readFileSync(path.join(LIB, 'package.json'), 'utf8'));
  delete manifest.scripts;
  fs.writeFileSync(path.join(OUT, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const file of ['README.md', 'CHANGELOG.md']) fs.copyFileSync(path.join(LIB, file), path.join(OUT, file));
  assertSelfContained();
  return manifest;
}

function main() {
  const manifest = build();
  process.stdout.write(`built ${manifest.name}@${manifest.version} in ${path.relative(ROOT, OUT)}\n`);
  const packAt = process.argv.indexOf('--pack');
  if (packAt !== -1) {
    const destination = path.resolve(process.argv[packAt + 1] ?? '.');
    fs.mkdirSync(destination, { recursive: true });
    run('npm', ['pack', '--pack-destination', destination], OUT);
  }
}

try {
  main();
} catch (error) {
  process.stderr.write(`build-package: ${error.message}\n`);
  process.exit(1);
}
