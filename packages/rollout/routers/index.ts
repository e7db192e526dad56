import type { RouterConfig } from '../options.ts';
import { gatewayApiRouter } from './gateway-api.ts';
import { nginxRouter } from './nginx.ts';
import { replicasRouter } from './replicas.ts';
import type { Router, RouterContext } from './router.ts';

export type { Router, RouterContext } from './router.ts';

export function makeRouter(cfg: RouterConfig, ctx: RouterContext): Router {
  if (cfg.kind === 'replicas') return replicasRouter(ctx);
  if (cfg.kind === 'gateway-api') return gatewayApiRouter(ctx, cfg);
  return nginxRouter(ctx, cfg);
}
