// The visual state inspector (INSPECTOR=1): mounted on the service's router. Placeholder until built.
import type Router from '@koa/router';
import type { Logger } from '../../log.js';
import type { StreamStore } from '../../store/port.js';

export interface InspectorDeps {
  store: StreamStore;
  /** INSPECTOR_TOKEN: when set, every inspector request must carry it. */
  token?: string;
  logger: Logger;
}

export function mountInspector(_router: Router, _deps: InspectorDeps): void {}
