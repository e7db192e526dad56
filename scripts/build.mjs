// The esbuild builds of the action entries: one code-split build in which what the actions share
// (Octokit, the Kubernetes client, our engines) is bundled once into chunks for the suite, and
// run-migrations on its own as a single file (SINGLE_FILE below).
// The output is reproducible: no timestamps, no absolute paths, stable chunk names.
import { existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { nodeVersionProblem, REQUIRED_MAJOR } from '../bin/require-node.js';

const root = new URL('..', import.meta.url).pathname;
const entriesDir = join(root, 'actions', 'entries');
const finaldir = join(root, 'dist');
// Build beside dist/ and swap it in at the end: tests running at the same time keep reading a
// whole dist/, never a half-written one.
const outdir = join(root, `.dist-build-${process.pid}`);

const entryPoints = readdirSync(entriesDir)
  .filter((f) => f.endsWith('.ts'))
  .sort()
  .map((f) => join(entriesDir, f));

rmSync(outdir, { recursive: true, force: true });

// run-migrations is one file of its own: a step that often has nothing to do, timed against a Go
// binary (bench/migrate.ts), sharing only ~20 KiB with the other actions; each ESM module a start
// loads (resolve, read, compile, link) costs it more than that duplication costs dist/.
const SINGLE_FILE = new Set(['run-migrations']);

const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  // Names survive minification so an unexpected bug's stack still says where it happened.
  keepNames: true,
  legalComments: 'linked',
  // The bundles go to dist/main/; dist/<name>.js is the small gate below that imports one.
  entryNames: 'main/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies call require() for Node built-ins; give ESM chunks a real one.
  banner: {
    js: "import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);",
  },
};
const isSingle = (entry) => SINGLE_FILE.has(basename(entry, '.ts'));
const results = [
  await build({ ...common, entryPoints: entryPoints.filter((e) => !isSingle(e)), splitting: true }),
  ...(await Promise.all(
    entryPoints.filter(isSingle).map((e) => build({ ...common, entryPoints: [e], splitting: false })),
  )),
];

// Each dist/<name>.js checks the Node version before anything else loads: on an older Node a
// bundle fails while it links (a named import such as globSync that node:fs lacks), before any
// statement of it could run, with a SyntaxError and a minified line. The gate holds the one
// check (bin/require-node.js's nodeVersionProblem, its source copied in, so no second module loads
// first), written for any Node, then imports the bundle.
const versionCheck = `const REQUIRED_MAJOR=${REQUIRED_MAJOR};${nodeVersionProblem.toString()}`;
for (const entry of entryPoints) {
  const name = basename(entry, '.ts');
  writeFileSync(
    join(outdir, `${name}.js`),
    `${versionCheck}\nconst problem=nodeVersionProblem();if(problem){process.stdout.write(\`::error::\${problem}\\n\`);process.exit(1)}await import('./main/${name}.js');\n`,
  );
}

// Actions run `node dist/<name>.js` from a checkout of this repository, whose package.json says
// "type": "module"; this marker keeps dist/ ESM even when it is vendored on its own.
writeFileSync(join(outdir, 'package.json'), '{ "type": "module" }\n');
const olddir = join(root, `.dist-old-${process.pid}`);
if (existsSync(finaldir)) renameSync(finaldir, olddir);
renameSync(outdir, finaldir);
rmSync(olddir, { recursive: true, force: true });

const outputs = results.flatMap((r) => Object.entries(r.metafile.outputs));
const total = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
for (const [file, o] of outputs.filter(([f]) => f.includes('/main/') && f.endsWith('.js'))) {
  console.log(`${basename(file).padEnd(28)} ${(o.bytes / 1024).toFixed(1).padStart(8)} KiB (entry)`);
}
console.log(
  `${'total dist/'.padEnd(28)} ${(total / 1024).toFixed(1).padStart(8)} KiB in ${outputs.length} files`,
);
