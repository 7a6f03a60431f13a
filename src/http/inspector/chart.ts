// The inspector's state chart, read from the machine's own definition at run time (its state nodes
// and their `transitions`), never from a hand-drawn copy, so it cannot drift from the code. A state
// with children (the stream machine's `running`) is a group: its children are boxes of their own,
// drawn inside the group's frame, and the transitions the group holds for all of them are arrows from
// the frame (or, when they stay, listed on it). Also lays the chart out, so that the page only draws
// boxes, frames and paths. Pure.
//
// Why the layout is our own and not a library's: the chart had 7 states and 13 arrows when this was
// weighed, and a fixed layered layout for it is `layout` below, about 150 lines, tested to overlap
// nothing. @dagrejs/dagre (50 KB minified, graphlib included) laid the same graph out with arrows crossing
// each other and labels on the lines; elkjs draws it as cleanly as this, but is 1.6 MB of JavaScript
// compiled from Java (8 MB installed), asynchronous, and EPL/GPL licensed. Both run offline in Node and in
// a browser; the layout runs here once, when the inspector is mounted, so the page would not grow either
// way. One level of nesting (a group around some states) is drawn as a frame around its children's
// boxes, laid out like any others; deeper nesting would be the time to revisit.

/** An action as a definition names it: by name, or as `{type, params}`. */
type DefinitionAction = string | { type: string } | ((...args: never[]) => unknown);

/** The part of an XState v5 transition definition the chart reads. */
export interface DefinitionTransition {
  eventType: string;
  target?: ReadonlyArray<{ path: string[] }> | undefined;
  guard?: unknown;
  actions?: readonly DefinitionAction[] | undefined;
}

/** The part of an XState v5 state node the chart reads (`machine.root` and its `states`). */
export interface DefinitionNode {
  key: string;
  type: string;
  tags: string[];
  states: Record<string, DefinitionNode>;
  transitions: Map<string, DefinitionTransition[]>;
  always?: DefinitionTransition[] | undefined;
  initial: { target: ReadonlyArray<{ path: string[] }> };
  entry?: readonly DefinitionAction[] | undefined;
}

export interface ChartNode {
  /** The state's name (an innermost state: what a stream's `state` is called). */
  id: string;
  /** Its own tags and its group's. */
  tags: string[];
  /** XState's node type: `atomic`, `compound`, `final`… */
  type: string;
  initial: boolean;
  /** The group it is drawn in, if any. */
  group?: string | undefined;
  /** Nested states: none, the children of a group are boxes of their own. */
  children: string[];
  /** Events this state takes without leaving it (targetless transitions). */
  stays: string[];
  /** The effects the machine names on entering it (the owner runs them: `authenticate`, `finish`…). */
  does: string[];
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface ChartEdge {
  from: string;
  to: string;
  /** Every event (with its guard, and `/ effect` for the effects it names) that takes `from` to `to`. */
  events: string[];
  /** SVG path data, ending where the arrow head goes. */
  d: string;
  label: { x: number; y: number; w: number; h: number };
}

/** A state with children: a frame around their boxes, holding the transitions they share. */
export interface ChartGroup {
  id: string;
  tags: string[];
  children: string[];
  /** Events every child takes without leaving it (the group's targetless transitions). */
  stays: string[];
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Chart {
  machineId: string;
  initial: string;
  nodes: ChartNode[];
  groups: ChartGroup[];
  /** Arrows between states; one `from` a group is taken from whichever of its children. */
  edges: ChartEdge[];
  /** Transitions defined on the machine's root: taken from whichever state the stream is in. */
  anyState: { event: string; to?: string }[];
  width: number;
  height: number;
}

const NODE_W = 128;
const NODE_H = 58;
const COL_GAP = 132;
const ROW_GAP = 64;
const PAD = 28;
const LANE_GAP = 26;
/** Room between a group's frame and its children's boxes. */
const GROUP_PAD = 14;
/** The page draws labels in an 11px monospace font: this wide per character, this tall per line. */
const CHAR_W = 6.7;
const LINE_H = 13;

interface Transition {
  from: string;
  to?: string;
  event: string;
}

/**
 * The chart of a machine: `chartOf(streamMachine)`. An action whose implementation is one of XState's
 * own (`assign`) changes the context; any other is an effect the machine names, shown on the chart.
 */
export function chartOf(machine: {
  id: string;
  root: DefinitionNode;
  implementations?: { actions?: Record<string, unknown> };
}): Chart {
  const root = machine.root;
  const actions = machine.implementations?.actions ?? {};
  const effects: Effects = (list) =>
    (list ?? []).flatMap((a) => {
      const name = typeof a === 'string' ? a : typeof a === 'object' && a !== null ? a.type : undefined;
      if (!name) return [];
      const kind = (actions[name] as { type?: unknown } | undefined)?.type;
      return typeof kind === 'string' && kind.startsWith('xstate.') ? [] : [name];
    });
  const nodes = new Map<string, ChartNode>();
  const groups = new Map<string, ChartGroup>();
  const transitions: Transition[] = [];
  for (const [id, node] of Object.entries(root.states)) {
    const children = Object.entries(node.states);
    if (children.length === 0) {
      nodes.set(id, box(id, node, [...node.tags], effects));
      for (const t of transitionsOf(node, root, effects)) transitions.push({ from: id, ...t });
      continue;
    }
    groups.set(id, {
      id,
      tags: [...node.tags],
      children: children.map(([c]) => c),
      stays: [],
      x: 0,
      y: 0,
      w: 0,
      h: 0,
    });
    for (const [childId, child] of children) {
      nodes.set(childId, { ...box(childId, child, [...node.tags, ...child.tags], effects), group: id });
      for (const t of transitionsOf(child, root, effects)) transitions.push({ from: childId, ...t });
    }
    for (const t of transitionsOf(node, root, effects)) transitions.push({ from: id, ...t });
  }
  const initialPath = root.initial.target[0]?.path ?? [];
  const initial = leafOf(initialPath, root) ?? [...nodes.keys()][0] ?? '';
  for (const n of nodes.values()) n.initial = n.id === initial;
  const moves = new Map<string, ChartEdge>();
  for (const t of transitions) {
    const group = groups.get(t.from);
    if (t.to === undefined || (!group && t.to === t.from) || (!nodes.has(t.to) && !groups.has(t.to))) {
      (group ?? nodes.get(t.from))?.stays.push(t.event);
      continue;
    }
    const key = `${t.from}\u0000${t.to}`;
    const edge = moves.get(key) ?? {
      from: t.from,
      to: t.to,
      events: [],
      d: '',
      label: { x: 0, y: 0, w: 0, h: 0 },
    };
    if (!edge.events.includes(t.event)) edge.events.push(t.event);
    moves.set(key, edge);
  }
  const edges = [...moves.values()];
  const anyState = transitionsOf(root, root, effects).map(({ event, to }) =>
    to === undefined ? { event } : { event, to },
  );
  const size = layout([...nodes.values()], [...groups.values()], edges, initial);
  return {
    machineId: machine.id,
    initial,
    nodes: [...nodes.values()],
    groups: [...groups.values()],
    edges,
    anyState,
    ...size,
  };
}

/** The effects among a list of actions (by the machine's implementations). */
type Effects = (list: readonly DefinitionAction[] | undefined) => string[];

function box(id: string, node: DefinitionNode, tags: string[], effects: Effects): ChartNode {
  return {
    id,
    tags,
    type: node.type,
    initial: false,
    children: [],
    stays: [],
    does: effects(node.entry),
    x: 0,
    y: 0,
    w: NODE_W,
    h: NODE_H,
  };
}

/** The innermost state a target path enters: a group's initial child when the path ends at the group. */
function leafOf(path: readonly string[], root: DefinitionNode): string | undefined {
  let node: DefinitionNode | undefined = root;
  let name: string | undefined;
  for (const key of path) {
    node = node?.states[key];
    name = key;
  }
  while (node && Object.keys(node.states).length > 0) {
    name = node.initial.target[0]?.path.at(-1);
    node = name ? node.states[name] : undefined;
  }
  return name;
}

function transitionsOf(
  node: DefinitionNode,
  machineRoot: DefinitionNode,
  effects: Effects,
): { event: string; to?: string }[] {
  const out: { event: string; to?: string }[] = [];
  const add = (event: string, list: readonly DefinitionTransition[]) => {
    for (const t of list) {
      const guard = guardName(t.guard);
      // A target is named by its innermost state: `running.authenticating` is authenticating, and
      // a group is the state it starts in.
      const path = t.target?.[0]?.path;
      const to = path ? leafOf(path, machineRoot) : undefined;
      const does = effects(t.actions);
      const named = `${guard ? `${event} [${guard}]` : event}${does.length ? ` / ${does.join(', ')}` : ''}`;
      out.push({ event: named, ...(to === undefined ? {} : { to }) });
    }
  };
  for (const [event, list] of node.transitions) add(event, list);
  if (node.always) add('(always)', node.always);
  return out;
}

function guardName(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || 'guard';
  if (typeof guard === 'object' && guard !== null && typeof (guard as { type?: unknown }).type === 'string')
    return (guard as { type: string }).type;
  return 'guard';
}

/**
 * Columns by distance from the initial state (breadth first), with the states that lead nowhere
 * (finished) in a last column of their own; arrows between neighbouring columns are curves, longer
 * ones run in lanes above or below the boxes so that they never cross one. Sets the nodes' boxes and
 * the edges' paths and labels; returns the chart's size.
 */
function layout(
  nodes: ChartNode[],
  groups: ChartGroup[],
  allEdges: ChartEdge[],
  initial: string,
): { width: number; height: number } {
  // The states are laid out by the arrows between states; a group's arrows are drawn from its frame.
  const edges = allEdges.filter((e) => !groups.some((g) => g.id === e.from));
  const fromGroups = allEdges.filter((e) => !edges.includes(e));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out = new Map<string, string[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  const rank = new Map<string, number>([[initial, 0]]);
  const queue = [initial];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    for (const next of out.get(id) ?? []) {
      if (rank.has(next)) continue;
      rank.set(next, rank.get(id)! + 1);
      queue.push(next);
    }
  }
  const sinks = nodes.filter((n) => n.id !== initial && !(out.get(n.id)?.length ?? 0) && rank.has(n.id));
  const last = Math.max(
    0,
    ...nodes.filter((n) => !sinks.includes(n) && rank.has(n.id)).map((n) => rank.get(n.id)!),
  );
  for (const n of sinks) rank.set(n.id, last + 1);
  const unreached = Math.max(...rank.values()) + 1;
  for (const n of nodes) if (!rank.has(n.id)) rank.set(n.id, unreached);

  const columns: ChartNode[][] = [];
  for (const n of nodes) {
    const r = rank.get(n.id)!;
    columns[r] = [...(columns[r] ?? []), n];
  }
  const filled = columns.filter((c) => c !== undefined);
  const column = new Map<string, number>();
  const row = new Map<string, number>();
  const number = (c: ChartNode[], i: number) => {
    c.forEach((n, j) => {
      column.set(n.id, i);
      row.set(n.id, j);
    });
  };
  filled.forEach(number);
  // Fewer crossings: from the last column (the finished states, in the definition's order) back to the
  // first, each column sorted by the mean row of its neighbours in the column to its right.
  const neighbours = new Map<string, string[]>();
  for (const e of edges) {
    neighbours.set(e.from, [...(neighbours.get(e.from) ?? []), e.to]);
    neighbours.set(e.to, [...(neighbours.get(e.to) ?? []), e.from]);
  }
  for (let i = filled.length - 2; i >= 0; i--) {
    const centre = (n: ChartNode) => {
      const rows = (neighbours.get(n.id) ?? [])
        .filter((m) => column.get(m) === i + 1)
        .map((m) => row.get(m)!);
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : row.get(n.id)!;
    };
    const c = filled[i]!;
    const keys = new Map(c.map((n) => [n, centre(n)]));
    c.sort((a, b) => keys.get(a)! - keys.get(b)! || row.get(a.id)! - row.get(b.id)!);
    number(c, i);
  }

  // Long arrows go above when their target is in the upper half of its column, below otherwise;
  // the shortest runs in the lane nearest the boxes.
  const long = edges.filter((e) => Math.abs(column.get(e.to)! - column.get(e.from)!) > 1);
  const isAbove = (e: ChartEdge) => row.get(e.to)! <= (filled[column.get(e.to)!]!.length - 1) / 2;
  const span = (e: ChartEdge) => Math.abs(column.get(e.to)! - column.get(e.from)!);
  const above = long.filter(isAbove).sort((a, b) => span(a) - span(b));
  const below = long.filter((e) => !isAbove(e)).sort((a, b) => span(a) - span(b));

  const tallest = Math.max(...filled.map((c) => c.length * NODE_H + (c.length - 1) * ROW_GAP));
  const top = PAD + above.length * LANE_GAP + (above.length ? LINE_H : 0);
  filled.forEach((c, i) => {
    const height = c.length * NODE_H + (c.length - 1) * ROW_GAP;
    c.forEach((n, j) => {
      n.x = PAD + 14 + i * (NODE_W + COL_GAP);
      n.y = top + (tallest - height) / 2 + j * (NODE_H + ROW_GAP);
    });
  });
  const width = PAD * 2 + 14 + filled.length * NODE_W + (filled.length - 1) * COL_GAP;
  const height = top + tallest + below.length * LANE_GAP + (below.length ? LINE_H : 0) + PAD;
  // A group's frame: around its children's boxes, with room above them for its name.
  for (const g of groups) {
    const children = nodes.filter((n) => n.group === g.id);
    const x1 = Math.min(...children.map((n) => n.x)) - GROUP_PAD;
    const y1 = Math.min(...children.map((n) => n.y)) - GROUP_PAD - LINE_H;
    const x2 = Math.max(...children.map((n) => n.x + n.w)) + GROUP_PAD;
    const y2 = Math.max(...children.map((n) => n.y + n.h)) + GROUP_PAD;
    Object.assign(g, { x: round(x1), y: round(y1), w: round(x2 - x1), h: round(y2 - y1) });
  }

  const placed: Box[] = nodes.map((n) => ({ x: n.x, y: n.y, w: n.w, h: n.h }));
  const label = (e: ChartEdge, at: (t: number) => Point, tries: number[]) => {
    const lines = e.events.length;
    const w = Math.max(...e.events.map((s) => s.length)) * CHAR_W + 8;
    const h = lines * LINE_H + 4;
    const boxAt = (t: number): Box => {
      const p = at(t);
      return { x: p.x - w / 2, y: p.y - h / 2, w, h };
    };
    const box = tries.map(boxAt).find((b) => !placed.some((p) => overlaps(b, p))) ?? boxAt(tries[0]!);
    placed.push(box);
    e.label = { x: round(box.x), y: round(box.y), w: round(w), h };
  };

  // Lanes first: their labels have the most room and claim it before the curves'.
  const lane = (list: ChartEdge[], up: boolean) => {
    list.forEach((e, k) => {
      const from = byId.get(e.from)!;
      const to = byId.get(e.to)!;
      const y = up ? from.y : from.y + from.h;
      const laneY = up ? top - (k + 1) * LANE_GAP + 6 : top + tallest + (k + 1) * LANE_GAP - 6;
      const endY = up ? to.y : to.y + to.h;
      // Outer lanes leave further left and arrive further right, so that no two lanes cross.
      const shift = (k - (list.length - 1) / 2) * 12;
      const x1 = from.x + from.w / 2 - shift;
      const x2 = to.x + to.w / 2 + shift;
      e.d = `M${round(x1)} ${round(y)} V${round(laneY)} H${round(x2)} V${round(endY)}`;
      label(e, (t) => ({ x: x1 + (x2 - x1) * t, y: laneY }), [0.5, 0.35, 0.65, 0.25, 0.75]);
    });
  };
  lane(above, true);
  lane(below, false);

  for (const e of edges) {
    if (long.includes(e)) continue;
    const from = byId.get(e.from)!;
    const to = byId.get(e.to)!;
    const dc = column.get(e.to)! - column.get(e.from)!;
    let p0: Point;
    let p3: Point;
    let c1: Point;
    let c2: Point;
    if (dc === 0) {
      // Within one column: down on the right half, up on the left half.
      const down = to.y > from.y;
      const x = from.x + from.w / 2 + (down ? 12 : -12);
      p0 = { x, y: down ? from.y + from.h : from.y };
      p3 = { x, y: down ? to.y : to.y + to.h };
      c1 = p0;
      c2 = p3;
    } else if (dc > 0) {
      p0 = { x: from.x + from.w, y: from.y + from.h / 2 - 6 };
      p3 = { x: to.x, y: to.y + to.h / 2 - 6 };
      const dx = (p3.x - p0.x) / 2;
      c1 = { x: p0.x + dx, y: p0.y };
      c2 = { x: p3.x - dx, y: p3.y };
    } else {
      // Backwards: below the forward arrows between the same columns.
      p0 = { x: from.x, y: from.y + from.h / 2 + 10 };
      p3 = { x: to.x + to.w, y: to.y + to.h / 2 + 10 };
      const dx = (p0.x - p3.x) / 2;
      c1 = { x: p0.x - dx, y: p0.y + 18 };
      c2 = { x: p3.x + dx, y: p3.y + 18 };
    }
    const pts = [p0, c1, c2, p3].map((p) => `${round(p.x)} ${round(p.y)}`);
    e.d = `M${pts[0]} C${pts[1]}, ${pts[2]}, ${pts[3]}`;
    label(e, (t) => bezier(p0, c1, c2, p3, t), [0.5, 0.35, 0.65, 0.25, 0.75, 0.15, 0.85]);
  }
  // A group's arrows leave its frame: to a state outside it from the frame's right side; to one of
  // its own children (starting over) from the frame's top, down into that child.
  fromGroups.forEach((e, k) => {
    const g = groups.find((group) => group.id === e.from)!;
    const to = byId.get(e.to);
    if (!to) return;
    if (to.group === g.id) {
      const x = to.x + to.w / 2 + 20;
      const p0 = { x: x + 30, y: g.y };
      const p3 = { x, y: to.y };
      e.d = `M${round(p0.x)} ${round(p0.y)} C${round(p0.x)} ${round(p0.y + 20)}, ${round(p3.x)} ${round(p3.y - 20)}, ${round(p3.x)} ${round(p3.y)}`;
      label(e, () => ({ x: p0.x + 40, y: g.y + LINE_H / 2 + 2 }), [0]);
      return;
    }
    const p0 = { x: g.x + g.w, y: g.y + g.h - GROUP_PAD - k * LINE_H };
    const p3 = { x: to.x, y: to.y + to.h / 2 + 6 };
    const dx = (p3.x - p0.x) / 2;
    const c1 = { x: p0.x + dx, y: p0.y };
    const c2 = { x: p3.x - dx, y: p3.y };
    e.d = `M${round(p0.x)} ${round(p0.y)} C${round(c1.x)} ${round(c1.y)}, ${round(c2.x)} ${round(c2.y)}, ${round(p3.x)} ${round(p3.y)}`;
    label(e, (t) => bezier(p0, c1, c2, p3, t), [0.5, 0.35, 0.65, 0.25, 0.75]);
  });
  return { width: round(width), height: round(height) };
}

interface Point {
  x: number;
  y: number;
}

interface Box extends Point {
  w: number;
  h: number;
}

const overlaps = (a: Box, b: Box): boolean =>
  a.x < b.x + b.w + 2 && b.x < a.x + a.w + 2 && a.y < b.y + b.h + 2 && b.y < a.y + a.h + 2;

function bezier(p0: Point, c1: Point, c2: Point, p3: Point, t: number): Point {
  const u = 1 - t;
  const f = (a: number, b: number, c: number, d: number) =>
    u * u * u * a + 3 * u * u * t * b + 3 * u * t * t * c + t * t * t * d;
  return { x: f(p0.x, c1.x, c2.x, p3.x), y: f(p0.y, c1.y, c2.y, p3.y) };
}

const round = (n: number): number => Math.round(n * 10) / 10;
