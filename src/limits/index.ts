// Rate limits on new messages: the port, its Redis and in-memory adapters, and the limits of a message.
export * from './memoryRateLimiter.js';
export * from './messageLimits.js';
export * from './rateLimit.js';
export * from './redisRateLimiter.js';
