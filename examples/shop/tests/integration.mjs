// Integration check against a deployed environment: the service answers and reports healthy.
// STAGING_URL is the base URL of the environment (the pipeline sets it).
const base = (process.env.STAGING_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const response = await fetch(`${base}/health`, { signal: AbortSignal.timeout(10_000) });
const body = await response.json();
if (response.status !== 200 || body.status !== 'healthy') {
  console.error(`integration: /health answered ${response.status} ${JSON.stringify(body)}`);
  process.exit(1);
}
console.log(`integration: healthy, version ${body.version}`);
