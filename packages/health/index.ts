export * from './checks.ts';
export * from './condition.ts';
export * from './gate.ts';
export * from './json-path.ts';
export * from './probes.ts';
export * from './summary.ts';
