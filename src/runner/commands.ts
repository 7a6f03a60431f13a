// Commands a user can type instead of a question. Parsed from the message text, pure.
export type Command =
  | { kind: 'help' }
  | { kind: 'new'; question?: string }
  | { kind: 'stop' }
  | { kind: 'ask'; question: string };

const aliases: Record<string, 'help' | 'new' | 'stop'> = {
  '/help': 'help',
  帮助: 'help',
  '/new': 'new',
  '/reset': 'new',
  新对话: 'new',
  '/stop': 'stop',
  停止: 'stop',
};

export function parseCommand(text: string): Command {
  const trimmed = text.trim();
  const [head = '', ...rest] = trimmed.split(/\s+/);
  const kind = aliases[head.toLowerCase()];
  if (!kind) return { kind: 'ask', question: trimmed };
  if (kind === 'new') {
    const question = trimmed.slice(head.length).trim();
    return question ? { kind: 'new', question } : { kind: 'new' };
  }
  if (rest.length > 0) return { kind: 'ask', question: trimmed };
  return { kind };
}

export const helpText = [
  '**可用命令**',
  '- `/new` 或 `新对话`：开始新的对话（之前的上下文不再带入）；`/new 问题` 开新对话并直接提问',
  '- `/stop` 或 `停止`：停止正在生成的回答',
  '- `/help` 或 `帮助`：显示这条说明',
  '',
  '其他内容都会作为问题发给 AI 助手。',
].join('\n');

export const newConversationText = '好的，已开始新的对话。请提问吧。';
export const stoppedText = '好的，已停止正在生成的回答。';
export const nothingToStopText = '现在没有正在生成的回答。';
