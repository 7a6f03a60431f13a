// Naming and typing what a user sent (docs/protocol/wecom.md §7.3): WeCom's download names are not
// always telling, so the bytes decide the type and Content-Disposition the name.
import { describe, expect, it } from 'vitest';
import { filenameOf, sniff } from './media.js';

describe('a downloaded file', () => {
  it('is typed by its magic numbers', () => {
    expect(sniff(Buffer.from('89504e470d0a1a0a00', 'hex'))).toEqual({ type: 'image/png', ext: 'png' });
    expect(sniff(Buffer.from('ffd8ffe000104a4649', 'hex'))).toEqual({ type: 'image/jpeg', ext: 'jpg' });
    expect(sniff(Buffer.from('GIF89a....'))).toEqual({ type: 'image/gif', ext: 'gif' });
    expect(sniff(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toEqual({ type: 'image/webp', ext: 'webp' });
    expect(sniff(Buffer.from('%PDF-1.4'))).toEqual({ type: 'application/pdf', ext: 'pdf' });
    expect(sniff(Buffer.from('plain text'))).toBeUndefined();
    expect(sniff(Buffer.alloc(0))).toBeUndefined();
  });

  it('is named by Content-Disposition, the UTF-8 form first', () => {
    expect(
      filenameOf(`attachment; filename="a.pdf"; filename*=UTF-8''${encodeURIComponent('报告 v2.pdf')}`),
    ).toBe('报告 v2.pdf');
    expect(filenameOf('attachment; filename="plain.docx"')).toBe('plain.docx');
    expect(filenameOf('attachment; filename=bare.txt')).toBe('bare.txt');
    expect(filenameOf("attachment; filename*=UTF-8''%E0%A4%A")).toBeUndefined();
    expect(filenameOf(undefined)).toBeUndefined();
  });
});
