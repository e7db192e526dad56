export * from './inputs.ts';
export * from './kube-names.ts';
