// Rate limits on new messages: the port, and its Redis and in-memory adapters.
export * from './memoryRateLimiter.js';
export * from './rateLimit.js';
export * from './redisRateLimiter.js';
