// The callback's query, split by hand for speed, reads every query as URLSearchParams does (the first
// value of a repeated parameter), checked against it on hand-picked and seeded random queries.
import { describe, expect, it } from 'vitest';
import { prng } from '../machines/specification.js';
import { queryOf } from './callback.js';

/** What URLSearchParams makes of the query: the first value of each parameter. */
function reference(url: string): Record<string, string> {
  const q: Record<string, string> = {};
  const at = url.indexOf('?');
  if (at < 0) return q;
  for (const [k, v] of new URLSearchParams(url.slice(at + 1))) if (!Object.hasOwn(q, k)) q[k] = v;
  return q;
}

describe('the callback query', () => {
  it('reads the usual parameters, and odd ones, as URLSearchParams does', () => {
    const urls = [
      '/wecom/callback?msg_signature=abc&timestamp=1700000000&nonce=123&echostr=a%2Bb%3D%3D',
      '/wecom/callback',
      '/wecom/callback?',
      '/wecom/callback?a=1&a=2&&b&=c&d=&e=x=y',
      '/wecom/callback?sp=a+b&pct=%E4%BD%A0%E5%A5%BD&bad=%E4%ZZ&lone=%&plus=%2B',
      '/wecom/callback?constructor=1&__proto__=2&toString=3',
      '/wecom/callback?k%20ey=v&k+ey=w',
    ];
    for (const url of urls) expect(queryOf(url), url).toEqual(reference(url));
    expect(queryOf(undefined)).toEqual({});
  });

  it('agrees with URLSearchParams on random queries', () => {
    const rand = prng(7);
    const alphabet = ['a', 'b', '=', '&', '%', '+', '2', 'B', 'E4', '%2', '你', '?', '#', ' '];
    for (let n = 0; n < 2000; n++) {
      let query = '';
      const length = Math.floor(rand() * 24);
      for (let i = 0; i < length; i++) query += alphabet[Math.floor(rand() * alphabet.length)];
      const url = `/wecom/callback?${query}`;
      expect(queryOf(url), url).toEqual(reference(url));
    }
  });
});
