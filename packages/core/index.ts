export * from './clock.ts';
export * from './duration.ts';
export * from './errors.ts';
export * from './escape.ts';
export * from './logger.ts';
export * from './retry.ts';
export * from './secrets.ts';
export * from './workflow-commands.ts';
