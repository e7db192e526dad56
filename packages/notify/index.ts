export * from './model.ts';
export * from './notify.ts';
export * from './release-plan.ts';
export * from './slack-message.ts';
export * from './summary.ts';
