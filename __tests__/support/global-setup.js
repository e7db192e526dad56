// The end-to-end tests run the built bundles, so build them once before any test runs. A run
// narrowed to engine tests (`jest __tests__/migrate`) skips the build.
import { execFileSync } from 'node:child_process';

export default function globalSetup(globalConfig) {
  const filters = globalConfig.testPathPatterns?.patterns ?? [];
  const onlyEngines =
    filters.length > 0 && !filters.some((f) => /actions|e2e|rehears|workflow/.test(String(f)));
  if (onlyEngines) return;
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
