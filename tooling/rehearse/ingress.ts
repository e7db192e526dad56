import type { Server } from 'node:http';
import { request } from 'node:http';
import { closeServer, listenLoopback } from '../local-services/http.ts';

/**
 * A stand-in for the environment's ingress: plain HTTP on loopback, forwarded to a Service through
 * the embedded API server's service proxy with the credentials a test script should not need.
 */
export async function startIngress(
  apiUrl: string,
  token: string,
  namespace: string,
  service: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const base = new URL(`${apiUrl}/api/v1/namespaces/${namespace}/services/${service}/proxy`);
  const { server, url } = await listenLoopback((req, res) => {
    const target = new URL(base.href + (req.url ?? '/'));
    const upstream = request(
      target,
      {
        method: req.method,
        headers: { ...req.headers, host: target.host, authorization: `Bearer ${token}` },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`ingress: ${error.message}`);
    });
    req.pipe(upstream);
  });
  return { url, close: () => closeServer(server as Server) };
}
