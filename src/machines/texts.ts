// What the user reads in the WeCom bubble. One table, so that every failure class has a clear,
// friendly sentence and no user ever sees a stack trace or a bare code.
import type { FailureCode } from './failures.js';
export interface Texts {
  thinking: string;
  authenticating: string;
  queued: string;
  emptyAnswer: string;
  truncated: string;
  windowClosed: string;
  /** The bubble closed at the window's end before any text: the answer comes by a separate message. */
  windowPending: string;
  /** Heads a delivered remainder of an answer too long for the bubble. */
  continued: string;
  /** Ends a delivery that still had to be cut. */
  deliveryTruncated: string;
  /** Ends an answer that reached the size limit (ANSWER_MAX_BYTES) and was stopped there. */
  answerCapped: string;
  /** Heads a delivered failure, after the bubble promised the answer would follow. */
  deliveryFailed: string;
  expired: string;
  /** A message with nothing to ask (only the @mention, say). */
  emptyQuestion: string;
  /** The question Dify gets for an image or a file sent alone. */
  imageQuestion: string;
  fileQuestion: string;
  failures: Record<FailureCode, string>;
  denied: string;
  /** The answers to the commands a user may type (`/help`, `/new`, `/stop`). */
  help: string;
  newConversation: string;
  stopped: string;
  nothingToStop: string;
  /** A form's card (human input): its title when the form has none, the line above its buttons. */
  inputTitle: string;
  inputHint: string;
  /** `{time}`: the form's deadline. */
  inputDeadline: string;
  /** `{by}` chose `{action}`. */
  inputChosen: string;
  inputExpired: string;
  inputExpiredButton: string;
  /** `{actions}`: a form's actions past the card's six buttons. */
  inputMoreActions: string;
  /** Under a bubble that waits for a form whose buttons cannot be shown (no bubble to carry them). */
  inputElsewhere: string;
  /** A file of an answer named by its link, when Dify gave it no name. */
  imageName: string;
  fileName: string;
  /** After an image's link: why the bubble does not show it. */
  imageNotShown: Record<'too_large' | 'format' | 'failed' | 'too_many' | 'foreign' | 'no_bubble', string>;
  /** The card of the questions Dify suggests after an answer. */
  suggestedTitle: string;
  /** `{question}`: the one a click asked. */
  suggestedAsked: string;
}

export const defaultTexts: Texts = {
  thinking: '正在思考…',
  authenticating: '正在确认你的身份…',
  queued: '上一个问题还在回答中，这个问题排在它后面，请稍候…',
  emptyAnswer: '（这次没有生成任何回答，请换个说法再试一次。）',
  truncated: '\n\n…（回答太长，这里只显示了前面部分，完整内容稍后单独发送。）',
  windowClosed: '\n\n…（回答仍在生成，完整内容稍后单独发送。）',
  windowPending: '回答还在生成中，完成后会单独发送给你。',
  continued: '（接上文）\n\n',
  deliveryTruncated: '\n\n…（回答过长，其余部分无法发送。）',
  answerCapped: '\n\n…（回答太长，已在这里停止。）',
  deliveryFailed: '刚才那个问题的回答没能完成：',
  expired: '这条回答已经过期，请重新发送你的问题。',
  emptyQuestion: '请用文字告诉我你的问题。',
  imageQuestion: '请看这张图片。',
  fileQuestion: '请看这个文件。',
  failures: {
    dify_unreachable: '抱歉，AI 服务暂时连接不上，请稍后再试。',
    dify_timeout: '抱歉，AI 服务响应超时，请稍后再试。',
    dify_rate_limited: '现在提问的人太多了，请稍等一会儿再试。',
    dify_quota: '抱歉，AI 服务的额度已用完，请联系管理员。',
    dify_misconfigured: '抱歉，AI 应用的配置有问题，请联系管理员。',
    dify_interrupted: '抱歉，回答生成到一半中断了，请重新提问。',
    dify_error: '抱歉，AI 服务出错了，请稍后再试。',
    auth_unavailable: '暂时无法确认你的身份，请稍后再试。',
    stopped: '已停止回答。',
    takeover_exhausted: '抱歉，服务节点多次故障，这个回答没能完成，请重新提问。',
    answer_timeout: '抱歉，这个回答没能在规定时间内完成，请换个问法或稍后再试。',
    store_unavailable: '抱歉，服务暂时不可用，请稍后再试。',
    attachment_failed: '抱歉，没能读取你发送的图片或文件（链接可能已过期），请重新发送。',
    attachment_too_large: '抱歉，你发送的文件太大了，请发送小一些的文件。',
    attachment_unsupported: '抱歉，这个助手不能处理这种图片或文件，请用文字描述你的问题。',
    form_closed: '这个表单已过期或已有人处理过，无法再提交。',
    form_unanswerable: '这个表单需要填写内容，无法只用按钮提交，请在 Dify 中完成。',
    denied: '抱歉，你没有使用这个助手的权限。',
    rate_limited: '你发消息太快了，请稍等一会儿再问。',
    internal: '抱歉，服务内部出错了，请稍后再试。',
  },
  denied: '抱歉，你还没有使用这个助手的权限。如需开通，请联系管理员。',
  help: [
    '**可用命令**',
    '- `/new` 或 `新对话`：开始新的对话（之前的上下文不再带入）；`/new 问题` 开新对话并直接提问',
    '- `/stop` 或 `停止`：停止正在生成的回答',
    '- `/help` 或 `帮助`：显示这条说明',
    '',
    '其他内容都会作为问题发给 AI 助手。',
  ].join('\n'),
  newConversation: '好的，已开始新的对话。请提问吧。',
  stopped: '好的，已停止正在生成的回答。',
  nothingToStop: '现在没有正在生成的回答。',
  inputTitle: '需要你的确认',
  inputHint: '请选择：',
  inputDeadline: '请在 {time} 前选择',
  inputChosen: '{by} 选择了「{action}」',
  inputExpired: '已过期，未作选择',
  inputExpiredButton: '已过期',
  inputMoreActions: '（其余选项无法在企业微信里选择：{actions}。）',
  inputElsewhere: '（这个流程在等待有人确认后才能继续，这一步暂时无法在企业微信里完成。）',
  imageName: '图片',
  fileName: '文件',
  imageNotShown: {
    too_large: '（图片太大，无法直接显示）',
    format: '（图片格式无法直接显示）',
    failed: '（图片没能取到，请点链接查看）',
    too_many: '（图片太多，这张无法直接显示）',
    foreign: '',
    no_bubble: '',
  },
  suggestedTitle: '你可能还想问',
  suggestedAsked: '已提问：{question}',
};

export function failureText(code: FailureCode, texts: Texts = defaultTexts): string {
  return texts.failures[code];
}
