#!/usr/bin/env node
// The `pipeline` command: runs bin/pipeline.ts with Node's own type stripping (Node 24).
// Only imports that every Node has are static: a named import Node lacks (registerHooks) fails
// while the module links, before any check in it could run.
import { fileURLToPath } from 'node:url';
import { requireNode } from './require-node.js';

requireNode();
const { registerHooks, stripTypeScriptTypes } = await import('node:module');

// Node refuses to strip types of files under node_modules, which is where `npx pipeline` finds
// this package when a repository installs it: strip them here, for this package's files only.
const root = new URL('../', import.meta.url).href;
if (fileURLToPath(root).includes('/node_modules/') && typeof registerHooks === 'function') {
  const emitWarning = process.emitWarning;
  process.emitWarning = (warning, ...rest) =>
    String(warning).includes('stripTypeScriptTypes')
      ? undefined
      : emitWarning.call(process, warning, ...rest);
  registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith(root) || !url.endsWith('.ts') || url.slice(root.length).includes('node_modules/')) {
        return nextLoad(url, context);
      }
      const loaded = nextLoad(url, { ...context, format: 'module' });
      const source = stripTypeScriptTypes(String(loaded.source));
      return { format: 'module', source, shortCircuit: true };
    },
  });
}

// @actions/workflow-parser imports its JSON schemas without `with { type: 'json' }`, which
// bundlers accept and Node does not: give those imports the attribute they lack.
if (typeof registerHooks === 'function') {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      if (resolved.url.endsWith('.json') && resolved.url.includes('/@actions/workflow-parser/')) {
        return { ...resolved, format: 'json', importAttributes: { type: 'json' } };
      }
      return resolved;
    },
  });
}

await import('./pipeline.ts');
