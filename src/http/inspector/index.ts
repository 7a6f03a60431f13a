// The visual state inspector (INSPECTOR=1): a live list of streams and, per stream, the state chart
// read from the machine's definition, the event timeline and a step control. Mounted on the service's router.

export type { Step, StepOutcome, StreamDetail, StreamList } from './api.js';
export { type Chart, type ChartEdge, type ChartNode, chartOf } from './chart.js';
export { mountInspector } from './routes.js';
export { bubbleAt, replaySteps } from './steps.js';
