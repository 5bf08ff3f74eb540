/**
 * The playground's HTTP server (127.0.0.1 only): one page, and a small JSON API over the same engine
 * the CLI uses — the specs (with their config schemas, presets and load errors), `preview` as you type,
 * and "send" through the bundled Marketing Cloud emulator, or for any other spec a capture vendor
 * (emulator/capture.ts) that answers as the spec declares and can simulate the failures its rules name. Specs are reloaded when their files change.
 * Nothing is fetched from the internet: the page is a single inline document.
 */
import { readFile } from 'node:fs/promises';
import { watch } from 'chokidar';
import http from 'node:http';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { formatReceived, startMarketingCloudEmulator, type Emulator } from '../../emulator/marketing-cloud.js';
import { checkSpecs, DeliveryError, Engine, RecordError, type CompiledSpec, type Diagnostic, type IntegrationRecord, type Outcome, type OutcomeDetail, type SignalEvent } from '../../engine/index.js';
import { packagePath } from '../../engine/paths.js';
import { formatCaptured, startCapture, type Capture, type CaptureFault } from '../../emulator/capture.js';
import type { EventTrace } from '../../engine/run/trace.js';
import { eventTraceText } from '../trace-text.js';
import { PAGE } from './page.js';

/** Specs the bundled Marketing Cloud emulator serves (every allowed host is one of its hosts); others go to a capture vendor. */
function hasEmulator(s: CompiledSpec): boolean {
  return s.spec.allowed_hosts.length > 0 && s.spec.allowed_hosts.every((h) => /\.(auth|rest)\.marketingcloudapis\.com$/.test(h));
}

/** Failures the page can simulate: every status (and code) the spec's own error rules name, per stage. */
function failuresOf(s: CompiledSpec): (CaptureFault & { label: string })[] {
  const out: (CaptureFault & { label: string })[] = [];
  const add = (stage: string, rules: { when: { status?: unknown; code?: unknown }; hint?: string }[] | undefined) => {
    for (const r of rules ?? []) {
      const statuses = (Array.isArray(r.when.status) ? r.when.status : [r.when.status]).filter((x): x is number => typeof x === 'number');
      const code = typeof r.when.code === 'string' ? r.when.code : undefined;
      for (const status of statuses) out.push({ stage, status, ...(code ? { code } : {}), label: `${stage} answers ${status}${code ? ` ${code}` : ''}` });
    }
  };
  for (const a of s.spec.auth ?? []) add(`auth.${a.name}`, a.errors);
  add('send', s.spec.send.errors);
  return out;
}

export interface PlaygroundOptions {
  port?: number;
  specs: string[];
  /** How spec files are shown in errors (relative to the working directory). */
  display?: (file: string) => string;
}

export interface Playground {
  url: string;
  emulator: Emulator;
  close(): Promise<void>;
}

interface State {
  version: number;
  engine: Engine | undefined;
  specs: CompiledSpec[];
  diagnostics: Diagnostic[];
  /** Each loaded spec's example record, when one is beside it: tests/<vendor>/record.json (what init writes). */
  records: Record<string, unknown>[];
}

async function specRecords(specs: CompiledSpec[]): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const s of specs) {
    try {
      const r = JSON.parse(await readFile(join(dirname(s.file), 'tests', s.vendor, 'record.json'), 'utf8')) as unknown;
      if (r && typeof r === 'object' && (r as { vendor?: unknown }).vendor === s.vendor) out.push(r as Record<string, unknown>);
    } catch {
      // no example record beside this spec
    }
  }
  return out;
}

const MAX_BODY = 1024 * 1024;

function specSummary(s: CompiledSpec) {
  const props = (s.configSchema.properties ?? {}) as Record<string, Record<string, unknown>>;
  return {
    vendor: s.vendor,
    title: s.title,
    description: s.spec.description ?? '',
    config: {
      required: (s.configSchema.required ?? []) as string[],
      properties: Object.fromEntries(
        Object.entries(props).map(([name, p]) => [
          name,
          {
            type: p.type,
            description: p.description ?? '',
            secret: p.secret === true,
            ...(p.enum ? { enum: p.enum } : {}),
            ...(p.default !== undefined ? { default: p.default } : {}),
            ...(Array.isArray(p.examples) ? { example: p.examples[0] } : {}),
          },
        ]),
      ),
    },
    consentCategories: s.consentCategories,
    presets: [...s.presets.values()].map((p) => ({ name: p.name, title: p.title, default: p.name === s.defaultPreset, events: [...p.events.keys()] })),
    // Sent to the bundled emulator, or to a capture vendor answering as the spec declares (which can simulate failures).
    target: hasEmulator(s) ? 'emulator' : 'capture',
    failures: hasEmulator(s) ? [] : failuresOf(s).map((f) => f.label),
  };
}

async function examples(): Promise<{ records: Record<string, unknown>[]; events: { name: string; event: unknown }[] }> {
  const events: { name: string; event: unknown }[] = [];
  const records: Record<string, unknown>[] = [];
  try {
    records.push(JSON.parse(await readFile(packagePath('examples', 'integration.json'), 'utf8')) as Record<string, unknown>);
  } catch {
    // no bundled example record
  }
  try {
    for (const line of (await readFile(packagePath('examples', 'events.ndjson'), 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as { event?: string; event_id?: string };
        events.push({ name: `${e.event ?? '?'} (${e.event_id ?? '-'})`, event: e });
      } catch {
        // the examples include a malformed line on purpose; it is not a pickable event
      }
    }
  } catch {
    // no bundled example events
  }
  return { records, events };
}

export async function startPlayground(opts: PlaygroundOptions): Promise<Playground> {
  const display = opts.display ?? ((f: string) => f);
  const emulator = await startMarketingCloudEmulator({ host: '127.0.0.1', port: 0 });
  const state: State = { version: 0, engine: undefined, specs: [], diagnostics: [], records: [] };
  const ex = await examples();
  // One capture vendor per spec without an emulator, started at its first send.
  const captures = new Map<string, Capture>();
  const captureFor = async (spec: CompiledSpec): Promise<Capture> => {
    let c = captures.get(spec.vendor);
    if (!c) captures.set(spec.vendor, (c = await startCapture({ spec })));
    c.spec = spec; // the spec as last reloaded
    return c;
  };

  const load = async (): Promise<void> => {
    const checked = await checkSpecs(opts.specs);
    const bad = new Set(checked.diagnostics.map((d) => d.file));
    const good = [...checked.specs.values()].filter((s) => !bad.has(s.file));
    let engine: Engine | undefined;
    let diagnostics = checked.diagnostics;
    if (good.length) {
      try {
        engine = await Engine.load({ specs: good.map((s) => s.file) });
      } catch (e) {
        diagnostics = [...diagnostics, { file: good[0]!.file, line: 1, col: 1, path: '', message: (e as Error).message }];
      }
    }
    const records = await specRecords(engine ? [...engine.specs.values()] : []);
    // A reload is a new engine (and token cache): the emulator issues tokens cheaply.
    state.engine?.close();
    state.engine = engine;
    state.specs = engine ? [...engine.specs.values()] : [];
    state.records = records;
    state.diagnostics = diagnostics;
    state.version++;
  };
  await load();

  let reloading: NodeJS.Timeout | undefined;
  // chokidar, not fs.watch: it keeps following a file replaced by an atomic save (temp file + rename).
  const watcher = watch(opts.specs, { ignoreInitial: true, atomic: true });
  watcher.on('all', () => {
    clearTimeout(reloading);
    reloading = setTimeout(() => void load().catch(() => undefined), 150);
  });
  watcher.on('error', () => undefined); // an unwatchable path: no live reload for it
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));

  let sending = Promise.resolve();
  const api = async (path: string, body: unknown): Promise<unknown> => {
    const { record, event, simulate } = (body ?? {}) as { record?: unknown; event?: unknown; simulate?: unknown };
    const engine = state.engine;
    if (!engine) return { error: 'no spec loaded: fix the errors shown' };
    const spec = engine.specs.get(String((record as { vendor?: unknown } | null)?.vendor ?? ''));
    const capture = path === '/api/send' && spec && !hasEmulator(spec) ? await captureFor(spec) : undefined;
    let integration;
    try {
      // Preview shows the spec's own URLs; a send goes to the emulator or the capture vendor (original host in X-Forwarded-Host).
      integration = path === '/api/preview' ? engine.createIntegration(record as IntegrationRecord) : engine.createIntegration(record as IntegrationRecord, { endpoint: capture?.url ?? emulator.url });
    } catch (e) {
      if (e instanceof RecordError) return { recordErrors: e.problems };
      throw e;
    }
    if (path === '/api/preview') {
      try {
        // The same gate as Send: an event deliver would skip shows its skip reason, not requests.
        const p = await integration.previewEvent(event);
        return p.status === 'skipped' ? { skipped: { reason: p.reason, message: p.message } } : { requests: p.requests };
      } catch (e) {
        if (e instanceof DeliveryError) return { notSent: { reason: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } };
        throw e;
      }
    }
    // Send: one at a time, so "what the emulator received" is this event's requests only.
    const run = sending.then(async () => {
      emulator.reset();
      capture?.reset();
      const fault = capture && spec && typeof simulate === 'string' ? failuresOf(spec).find((f) => f.label === simulate) : undefined;
      capture?.setFaults(fault ? [fault] : []);
      let detail: OutcomeDetail | undefined;
      let trace: EventTrace | undefined;
      const onOutcome = (_o: Outcome, d: OutcomeDetail) => void (detail = d);
      engine.on('outcome', onOutcome);
      try {
        const outcome = await integration.deliver(event as SignalEvent, { trace: (t) => void (trace = t) });
        await integration.flush();
        // The record's secrets, known to redact what the capture vendor received.
        const secrets = Object.entries(((record as { config?: Record<string, unknown> }).config ?? {}) as Record<string, unknown>)
          .filter(([k, v]) => typeof v === 'string' && (spec?.configSchema.properties as Record<string, { secret?: boolean }> | undefined)?.[k]?.secret === true)
          .map(([, v]) => v as string);
        return {
          outcome,
          attempts: detail?.attempts ?? [],
          // The same text as the trace command prints (cli/trace-text.ts): requests as sent, redacted.
          trace: trace ? eventTraceText(trace) : '',
          target: capture ? 'capture vendor' : 'emulator',
          received: capture ? formatCaptured(capture, { maxBody: 2000, secrets }) : formatReceived(emulator, { maxBody: 2000 }),
        };
      } finally {
        engine.off('outcome', onOutcome);
      }
    });
    sending = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };

  const server = http.createServer((req, res) => {
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    const json = (status: number, v: unknown) => reply(status, 'application/json; charset=utf-8', JSON.stringify(v));
    // Only pages this server served may call it: another site's page cannot reach it by DNS rebinding.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (!['127.0.0.1', 'localhost'].includes(host)) return json(403, { error: 'forbidden host' });
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/') return reply(200, 'text/html; charset=utf-8', PAGE);
    if (req.method === 'GET' && url.pathname === '/api/version') return json(200, { version: state.version });
    if (req.method === 'GET' && url.pathname === '/api/state') {
      return json(200, {
        version: state.version,
        specs: state.specs.map(specSummary),
        diagnostics: state.diagnostics.map((d) => ({ ...d, file: display(d.file) })),
        // A spec's own example record first; the bundled example for the vendor it is written for.
        examples: { ...ex, records: [...state.records, ...ex.records] },
        emulator: emulator.url,
      });
    }
    if (req.method === 'POST' && (url.pathname === '/api/preview' || url.pathname === '/api/send')) {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return json(415, { error: 'send application/json' });
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return json(400, { error: 'not JSON' });
        }
        api(url.pathname, body).then(
          (v) => json(200, v),
          (e: unknown) => json(500, { error: e instanceof Error ? e.message : String(e) }),
        );
      });
      return;
    }
    json(404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port ?? 0, host: '127.0.0.1' }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    emulator,
    close: async () => {
      clearTimeout(reloading);
      await watcher.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      state.engine?.close();
      await emulator.close();
      for (const c of captures.values()) await c.close();
    },
  };
}
