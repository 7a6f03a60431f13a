// INSPECTOR_TOKEN: when set, every inspector request (page, assets, API) must carry it, as
// `Authorization: Bearer <token>` or `?token=<token>` (a browser's first page load, and the page's
// assets, can only carry it in the URL). Compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';

/** The tokens the request presented: its bearer header and its `?token=`, whichever it has. */
function presentedTokens(ctx: Context): string[] {
  const header = /^Bearer\s+(.+)$/i.exec(ctx.get('authorization'))?.[1]?.trim();
  const query = ctx.query.token;
  const fromQuery = Array.isArray(query) ? query[0] : query;
  return [header, fromQuery].filter((t): t is string => typeof t === 'string' && t !== '');
}

/**
 * Equal in constant time. Both sides are hashed first, so that neither the comparison nor
 * `timingSafeEqual`'s length check tells anything about the token's length or content.
 */
function tokensMatch(presented: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Middleware: refuse with 401 unless the request carries `token`; lets everything through without one. */
export function requireToken(token: string | undefined) {
  return async (ctx: Context, next: Next) => {
    if (token !== undefined) {
      // Every candidate is compared, so that the time taken does not say which one matched.
      const matches = presentedTokens(ctx).map((presented) => tokensMatch(presented, token));
      if (!matches.includes(true)) {
        ctx.status = 401;
        ctx.set('www-authenticate', 'Bearer realm="inspector"');
        ctx.set('cache-control', 'no-store');
        ctx.body = {
          error: 'unauthorized',
          message:
            'the inspector needs INSPECTOR_TOKEN: open /inspector?token=<token>, or send Authorization: Bearer <token>',
        };
        return;
      }
    }
    await next();
  };
}
