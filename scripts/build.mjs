// One esbuild build of every action entry. Code splitting puts what the actions share (the
// toolkit, Octokit, the Kubernetes client, our engines) into chunks bundled once for the suite.
// The output is reproducible: no timestamps, no absolute paths, stable chunk names.
import { copyFileSync, existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { build } from 'esbuild';

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

// @actions/core imports its OIDC client, and with it @actions/http-client and undici (400 KiB),
// at start-up, though only getIDToken() uses it. Load it on first use instead: every action
// starts faster, and the chunk is still there for a step that asks for an ID token.
const lazyActionsCoreOidc = {
  name: 'lazy-actions-core-oidc',
  setup(b) {
    b.onResolve({ filter: /^\.\/oidc-utils\.js$/ }, (args) =>
      /@actions[\\/]core[\\/]lib[\\/]core\.js$/.test(args.importer)
        ? { path: join(dirname(args.importer), 'oidc-utils.js'), namespace: 'lazy-oidc' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-oidc' }, (args) => ({
      contents: `export class OidcClient {
        static async getIDToken(audience) {
          const { OidcClient: Real } = await import(${JSON.stringify(args.path)});
          return Real.getIDToken(audience);
        }
      }`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

const result = await build({
  absWorkingDir: root,
  entryPoints,
  outdir,
  bundle: true,
  splitting: true,
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
  plugins: [lazyActionsCoreOidc],
  // CommonJS dependencies call require() for Node built-ins; give ESM chunks a real one.
  banner: {
    js: "import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);",
  },
});

// Each dist/<name>.js checks the Node version before anything else loads: on an older Node a
// bundle fails while it links (a named import such as globSync that node:fs lacks), before any
// statement of it could run, with a SyntaxError and a minified line. The gate imports only what
// every Node has (bin/require-node.js, copied beside it), then the bundle.
copyFileSync(join(root, 'bin', 'require-node.js'), join(outdir, 'require-node.js'));
for (const entry of entryPoints) {
  const name = basename(entry, '.ts');
  writeFileSync(
    join(outdir, `${name}.js`),
    `import{nodeVersionProblem}from'./require-node.js';const problem=nodeVersionProblem();if(problem){process.stdout.write(\`::error::\${problem}\\n\`);process.exit(1)}await import('./main/${name}.js');\n`,
  );
}

// Actions run `node dist/<name>.js` from a checkout of this repository, whose package.json says
// "type": "module"; this marker keeps dist/ ESM even when it is vendored on its own.
writeFileSync(join(outdir, 'package.json'), '{ "type": "module" }\n');
const olddir = join(root, `.dist-old-${process.pid}`);
if (existsSync(finaldir)) renameSync(finaldir, olddir);
renameSync(outdir, finaldir);
rmSync(olddir, { recursive: true, force: true });

const outputs = Object.entries(result.metafile.outputs);
const total = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
for (const [file, o] of outputs.filter(([f]) => f.includes('/main/') && f.endsWith('.js'))) {
  console.log(`${basename(file).padEnd(28)} ${(o.bytes / 1024).toFixed(1).padStart(8)} KiB (entry)`);
}
console.log(
  `${'total dist/'.padEnd(28)} ${(total / 1024).toFixed(1).padStart(8)} KiB in ${outputs.length} files`,
);
