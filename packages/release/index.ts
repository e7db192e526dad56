export * from './break-glass.ts';
export * from './freeze.ts';
export * from './gate.ts';
