// A chatflow answer of a reasoning model, as Dify streams it: an LLM node's reasoning apart
// (`reasoning_chunk`), the model's own <think> in its text, then the answer. Shown, the bubble reads
// `<think>用户问天气，查一下。</think>\n<think>再确认</think>\n今天晴。`; hidden, `今天晴。`.
export const thinkingFrames = [
  { event: 'workflow_started', workflow_run_id: 'w', task_id: 't', data: { id: 'w' } },
  {
    event: 'reasoning_chunk',
    task_id: 't',
    data: { reasoning: '用户问天气，', node_id: 'llm', is_final: false },
  },
  { event: 'reasoning_chunk', task_id: 't', data: { reasoning: '查一下。', node_id: 'llm', is_final: true } },
  {
    event: 'message',
    conversation_id: 'c',
    message_id: 'm',
    task_id: 't',
    answer: '<think>再确认</think>\n',
  },
  { event: 'message', conversation_id: 'c', message_id: 'm', task_id: 't', answer: '今天晴。' },
  { event: 'message_end', conversation_id: 'c', message_id: 'm', task_id: 't', metadata: {} },
  { event: 'workflow_finished', task_id: 't', data: { id: 'w', status: 'succeeded' } },
];
