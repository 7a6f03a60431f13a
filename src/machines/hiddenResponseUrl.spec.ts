import { describe, expect, it } from 'vitest';
import { HIDDEN_RESPONSE_URL, hideResponseUrl } from './hiddenResponseUrl.js';

describe('hideResponseUrl', () => {
  it('says a response_url was there, never what it is, and leaves the rest and the original alone', () => {
    const opened = {
      type: 'stream.opened',
      userid: 'zhangsan',
      responseUrl: 'https://qyapi/response?code=s3',
    };
    expect(hideResponseUrl(opened)).toEqual({ ...opened, responseUrl: HIDDEN_RESPONSE_URL });
    expect(opened.responseUrl).toBe('https://qyapi/response?code=s3');
  });

  it('leaves what has none as it is', () => {
    for (const value of [{ type: 'answer.delta', text: 'x' }, { responseUrl: '' }, 'text', null, [1]])
      expect(hideResponseUrl(value)).toBe(value);
  });
});
