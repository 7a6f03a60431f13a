// How the simulator prints a WeCom bubble that is replaced by a whole new snapshot on every poll
// (docs/protocol/wecom.md §5.4: content is a full snapshot, not a delta): only the new end when the
// snapshot extends what is shown, else the whole snapshot again.

export type Growth = { kind: 'same' } | { kind: 'append'; text: string } | { kind: 'reprint'; text: string };

export function growth(shown: string | undefined, next: string): Growth {
  if (shown === next) return { kind: 'same' };
  if (shown !== undefined && shown !== '' && next.startsWith(shown))
    return { kind: 'append', text: next.slice(shown.length) };
  return { kind: 'reprint', text: next };
}
