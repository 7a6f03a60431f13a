// Is the Dify app there, does it take our key, and is it the kind DIFY_APP_TYPE says? One `GET /info`,
// not retried, said as one sentence an operator can act on: for the line the service logs at start
// and for `wecom-dify doctor`. It never throws.
import type { ProxySettings } from '../outbound.js';
import { type DifyAppType, DifyClient } from './client.js';
import { type DifyError, isDifyError } from './errors.js';

export interface DifyAppCheckSettings {
  apiUrl: string;
  apiKey: string;
  appType: DifyAppType;
  timeoutMs: number;
  /** `user_token`: a gateway in front of Dify may take only users' tokens, not the app key. */
  bearer?: 'app_key' | 'user_token';
  proxy?: ProxySettings;
}

export type DifyAppCheck =
  | { ok: true; name: string; mode?: string }
  | { ok: false; code: string; status?: number; problem: string };

/** A check waits no longer than this, whatever DIFY_TIMEOUT_SECONDS allows a running answer. */
const CHECK_TIMEOUT_MS = 10_000;

export async function checkDifyApp(
  settings: DifyAppCheckSettings,
  signal?: AbortSignal,
): Promise<DifyAppCheck> {
  const client = new DifyClient({
    apiUrl: settings.apiUrl,
    apiKey: settings.apiKey,
    appType: settings.appType,
    timeoutMs: Math.min(settings.timeoutMs, CHECK_TIMEOUT_MS),
    retry: { attempts: 1 },
    ...(settings.proxy ? { proxy: settings.proxy } : {}),
  });
  try {
    const info = await client.info(signal ? { signal } : {});
    const mode = info.mode ?? undefined;
    const mismatch = appTypeProblem(settings.appType, mode);
    if (mismatch) return { ok: false, code: 'app_type', problem: `Dify app "${info.name}" ${mismatch}` };
    return { ok: true, name: info.name, ...(mode ? { mode } : {}) };
  } catch (error) {
    if (!isDifyError(error))
      return { ok: false, code: 'failed', problem: `Dify at ${settings.apiUrl}: ${String(error)}` };
    return {
      ok: false,
      code: error.code,
      ...(error.status !== undefined ? { status: error.status } : {}),
      problem: describeFailure(error, settings),
    };
  } finally {
    await client.close().catch(() => undefined);
  }
}

const chatModes = ['chat', 'agent-chat', 'advanced-chat'];

/** Dify's app modes that DIFY_APP_TYPE cannot talk to; a mode this code does not know passes. */
function appTypeProblem(appType: DifyAppType, mode: string | undefined): string | undefined {
  if (mode === 'completion')
    return 'is a text generator (completion), which wecom-dify does not support: use a chat, agent, chatflow or workflow app';
  if (appType === 'chat' && mode === 'workflow')
    return 'is a workflow, but DIFY_APP_TYPE is chat: set DIFY_APP_TYPE=workflow';
  if (appType === 'workflow' && mode !== undefined && chatModes.includes(mode))
    return `is a chat app (mode ${mode}), but DIFY_APP_TYPE is workflow: set DIFY_APP_TYPE=chat`;
  return undefined;
}

function describeFailure(error: DifyError, settings: DifyAppCheckSettings): string {
  const url = settings.apiUrl;
  if (error.status === 401) {
    const gateway =
      settings.bearer === 'user_token'
        ? '; with DIFY_BEARER=user_token, a gateway in front of Dify may take users\u2019 tokens only'
        : '';
    return `Dify at ${url} refused the API key (401 ${error.code}): DIFY_API_KEY is wrong, or belongs to another Dify${gateway}`;
  }
  // /info is there on every Dify's API base: a 404 is the wrong base (Dify says not_found for any route).
  if (error.status === 404)
    return `Dify at ${url} has no /info (HTTP 404): DIFY_API_URL must be the service API base, ending in /v1`;
  if (error.status === 200)
    return `${url}/info answered, but not as Dify does: DIFY_API_URL must be the service API base, ending in /v1`;
  if (error.kind === 'unreachable')
    return `cannot reach Dify at ${url}: ${error.message.replace(/^Dify is unreachable: /, '')}`;
  if (error.kind === 'timeout') return `Dify at ${url} did not answer in time: ${error.message}`;
  const status = error.status !== undefined ? ` HTTP ${error.status} ${error.code}` : '';
  return `Dify at ${url} answered${status}: ${error.message}`;
}
