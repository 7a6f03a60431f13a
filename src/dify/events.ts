// The answer as the client reports it: a small normalized event union, and the pure fold that turns
// Dify's many frame kinds (chat, agent-chat, New Agent, chatflow, workflow) into it.
// Protocol notes: docs/protocol/dify.md §4 (events), §5 (how a stream ends), §10.4–§10.5.
import { DifyError, type DifyIds, fromErrorFrame } from './errors.js';
import type { DifyFile, DifyForm, DifyFrame } from './sse.js';
import { ThinkingFilter, toolLine, withoutThinking } from './thinking.js';

export type DifyEvent =
  /** The stored conversation id was unknown to Dify (404): the turn was sent again without it (§7.2). */
  | { type: 'conversation_reset'; staleConversationId: string }
  /** Once, as soon as a frame carried ids. */
  | ({ type: 'started' } & DifyIds)
  /** Text to append. Never empty. */
  | { type: 'delta'; text: string }
  /** The whole answer so far is replaced by `text`. */
  | { type: 'replace'; text: string }
  /**
   * The run waits for a person to answer `form` (human input); its `end` follows. The run is resumed
   * by submitting the form and reading the run's events again (`workflowRunId`).
   */
  | { type: 'paused'; form: DifyForm; workflowRunId?: string }
  /**
   * The answer's files (an image a tool drew, a workflow's file outputs), before its `end`: each once,
   * its URL absolute. Shown or named by the caller; never dropped.
   */
  | { type: 'files'; files: DifyFile[] }
  /** Terminal. `text` is the final answer; `status` is Dify's run status when it gave one. */
  | { type: 'end'; text: string; status?: string; usage?: Record<string, unknown> };

/** What a user reads when the Dify workflow stops to wait for a person's input. */
export const PAUSED_NOTE = '（这个流程在等待有人填写或确认后才能继续，这一步暂时无法在企业微信里完成。）';

/** What a user reads when a form the run waited for was not answered in time. */
export const FORM_TIMEOUT_NOTE = '（表单已超时，没有人在期限内作出选择。）';

/** Whether a form can be answered from WeCom: the Service API has its token, and it has buttons. */
export const answerable = (form: DifyForm): boolean => form.token !== undefined && form.actions.length > 0;

/** Output names tried, in order, when a workflow streamed no text and only its outputs hold the answer. */
const OUTPUT_KEYS = ['answer', 'text', 'result', 'output'];

function outputText(outputs: Record<string, unknown> | undefined): string | undefined {
  if (!outputs) return undefined;
  for (const key of OUTPUT_KEYS) {
    const v = outputs[key];
    if (typeof v === 'string' && v !== '') return v;
  }
  const strings = Object.values(outputs).filter((v): v is string => typeof v === 'string' && v !== '');
  return strings.length === 1 ? strings[0] : undefined;
}

/**
 * Folds frames into events. `apply` returns the events a frame produces and throws a `DifyError`
 * for a terminal failure; `done` turns true at the terminal event.
 *
 * New Agent (§4.3) streams `agent_message` deltas and then one closing `message` that repeats
 * the whole answer. Chat and chatflow never send `agent_message`, and agent-chat never sends
 * `message`, so the rule is: a `message` after any `agent_message` is a replacement, not a delta.
 * This needs no knowledge of the app's mode and does not double the text when Dify resends the
 * answer, whether or not it equals what was streamed.
 */
export class AnswerFold {
  text = '';
  readonly ids: DifyIds = {};
  done = false;
  readonly #thinking: 'show' | 'hide';
  /** Hidden thinking: the `<think>` sections taken out of the text as it streams. */
  readonly #filter: ThinkingFilter | undefined;
  /** Shown thinking: a block this fold opened for reasoning or tool calls, not closed yet. */
  #blockOpen = false;
  /** Hidden thinking: the bubble shows a tool's progress, which the answer's first text replaces. */
  #progressShown = false;
  /** The agent steps whose tool was named already (Dify sends a step again as it fills in). */
  readonly #toolsNamed = new Set<string>();
  #started = false;
  /** The answer's files (tool images, workflow outputs), by id or URL: named at its end. */
  readonly #files = new Map<string, DifyFile>();
  /** Where a relative file URL is (the Dify server's origin). */
  readonly #origin: string | undefined;

  constructor(options: { thinking?: 'show' | 'hide'; apiUrl?: string } = {}) {
    this.#thinking = options.thinking ?? 'show';
    this.#origin = options.apiUrl ? safeOrigin(options.apiUrl) : undefined;
    this.#filter = this.#thinking === 'hide' ? new ThinkingFilter() : undefined;
  }

  #sawWorkflow = false;
  /** The form the run is about to pause on (human input). */
  #form: DifyForm | undefined;
  #sawAgentMessage = false;
  #messageEnd: { usage: Record<string, unknown> | undefined } | undefined;

  apply(frame: DifyFrame): DifyEvent[] {
    const out: DifyEvent[] = [];
    this.#mergeIds(frame.ids);
    if (!this.#started && Object.keys(this.ids).length > 0) {
      this.#started = true;
      out.push({ type: 'started', ...this.ids });
    }
    switch (frame.event) {
      case 'agent_message':
        this.#sawAgentMessage = true;
        this.#append(frame.answer, out);
        break;
      case 'message':
        if (this.#sawAgentMessage) {
          if (frame.answer !== '') this.#replace(frame.answer, out);
        } else this.#append(frame.answer, out);
        break;
      case 'text_chunk':
        this.#append(frame.text, out);
        break;
      case 'message_replace':
        this.#replace(frame.answer, out);
        break;
      case 'text_replace':
        this.#replace(frame.text, out);
        break;
      case 'workflow_started':
        this.#sawWorkflow = true;
        break;
      case 'message_file':
        if (frame.belongsTo !== 'user') this.#attach([frame.file]);
        break;
      case 'message_end':
        this.#attach(frame.files);
        this.#messageEnd = { usage: frame.usage };
        // Chatflow sends message_end and then workflow_finished: keep reading (§5.1).
        if (!this.#sawWorkflow) this.#end(out, undefined, frame.usage);
        break;
      case 'workflow_finished': {
        if (frame.status === 'failed')
          throw new DifyError({
            code: 'workflow_failed',
            phase: 'stream',
            message: frame.error || 'the Dify workflow failed',
            partial: this.text,
            ids: { ...this.ids },
          });
        this.#attach(frame.files);
        // A workflow whose End node is not streamed has its answer only in the outputs.
        const fromOutputs = this.text === '' ? outputText(frame.outputs) : undefined;
        if (fromOutputs !== undefined) this.#replace(fromOutputs, out);
        this.#end(out, frame.status, this.#messageEnd?.usage ?? frame.usage);
        break;
      }
      case 'human_input_required':
        this.#form = frame.form;
        break;
      case 'workflow_paused': {
        // Human input (§4.9): this stream is over, and the run waits for a person. A form WeCom can
        // answer becomes a card (the caller's); any other is named, so the user is never left with a
        // half answer and no word why.
        const form = this.#form;
        if (!form || !answerable(form)) {
          const content = form?.content.trim() ? `${form.content.trim()}\n\n` : '';
          this.#push(`${this.text.trim() === '' ? '' : '\n\n'}${content}${PAUSED_NOTE}`, out);
        }
        this.#end(out, 'paused', this.#messageEnd?.usage, form && answerable(form) ? form : undefined);
        break;
      }
      case 'human_input_form_timeout':
        this.#push(`${this.text.trim() === '' ? '' : '\n\n'}${FORM_TIMEOUT_NOTE}\n\n`, out);
        break;
      case 'human_input_form_filled':
        break;
      case 'reasoning_chunk':
        this.#think(frame.reasoning, out);
        break;
      case 'agent_thought':
        if (frame.tool && !this.#toolsNamed.has(frame.id)) {
          this.#toolsNamed.add(frame.id);
          const line = toolLine(frame.tool, frame.toolLabels);
          if (this.#thinking === 'show') this.#think(line, out);
          else this.#progress(line.trim(), out);
        }
        break;
      case 'error':
        throw fromErrorFrame(frame, this.text, { ...this.ids });
      case 'other':
        break;
    }
    return out;
  }

  /**
   * The body ended. Before a terminal event that is an incomplete stream (§5.3). A chatflow that
   * sent message_end but lost workflow_finished has a complete, stored answer, so that one ends.
   */
  eof(): DifyEvent[] {
    if (this.done) return [];
    if (this.#messageEnd) {
      const out: DifyEvent[] = [];
      this.#end(out, undefined, this.#messageEnd.usage);
      return out;
    }
    throw new DifyError({
      code: 'incomplete',
      phase: 'stream',
      message: 'the Dify stream ended before its terminal event',
      partial: this.text,
      ids: { ...this.ids },
    });
  }

  #mergeIds(ids: DifyIds): void {
    // The first value wins: ids are constant through a stream (§4.1).
    if (ids.conversationId && !this.ids.conversationId) this.ids.conversationId = ids.conversationId;
    if (ids.messageId && !this.ids.messageId) this.ids.messageId = ids.messageId;
    if (ids.taskId && !this.ids.taskId) this.ids.taskId = ids.taskId;
    if (ids.workflowRunId && !this.ids.workflowRunId) this.ids.workflowRunId = ids.workflowRunId;
  }

  #append(answer: string, out: DifyEvent[]): void {
    let text = this.#filter ? this.#filter.push(answer) : answer;
    // Empty deltas are normal (§4.2) and carry nothing.
    if (text === '') return;
    // The answer begins: the tool's progress it stood in for goes.
    if (this.#progressShown) {
      this.#progressShown = false;
      this.text = text;
      out.push({ type: 'replace', text });
      return;
    }
    // The answer begins: the thinking block above it closes.
    if (this.#blockOpen) {
      this.#blockOpen = false;
      text = `</think>\n${text}`;
    }
    this.#push(text, out);
  }

  /**
   * Hidden thinking: while a tool runs before the answer's first word, the bubble says so
   * ("正在使用工具：查询知识库…") rather than only "thinking", and the answer replaces it.
   */
  #progress(line: string, out: DifyEvent[]): void {
    if (line === '' || (this.text !== '' && !this.#progressShown)) return;
    this.#progressShown = true;
    this.text = line;
    out.push({ type: 'replace', text: line });
  }

  /** Thinking to show, in the block above the answer (opened when first needed); none when hidden. */
  #think(text: string, out: DifyEvent[]): void {
    if (this.#thinking === 'hide' || text === '') return;
    // Reasoning after the answer began (a later node) opens a block of its own.
    const opened = this.#blockOpen ? text : `<think>${text}`;
    this.#blockOpen = true;
    this.#push(opened, out);
  }

  #push(text: string, out: DifyEvent[]): void {
    this.text += text;
    out.push({ type: 'delta', text });
  }

  #replace(answer: string, out: DifyEvent[]): void {
    const text = this.#filter ? withoutThinking(answer) : answer;
    this.#progressShown = false;
    if (text === this.text) return;
    this.text = text;
    out.push({ type: 'replace', text });
  }

  #attach(files: DifyFile[] | undefined): void {
    for (const file of files ?? []) this.#files.set(file.id ?? file.url, file);
  }

  #end(
    out: DifyEvent[],
    status: string | undefined,
    usage: Record<string, unknown> | undefined,
    form?: DifyForm,
  ): void {
    const rest = this.#filter?.flush() ?? '';
    if (rest !== '' && this.#progressShown) {
      this.#progressShown = false;
      this.text = rest;
      out.push({ type: 'replace', text: rest });
    } else if (rest !== '') this.#push(rest, out);
    // Tools ran, and no answer came: the progress line is not an answer.
    if (this.#progressShown) {
      this.#progressShown = false;
      this.text = '';
      out.push({ type: 'replace', text: '' });
    }
    if (this.#blockOpen) {
      this.#blockOpen = false;
      this.#push('</think>', out);
    }
    // The answer's files go to the caller, which shows the images it can and names the rest.
    if (this.#files.size > 0)
      out.push({
        type: 'files',
        files: [...this.#files.values()].map((f) => ({ ...f, url: absolute(f.url, this.#origin) })),
      });
    this.done = true;
    if (form)
      out.push({
        type: 'paused',
        form,
        ...(this.ids.workflowRunId ? { workflowRunId: this.ids.workflowRunId } : {}),
      });
    const end: DifyEvent = { type: 'end', text: this.text };
    if (status !== undefined) end.status = status;
    if (usage !== undefined) end.usage = usage;
    out.push(end);
  }
}

const safeOrigin = (url: string): string | undefined => {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
};

/** A file's URL as Dify gave it, made absolute on the Dify server's origin when it is relative. */
function absolute(url: string, origin: string | undefined): string {
  if (/^https?:\/\//.test(url) || !origin) return url;
  return `${origin}${url.startsWith('/') ? '' : '/'}${url}`;
}
