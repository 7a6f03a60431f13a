// The inspector page: polls the JSON API (the server folds the events; this only draws), draws the
// chart the server laid out from the machine's definition, and steps through a stream's events, its
// bubble drawn as WeCom draws it (markdown.js).
// Plain JS with no dependency, so it works offline and under a strict content security policy. Typed
// in JSDoc and checked on its own, with the browser's types (tsconfig.inspector.json); the answers'
// types are the ones the routes send (../api.ts).
/**
 * @typedef {import('../api.js').ApiError} ApiError
 * @typedef {import('../api.js').Chart} Chart
 * @typedef {import('../api.js').Step} Step
 * @typedef {import('../api.js').StreamDetail} StreamDetail
 * @typedef {import('../api.js').StreamList} StreamList
 * @typedef {import('../api.js').StreamRow} StreamRow
 * @typedef {import('../api.js').StuckDiagnosis} StuckDiagnosis
 * @typedef {import('../api.js').StuckReason} StuckReason
 * @typedef {NonNullable<StuckDiagnosis['waiting']>} Waiting
 */

// A module imported by name would be fetched without the `?token=` this one came with (the server
// asks every asset for it): the import carries this module's own query on.
/** @type {typeof import('./markdown.js')} */
const { renderMarkdown } = await import(`./markdown.js${new URL(import.meta.url).search}`);

const token = new URLSearchParams(location.search).get('token');
/** @type {Record<string, string>} */
const headers = token ? { authorization: `Bearer ${token}` } : {};
const SVG = 'http://www.w3.org/2000/svg';

/**
 * The element of the page (index.html) with this id, of this type: a missing one is a bug.
 * @template {Element} T
 * @param {string} id
 * @param {{ new (): T; prototype: T }} type
 * @returns {T}
 */
function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`the page has no ${type.name} #${id}`);
  return node;
}

/** @param {string} id */
const $ = (id) => byId(id, HTMLElement);
/** @param {string} id */
const $button = (id) => byId(id, HTMLButtonElement);
const slider = () => byId('step-slider', HTMLInputElement);

/** A failed API call, with the HTTP status when the server answered. */
class ApiFailure extends Error {
  /**
   * @param {string} message
   * @param {number} status
   */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** @param {unknown} error */
const messageOf = (error) => (error instanceof Error ? error.message : String(error));

/**
 * An answer of the JSON API, of the type the route sends (../api.ts).
 * @template T
 * @param {string} path
 * @returns {Promise<T>}
 */
async function getJson(path) {
  const res = await fetch(`/inspector/api/${path}`, { headers, cache: 'no-store' });
  /** @type {unknown} */
  const body = await res.json().catch(() => undefined);
  if (!res.ok) {
    const refusal = /** @type {Partial<ApiError> | undefined} */ (body);
    throw new ApiFailure(refusal?.message || `HTTP ${res.status}`, res.status);
  }
  return /** @type {T} */ (body);
}

/**
 * An element with attributes (or properties, for `className`/`textContent`/`title`) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string>} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'className' || k === 'textContent' || k === 'title') node[k] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

/**
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {...(Node | string)} children
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

/** @param {number | undefined | null} ms */
function duration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '–';
  const s = ms / 1000;
  if (s < 1) return `${Math.max(0, Math.round(ms))} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** @param {number | undefined} ms */
const offset = (ms) => (ms === undefined ? '?' : ms < 1000 ? `+${ms} ms` : `+${(ms / 1000).toFixed(2)} s`);
/**
 * @param {string} state
 * @param {boolean} finished
 */
const badgeClass = (state, finished) =>
  `badge ${state === 'completed' ? 'completed' : state === 'error' ? 'error' : finished ? '' : 'running'}`;

/**
 * @param {string} text
 * @param {boolean} [error]
 */
function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'status error' : 'status';
}

// ---- the live list ----

/**
 * The stream the page shows: `#stream=<id>`, or a bare `#<id>` as older links have it. A fragment
 * that names no element, so the browser never scrolls to one by itself.
 */
function selectedId() {
  const hash = location.hash.slice(1);
  const id = hash.startsWith('stream=') ? hash.slice('stream='.length) : hash;
  try {
    return decodeURIComponent(id);
  } catch {
    return id;
  }
}

/** @param {string} id */
const streamLink = (id) => `#stream=${encodeURIComponent(id)}`;

/** The bot whose streams the list shows, '' for every bot's; in the page's URL (`?bot=hr`), so a link keeps it. */
let botFilter = new URLSearchParams(location.search).get('bot') ?? '';
/** Every bot a list has shown so far: the filter's choices. */
const botsSeen = new Set(botFilter ? [botFilter] : []);
const botSelect = () => byId('bot-filter', HTMLSelectElement);

async function refreshList() {
  const bot = botFilter;
  try {
    /** @type {StreamList} */
    const list = await getJson(bot ? `streams?bot=${encodeURIComponent(bot)}` : 'streams');
    // The filter changed while this was under way: the list of the new one is on its way.
    if (bot !== botFilter) return;
    renderList(list.now, list.streams);
    setStatus(`live · updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    setStatus(`list: ${messageOf(error)}`, true);
  }
}

/**
 * @param {number} now
 * @param {StreamRow[]} streams
 */
function renderList(now, streams) {
  const rows = streams.map((s) => {
    const row = el(
      'tr',
      {
        'data-stream-id': s.streamId,
        className: [s.streamId === selectedId() ? 'selected' : '', s.stuck ? 'stuck' : ''].join(' ').trim(),
      },
      el('td', { className: 'id', title: s.streamId, textContent: s.streamId }),
      el('td', { className: 'bot', title: s.bot, textContent: s.bot || '–' }),
      el('td', { textContent: s.userid }),
      el('td', s.stuck ? { title: stuckText[s.stuck] } : {}, el('span', { className: badgeClass(s.state, s.finished), textContent: s.state })),
      el('td', { className: 'num', textContent: duration(now - s.openedAt) }),
      el('td', { className: 'num', textContent: duration(now - s.lastEventAt) }),
      el('td', { className: 'num', textContent: String(s.answerLength) }),
      el(
        'td',
        s.leaseLive && s.lease
          ? { className: 'lease-live', textContent: '● live', title: `${s.lease.node}, ${duration(s.lease.until - now)} left` }
          : { className: s.stuck ? 'lease-none gone' : 'lease-none', textContent: '–', title: s.lease ? 'run out' : 'no lease' },
      ),
    );
    row.addEventListener('click', () => {
      location.hash = streamLink(s.streamId);
    });
    return row;
  });
  byId('streams', HTMLTableElement).tBodies[0]?.replaceChildren(...rows);
  $('count').textContent = `(${streams.length})`;
  $('empty').textContent = botFilter
    ? `No streams of bot ${botFilter} yet.`
    : 'No streams yet. Send the bot a message.';
  $('empty').hidden = streams.length > 0;
  for (const s of streams) if (s.bot) botsSeen.add(s.bot);
  renderBotFilter();
}

/** The filter's choices: every bot seen, rebuilt only when one is new (rebuilding closes an open select). */
function renderBotFilter() {
  const select = botSelect();
  const ids = [...botsSeen].sort();
  if (select.options.length === ids.length + 1) return;
  select.replaceChildren(
    el('option', { value: '', textContent: 'all bots' }),
    ...ids.map((id) => el('option', { value: id, textContent: id })),
  );
  select.value = botFilter;
}

function filterByBot() {
  botFilter = botSelect().value;
  const url = new URL(location.href);
  if (botFilter) url.searchParams.set('bot', botFilter);
  else url.searchParams.delete('bot');
  history.replaceState(null, '', url);
  void refreshList();
}

// ---- why a stream stands still (the server decides it: src/diagnosis/stuck.ts) ----

/** @type {Record<StuckReason, string>} */
const stuckText = {
  'no-lease': 'stuck: its owner is gone; the next poll or a node’s sweep takes it over',
  quiet: 'stuck: no event for a while, though its owner is alive',
};

/** @param {Waiting} w */
function waitingText(w) {
  const what =
    w.on === 'auth'
      ? 'waiting on authentication'
      : w.on === 'queue'
        ? `queued behind ${w.behind}${w.behindState ? ` (${w.behindState})` : ''}`
        : w.on === 'dify-start'
          ? 'waiting for the Dify call to start'
          : `waiting on Dify (the last event: ${w.lastEvent})`;
  return `${what} for ${duration(w.forMs)}`;
}

/**
 * The diagnosis in a few words, the verdict first: stuck or not, what it waits for, WeCom's window.
 * @param {StreamDetail} d
 */
function renderWhy(d) {
  const g = d.diagnosis;
  const parts = [];
  if (g && !d.finished) {
    if (g.stuck === 'quiet')
      parts.push(el('strong', { textContent: `stuck: no event for ${duration(g.quietMs)}, though its owner is alive` }));
    else if (g.stuck) parts.push(el('strong', { textContent: stuckText[g.stuck] }));
    if (g.waiting) parts.push(waitingText(g.waiting));
    if (g.windowPassed) parts.push('WeCom stopped polling: the bubble can no longer change');
    else if (g.windowEndsAt !== undefined) parts.push(`WeCom polls for ${duration(g.windowEndsAt - d.now)} more`);
  }
  $('stream-why').replaceChildren(...parts.flatMap((part, i) => (i ? [' · ', part] : [part])));
  $('stream-why').hidden = parts.length === 0;
}

// ---- the chart ----

/** @param {Chart} chart */
function drawChart(chart) {
  const root = byId('chart', SVGSVGElement);
  for (const n of chart.nodes) if (n.group) groupOf.set(n.id, n.group);
  root.setAttribute('viewBox', `0 0 ${chart.width} ${chart.height}`);
  /** @param {string} id */
  const marker = (id) =>
    svg('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M0 0 L10 5 L0 10 z' }));
  const parts = [svg('defs', {}, marker('arrow'), marker('arrow-taken'))];
  for (const e of chart.edges) {
    const label = e.label;
    const text = svg('text', { x: label.x + 4, y: label.y + 12 });
    e.events.forEach((name, i) => text.append(svg('tspan', { x: label.x + 4, dy: i ? 13 : 0 }, name)));
    parts.push(
      svg('g', { class: 'edge', 'data-from': e.from, 'data-to': e.to },
        svg('path', { d: e.d, 'marker-end': 'url(#arrow)' }),
        svg('rect', { x: label.x, y: label.y, width: label.w, height: label.h, rx: 3 }),
        text),
    );
  }
  // A group's frame first, under its children's boxes: its name, and what every child takes and stays.
  for (const g of chart.groups) {
    const frame = svg('g', { class: 'group', 'data-group': g.id },
      svg('rect', { x: g.x, y: g.y, width: g.w, height: g.h, rx: 14 }),
      svg('text', { class: 'group-name', x: g.x + 12, y: g.y + 15 }, g.id));
    if (g.stays.length)
      frame.append(svg('text', { class: 'stays', x: g.x + 12, y: g.y + g.h - 5 }, `↻ ${g.stays.length} events in every state`,
        svg('title', {}, `every state here stays on: ${g.stays.join(', ')}`)));
    parts.splice(1, 0, frame);
  }
  for (const n of chart.nodes) {
    const cx = n.x + n.w / 2;
    const finished = n.tags.includes('finished') || n.type === 'final';
    const g = svg('g', { class: `node${finished ? ' tag-finished' : ''}`, 'data-state': n.id },
      svg('rect', { class: 'outer', x: n.x, y: n.y, width: n.w, height: n.h, rx: 10 }));
    if (finished) g.append(svg('rect', { class: 'inner', x: n.x + 4, y: n.y + 4, width: n.w - 8, height: n.h - 8, rx: 7 }));
    const sub = [n.tags.join(' '), n.children.length ? `{${n.children.join(', ')}}` : '', ...n.does.map((d) => `▶ ${d}`)]
      .filter(Boolean)
      .join(' ');
    // The name, then what the box has of tags and events that stay, centred as a block.
    let y = n.y + n.h / 2 + 5 - ((sub ? 13 : 0) + (n.stays.length ? 13 : 0)) / 2;
    g.append(svg('text', { x: cx, y }, n.id));
    if (sub) g.append(svg('text', { class: 'tags', x: cx, y: (y += 14) }, sub));
    if (n.stays.length) {
      g.append(svg('text', { class: 'stays', x: cx, y: (y += 13) }, `↻ ${n.stays.length} events`,
        svg('title', {}, `stays here on: ${n.stays.join(', ')}`)));
    }
    if (n.initial) {
      parts.push(svg('circle', { class: 'start', cx: n.x - 22, cy: n.y + n.h / 2, r: 5 }));
      parts.push(svg('g', { class: 'edge' },
        svg('path', { d: `M${n.x - 17} ${n.y + n.h / 2} H${n.x}`, 'marker-end': 'url(#arrow)' })));
    }
    parts.push(g);
  }
  root.replaceChildren(...parts);
  // Transitions on the machine's root apply in every state: listed, not drawn from each box.
  const any = chart.anyState.map((t) => (t.to ? `${t.event} → ${t.to}` : t.event));
  $('chart-any').textContent = `from any state: ${any.join(' · ')}`;
  $('chart-any').hidden = any.length === 0;
}

/** The group each state is drawn in, from the chart. */
const groupOf = new Map();

/** @param {Step} step */
function highlightChart(step) {
  const root = byId('chart', SVGSVGElement);
  for (const node of root.querySelectorAll('.node')) {
    const here = node.getAttribute('data-state') === step.state;
    node.classList.toggle('current', here);
    node.classList.toggle('stayed', here && step.outcome === 'stayed');
  }
  for (const edge of root.querySelectorAll('.edge[data-from]')) {
    const from = edge.getAttribute('data-from');
    // An arrow from a group's frame is taken from whichever of its children.
    const fromHere = from === step.from || groupOf.get(step.from) === from;
    const taken = step.outcome === 'moved' && fromHere && edge.getAttribute('data-to') === step.state;
    edge.classList.toggle('taken', taken);
    edge.querySelector('path')?.setAttribute('marker-end', taken ? 'url(#arrow-taken)' : 'url(#arrow)');
    // Drawn last, a taken arrow is on top of the others.
    if (taken) root.insertBefore(edge, root.querySelector('.node'));
  }
}

// ---- one stream ----

/** @type {StreamDetail | undefined} */
let detail;
/**
 * The bubble's content at each step.
 * @type {string[]}
 */
let contents = [];
let index = 0;
/** The text the bubble shows, drawn again only when it changes: a poll keeps what the user unfolded. */
let bubbleText = '';
/** Whether the user unfolded the thinking block: it stays so while the bubble grows. */
let thinkOpen = false;

async function openStream() {
  const id = selectedId();
  for (const row of byId('streams', HTMLTableElement).querySelectorAll('tbody tr'))
    row.classList.toggle('selected', row.getAttribute('data-stream-id') === id);
  detail = undefined;
  bubbleText = '';
  thinkOpen = false;
  $('bubble-content').replaceChildren();
  $('stream').hidden = true;
  $('pick').hidden = false;
  if (!id) return;
  $('pick').textContent = 'Loading…';
  await refreshStream(true);
}

async function refreshStream(first = false) {
  const id = selectedId();
  if (!id) return;
  /** @type {StreamDetail} */
  let next;
  try {
    next = await getJson(`streams/${encodeURIComponent(id)}`);
  } catch (error) {
    if (id !== selectedId()) return;
    if (first || (error instanceof ApiFailure && error.status === 404)) {
      detail = undefined;
      $('stream').hidden = true;
      $('pick').hidden = false;
      $('pick').textContent = `Stream ${id}: ${messageOf(error)}`;
    } else setStatus(`stream: ${messageOf(error)}`, true);
    return;
  }
  if (id !== selectedId()) return;
  const atEnd = !detail || index === detail.steps.length - 1;
  const grew = !detail || next.version !== detail.version;
  detail = next;
  if (grew) {
    contents = [];
    let content = '';
    for (const step of next.steps) contents.push((content = content.slice(0, step.bubble.keep) + step.bubble.add));
    renderTimeline(next);
  }
  renderMeta(next);
  $('pick').hidden = true;
  $('stream').hidden = false;
  // Following a live stream: stay on its newest event unless the user stepped back.
  show(atEnd ? next.steps.length - 1 : index);
  // A stream just opened shows its header, wherever the page was scrolled before.
  if (first) window.scrollTo(0, 0);
}

/** @param {StreamDetail} d */
function renderMeta(d) {
  const c = d.context;
  $('stream-id').textContent = d.streamId;
  const lease = d.leaseLive && d.lease
    ? `lease ${d.lease.node}, ${duration(d.lease.until - d.now)} left`
    : d.lease ? 'lease run out' : 'no lease';
  $('stream-meta').replaceChildren(
    el('span', { className: badgeClass(d.state, d.finished), textContent: d.state }),
    ` · bot `, el('b', { className: 'bot', textContent: c.bot || '–' }),
    ` · user `, el('b', { textContent: c.userid }),
    c.chatid ? ` in ${c.chatid}` : '',
    ` · opened ${duration(d.now - c.openedAt)} ago · last event ${duration(d.now - c.lastEventAt)} ago`,
    ` · ${d.version} events · answer ${d.answerLength} chars · ${lease}`,
  );
  renderWhy(d);
  $('question').textContent = c.query;
  const skip = new Set(['query']);
  const rows = [];
  for (const [k, v] of Object.entries(c)) {
    if (skip.has(k) || v === undefined || v === '' || v === null) continue;
    const text = typeof v === 'object' ? JSON.stringify(v) : k.endsWith('At') && typeof v === 'number' ? new Date(v).toISOString() : String(v);
    rows.push(el('dt', { textContent: k }), el('dd', { textContent: text }));
  }
  $('context').replaceChildren(...rows);
}

/** @param {StreamDetail} detail */
function renderTimeline(detail) {
  const items = detail.steps.map((step, i) => {
    const type = el('span', { className: 'type', textContent: step.type });
    if (step.outcome === 'unknown' || step.outcome === 'ignored') type.append(el('span', { className: 'tag', textContent: step.outcome }));
    const li = el(
      'li',
      { className: step.outcome, 'data-seq': String(step.seq) },
      el('span', { className: 'seq', textContent: `#${step.seq}` }),
      el('span', { className: 'offset', textContent: offset(step.offsetMs) }),
      type,
      el('span', { className: 'summary', textContent: step.summary, title: step.summary }),
      el('span', { className: 'to', textContent: step.outcome === 'moved' ? `→ ${step.state}` : '' }),
    );
    li.addEventListener('click', () => show(i));
    return li;
  });
  $('timeline').replaceChildren(...items);
  $('events-count').textContent = `(${detail.steps.length})`;
  slider().max = String(Math.max(0, detail.steps.length - 1));
}

/**
 * Shows step `i` (clamped to the steps there are) of the open stream.
 * @param {number} i
 */
function show(i) {
  if (!detail || detail.steps.length === 0) return;
  index = Math.max(0, Math.min(detail.steps.length - 1, i));
  const step = detail.steps[index];
  if (!step) return;
  const last = detail.steps.length - 1;
  slider().value = String(index);
  $('step-count').textContent = `step ${index + 1} of ${last + 1} · ${offset(step.offsetMs)}`;
  $('step-event').textContent = step.type;
  $('step-move').textContent =
    step.outcome === 'moved' ? `${step.from} → ${step.state}` : step.outcome === 'stayed' ? `stays in ${step.state}` : `(${step.outcome}: state unchanged)`;
  $('step-state').textContent = step.state;
  renderBubble(contents[index] ?? '');
  renderExtras(step);
  renderApart(detail, index);
  $('bubble-finish').textContent = `finish: ${step.bubble.finish}`;
  $('bubble-finish').className = step.bubble.finish ? 'finish' : 'finish open';
  $button('step-first').disabled = $button('step-prev').disabled = index === 0;
  $button('step-next').disabled = $button('step-last').disabled = index === last;
  for (const li of $('timeline').children) li.classList.toggle('current', li.getAttribute('data-seq') === String(step.seq));
  const item = $('timeline').children[index];
  if (item) scrollWithin($('timeline'), item);
  highlightChart(step);
}

/**
 * Scrolls the list, and only the list, to show the item: `scrollIntoView` would scroll the page too,
 * down past the stream's header.
 * @param {Element} list
 * @param {Element} item
 */
function scrollWithin(list, item) {
  const outer = list.getBoundingClientRect();
  const inner = item.getBoundingClientRect();
  if (inner.top < outer.top) list.scrollTop -= outer.top - inner.top;
  else if (inner.bottom > outer.bottom) list.scrollTop += inner.bottom - outer.bottom;
}

// ---- the bubble, as WeCom shows it ----

/** @param {string} text */
function renderBubble(text) {
  if (text === bubbleText && $('bubble-content').hasChildNodes()) return;
  bubbleText = text;
  $('bubble-content').replaceChildren(renderMarkdown(text));
  for (const details of $('bubble-content').querySelectorAll('details.think:not(.thinking)')) {
    if (!(details instanceof HTMLDetailsElement)) continue;
    details.open = thinkOpen;
    details.addEventListener('toggle', () => {
      thinkOpen = details.open;
    });
  }
}

/**
 * What the finished bubble carries besides its text, as WeCom shows it: the images under the text (the
 * bytes are not kept: each is a placeholder with its name and size), and the card after the bubble
 * with its buttons (drawn, not clickable here). Text only, through the DOM: nothing of Dify's runs.
 * @param {Step} step
 */
function renderExtras(step) {
  const images = $('bubble-images');
  images.hidden = !step.images?.length;
  images.replaceChildren(
    ...(step.images ?? []).map((image) => {
      const tile = document.createElement('span');
      tile.className = 'image';
      tile.textContent = `🖼 ${image.name ?? 'image'}${image.bytes === undefined ? '' : ` · ${image.bytes} B`}`;
      return tile;
    }),
  );
  const card = step.card;
  $('bubble-card').hidden = !card;
  if (!card) return;
  $('card-title').textContent = card.title;
  $('card-desc').textContent = card.desc ?? '';
  $('card-desc').hidden = !card.desc;
  $('card-sub').textContent = card.sub ?? '';
  $('card-sub').hidden = !card.sub;
  $('card-buttons').replaceChildren(
    ...card.buttons.map((text) => {
      const button = document.createElement('span');
      button.className = 'card-button';
      button.textContent = text;
      return button;
    }),
  );
}

/**
 * What the stream's context says of a bubble closed early (`bubble.closed`), read defensively: the
 * context is the server's, typed as unknown fields.
 * @param {unknown} value
 * @returns {{ reason: string; shown: number | undefined } | undefined}
 */
function closedBubbleOf(value) {
  if (typeof value !== 'object' || value === null) return undefined;
  const { reason, shown } = /** @type {{ reason?: unknown; shown?: unknown }} */ (value);
  return { reason: String(reason), shown: typeof shown === 'number' ? shown : undefined };
}

/**
 * Under the bubble, at step `i`: whether WeCom's bubble was closed before the answer ended, and what
 * went to the user apart from it, by response_url (docs/protocol/wecom.md §8, §9.2).
 * @param {StreamDetail} d
 * @param {number} i
 */
function renderApart(d, i) {
  const steps = d.steps.slice(0, i + 1).filter((s) => s.outcome === 'moved' || s.outcome === 'stayed');
  const closedAt = steps.find((s) => s.type === 'bubble.closed');
  const delivered = steps.findLast((s) => s.type === 'delivery.sent' || s.type === 'delivery.failed');
  const closed = closedAt ? closedBubbleOf(d.context.bubble) : undefined;

  const note = $('bubble-closed');
  note.hidden = !closedAt;
  if (closedAt) {
    const why =
      closed?.reason === 'window'
        ? 'WeCom’s polling window was ending'
        : closed?.reason === 'overflow'
          ? 'the answer outgrew the bubble'
          : `(${closed?.reason ?? '?'})`;
    const shown =
      closed?.shown === undefined
        ? ''
        : closed.shown === 0
          ? ': it shows none of the answer'
          : `: it shows the first ${closed.shown} of ${d.answerLength} characters of the answer`;
    note.textContent = `The bubble was closed early at ${offset(closedAt.offsetMs)}, ${why}, with the text above${shown}.`;
  }

  const apart = $('apart');
  apart.hidden = !closedAt && !delivered;
  if (apart.hidden) return;
  const rest =
    d.state === 'error'
      ? 'why the answer failed'
      : closed?.shown !== undefined
        ? `the rest of the answer, ${Math.max(0, d.answerLength - closed.shown)} characters after the first ${closed.shown}`
        : 'what of the answer the bubble could not hold';
  $('apart-what').textContent = `Sent apart by response_url, as one markdown message: ${rest}.`;
  const failure = d.context.delivery;
  const settled = ['completed', 'error'].includes(d.steps[i]?.state ?? '');
  $('apart-status').textContent = !delivered
    ? settled
      ? 'not sent yet'
      : 'to follow once the answer is complete'
    : delivered.type === 'delivery.sent'
      ? `sent at ${offset(delivered.offsetMs)} (${delivered.summary})`
      : `failed at ${offset(delivered.offsetMs)}: ${
          typeof failure === 'object' && failure !== null && 'message' in failure ? String(failure.message) : delivered.summary
        }`;
  $('apart-status').className = delivered?.type === 'delivery.failed' ? 'apart-status failed' : 'apart-status';
}

// ---- wiring ----

$button('step-first').addEventListener('click', () => show(0));
$button('step-prev').addEventListener('click', () => show(index - 1));
$button('step-next').addEventListener('click', () => show(index + 1));
$button('step-last').addEventListener('click', () => show(Infinity));
slider().addEventListener('input', () => show(Number(slider().value)));
document.addEventListener('keydown', (e) => {
  // The focused slider moves itself (and says so with `input`).
  if (!detail || e.target instanceof HTMLInputElement || e.altKey || e.ctrlKey || e.metaKey) return;
  /** @type {Record<string, number>} */
  const keys = { ArrowLeft: index - 1, ArrowRight: index + 1, Home: 0, End: Infinity };
  const to = keys[e.key];
  if (to === undefined) return;
  e.preventDefault();
  show(to);
});
window.addEventListener('hashchange', openStream);
botSelect().addEventListener('change', filterByBot);
renderBotFilter();

try {
  drawChart(await getJson('machine'));
} catch (error) {
  setStatus(`chart: ${messageOf(error)}`, true);
}
/**
 * Polls one after another (never two at once), about once a second.
 * @param {number} ms
 * @param {() => Promise<void> | undefined} poll
 */
function every(ms, poll) {
  const tick = async () => {
    await poll();
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

await Promise.all([refreshList(), openStream()]);
every(1000, refreshList);
every(1000, () => (detail ? refreshStream() : undefined));
