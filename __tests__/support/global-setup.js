// The end-to-end tests run the built bundles, so build them once before any test runs. A run
// narrowed to engine tests (`jest __tests__/migrate`) skips the build.
import { execFileSync } from 'node:child_process';
import { requireNode } from '../../bin/require-node.js';

export default function globalSetup(globalConfig) {
  // `npx jest` skips the npm script's check; an older Node would fail dozens of tests obscurely.
  requireNode();
  const filters = globalConfig.testPathPatterns?.patterns ?? [];
  const onlyEngines =
    filters.length > 0 && !filters.some((f) => /actions|e2e|rehears|workflow/.test(String(f)));
  if (onlyEngines) return;
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
