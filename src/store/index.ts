// The event store: its port and its adapters.
export * from './keys.js';
export * from './loaded.js';
export * from './memory.js';
export * from './open.js';
export * from './port.js';
export * from './redis.js';
export * from './summary.js';
