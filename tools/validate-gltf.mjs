#!/usr/bin/env node
// validate-gltf.mjs FILE — runs the Khronos glTF validator (npm gltf-validator,
// installed by `make deps` into build/node) over one glTF or GLB file and prints
// a JSON summary: the validator's version, the issue counts per severity and
// every reported message.
//
// Exit status: 0 when the validator reports no errors, 1 when it reports at
// least one, 2 when it could not run (bad usage, unreadable file, validator
// missing). Only errors fail: warnings, infos and hints describe assets that
// every conforming loader still reads (e.g. a degenerate triangle, an unused
// object), so they are printed for the reader and left to the caller to judge.
//
// The validator package is found at $HY3D_GLTF_VALIDATOR (its directory), else
// at build/node/node_modules/gltf-validator next to this script's tools/.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Enough to name every distinct problem of a broken export without printing
// one line per triangle of a large mesh; the summary says when it truncated.
const MAX_ISSUES = 200;

const SEVERITIES = ['error', 'warning', 'info', 'hint'];

function fail(message) {
  process.stderr.write(`validate-gltf: ${message}\n`);
  process.exit(2);
}

function validatorDir() {
  if (process.env.HY3D_GLTF_VALIDATOR) {
    return resolve(process.env.HY3D_GLTF_VALIDATOR);
  }
  const tools = dirname(fileURLToPath(import.meta.url));
  return join(tools, '..', 'build', 'node', 'node_modules', 'gltf-validator');
}

async function main(args) {
  if (args.length !== 1 || args[0].startsWith('-')) {
    fail('usage: validate-gltf.mjs FILE.glb|FILE.gltf');
  }
  const file = args[0];
  const dir = validatorDir();
  let validator;
  try {
    validator = createRequire(import.meta.url)(dir);
  } catch (err) {
    fail(`gltf-validator not found at ${dir} (run \`make deps\`): ${err.message}`);
  }
  let bytes;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    fail(`read ${file}: ${err.message}`);
  }
  let report;
  try {
    report = await validator.validateBytes(bytes, {
      uri: basename(file),
      maxIssues: MAX_ISSUES,
      writeTimestamp: false,
    });
  } catch (err) {
    // The promise rejects when the bytes are neither glTF JSON nor GLB; that
    // is a verdict on the file, not a failure to run.
    report = { issues: { numErrors: 1, messages: [{ code: 'UNREADABLE', severity: 0, message: String(err) }] } };
  }
  const issues = report.issues ?? {};
  const summary = {
    file,
    validatorVersion: report.validatorVersion ?? validator.version(),
    numErrors: issues.numErrors ?? 0,
    numWarnings: issues.numWarnings ?? 0,
    numInfos: issues.numInfos ?? 0,
    numHints: issues.numHints ?? 0,
    truncated: issues.truncated ?? false,
    messages: (issues.messages ?? []).map((m) => ({
      code: m.code,
      severity: SEVERITIES[m.severity] ?? String(m.severity),
      message: m.message,
      ...(m.pointer !== undefined && { pointer: m.pointer }),
      ...(m.offset !== undefined && { offset: m.offset }),
    })),
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  process.exitCode = summary.numErrors > 0 ? 1 : 0;
}

await main(process.argv.slice(2));
