// Used by .github/workflows/release.yml: rewrites the reusable workflows' `uses:` of this suite to
// the publishing repository at exact commits (see tooling/runners/pin.ts for why).
//   node scripts/pin-release.ts --repository owner/name --actions-ref <sha> [--workflows-ref <sha>] [--check] files...
// --check fails when any of our `uses:` in the files, or in any reusable workflow beside them, is not
// pinned to a full commit SHA.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pinUses, unpinnedUses } from '../tooling/runners/pin.ts';

const { values, positionals } = parseArgs({
  options: {
    repository: { type: 'string' },
    'actions-ref': { type: 'string' },
    'workflows-ref': { type: 'string' },
    check: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

if (positionals.length === 0) {
  console.error('::error::name the workflow files to pin');
  process.exit(2);
}
if (values.check) {
  // A reusable workflow left off the command line would ship calling @main, so every one in the
  // named files' directories is checked too.
  const files = new Set(positionals);
  for (const dir of new Set(positionals.map((file) => dirname(file))))
    for (const name of readdirSync(dir))
      if (/\.ya?ml$/.test(name) && /^\s*workflow_call:/m.test(readFileSync(join(dir, name), 'utf8')))
        files.add(join(dir, name));
  const left = [...files].flatMap((file) =>
    unpinnedUses(readFileSync(file, 'utf8')).map((u) => `${file}: ${u}`),
  );
  for (const line of left) console.error(`::error::not pinned to a commit: ${line}`);
  process.exit(left.length ? 1 : 0);
}
const sha = /^[0-9a-f]{40}$/;
if (!values.repository || !/^[\w.-]+\/[\w.-]+$/.test(values.repository)) {
  console.error('::error::--repository must be owner/name, such as acme/pipeline');
  process.exit(2);
}
for (const name of ['actions-ref', 'workflows-ref'] as const) {
  const v = values[name];
  if ((name === 'actions-ref' || v !== undefined) && !sha.test(v ?? '')) {
    console.error(`::error::--${name} must be a full 40-character commit SHA, got '${v ?? ''}'`);
    process.exit(2);
  }
}
for (const file of positionals) {
  const { text, changes } = pinUses(readFileSync(file, 'utf8'), {
    repository: values.repository,
    actionsRef: values['actions-ref']!,
    ...(values['workflows-ref'] ? { workflowsRef: values['workflows-ref'] } : {}),
  });
  writeFileSync(file, text);
  console.log(`${file}: ${changes.length} uses: pinned`);
}
