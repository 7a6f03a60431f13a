// The WeCom callback layer: crypto, signature, message parsing and reply building.
export * from './crypto.js';
export * from './errors.js';
export * from './media.js';
export * from './messages.js';
export * from './reply.js';
export * from './responseUrl.js';
export * from './signature.js';
