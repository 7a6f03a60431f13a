// The demo's scripted answers: what the Dify stand-in says, chosen by a keyword of the question, and
// the tokens it streams them in.

interface Line {
  match: RegExp;
  answer: string;
}

const lines: Line[] = [
  {
    match: /你好|您好|hello|\bhi\b|hey/i,
    answer:
      '你好！我是 wecom-dify 演示里的 AI 助手。这段回答来自本地的 Dify 替身，它像真正的 Dify 一样用 SSE 一个词一个词地流出来；' +
      'WeCom 模拟器每秒轮询一次，你看到的就是企业微信气泡里会显示的内容。\n\n' +
      'Every piece of this answer is an event in the stream: open the inspector to step through them.',
  },
  {
    match: /inspector|检查|事件|event|state|状态/i,
    answer:
      '每条消息都会打开一个会话流（stream）：authenticating → thinking → streaming → completed。' +
      '每一步都是追加到事件存储里的一个事件，状态是这些事件经过 XState 状态机折叠出来的。\n\n' +
      'In the inspector you can pick this stream, see the state chart, and step through its events one by one.',
  },
  {
    match: /help|帮助|怎么|how/i,
    answer:
      '在这里输入问题并回车，就像在企业微信里给机器人发消息。试试 /help 查看机器人的命令，/new 开始新的对话。\n\n' +
      'Type a question and press Enter; Ctrl-D or Ctrl-C ends the demo.',
  },
];

/** A question that asks for something a person must approve: the demo's workflow pauses on a form. */
export const APPROVAL = /审批|报销|approv|form|表单/i;

/** What the demo says before its form, the form, and what it says once a button is chosen. */
export const demoForm = {
  before: '好的，我起草了一份报销单：差旅，¥1,280。',
  title: '报销审批',
  content: '请确认是否提交这份报销单（差旅 ¥1,280）。',
  actions: [
    { id: 'submit', title: '提交', button_style: 'primary' },
    { id: 'discard', title: '作废', button_style: 'default' },
  ],
  after: (action: string): string =>
    action === 'submit' ? '已提交：报销单已转给财务，预计三个工作日内到账。' : '已作废：这份报销单不会提交。',
};

/** The questions the demo suggests after an answer: buttons under it; `/click N` in the chat asks one. */
export const demoSuggestions = ['检查器里能看到什么？', '怎么开始新的对话？'];

/** The scripted answer to a question: a line chosen by keyword, or an echo that says what happened. */
export function demoAnswer(query: string): string {
  const line = lines.find((l) => l.match.test(query));
  if (line) return line.answer;
  return (
    `你问的是：「${query.trim()}」。\n\n` +
    '这是演示用的 Dify 替身，不会真的回答问题，但这条回答走的是完整的链路：' +
    '加密的企业微信回调 → 会话流的事件 → Dify 的 SSE 流 → 每秒一次的轮询。' +
    'Ask about the inspector, or say hello.'
  );
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/** Model-like tokens: words, with the spaces and punctuation after them kept on the word. */
export function tokensOf(text: string): string[] {
  const tokens: string[] = [];
  for (const { segment, isWordLike } of segmenter.segment(text)) {
    const last = tokens.length - 1;
    if (!isWordLike && last >= 0) tokens[last] += segment;
    else tokens.push(segment);
  }
  return tokens;
}
