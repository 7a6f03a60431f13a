export * from './delivery.js';
export * from './events.js';
export * from './fold.js';
export * from './render.js';
export * from './streamMachine.js';
export * from './summary.js';
export * from './texts.js';
