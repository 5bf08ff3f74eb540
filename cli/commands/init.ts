/**
 * `init <vendor> [--auth none|api_key|oauth_client_credentials] [--batch] [--dir DIR]`: write a spec
 * skeleton an author fills in — with the schema modeline (editor autocompletion), an example
 * integration record, an example event and a pin — that validates and whose pin passes at once.
 * Refuses to overwrite anything.
 */
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join, relative, sep } from 'node:path';
import { Option, type Command } from 'commander';
import { packagePath } from '../../engine/paths.js';
import type { Context } from '../context.js';
import { CliError, cwdOf, displayPath, EXIT, resolvePath } from '../io.js';

type AuthKind = 'none' | 'api_key' | 'oauth_client_credentials';

interface InitOptions {
  auth: AuthKind;
  batch?: boolean;
  dir: string;
}

export function registerInit(program: Command, ctx: Context): void {
  program
    .command('init')
    .description('write a new spec skeleton (with an example record, event and pin) that validates and whose pin passes; never overwrites')
    .argument('<vendor>', 'machine name: lowercase letters, digits and underscores, e.g. acme_crm')
    .addOption(new Option('--auth <kind>', 'how the vendor authenticates').choices(['none', 'api_key', 'oauth_client_credentials']).default('api_key'))
    .option('--batch', 'send events in batches (one request carries many events)')
    .option('--dir <dir>', 'specs folder to write into', 'specs')
    .action(async (vendor: string, opts: InitOptions) => {
      ctx.exitCode = await init(ctx, vendor, opts);
    });
}

/** Words written in capitals although they have vowels (the rest of the rule: see titleOf). */
const ACRONYMS = new Set(['ai', 'api', 'cdp', 'erp', 'esp', 'id', 'io', 'seo', 'ui', 'url', 'ux']);

/**
 * The title `init` gives a vendor name: one word per `_`, each capitalised, except that a word with no
 * vowel (crm, sms, b2b) or a common acronym (api, erp, esp, seo, io, ai, ...) is written in capitals:
 * acme_crm → "Acme CRM", hub_sms_api → "Hub SMS API". The spec's `title:` is the author's to change.
 */
export function titleOf(vendor: string): string {
  return vendor
    .split('_')
    .filter(Boolean)
    .map((w) => (!/[aeiou]/.test(w) || ACRONYMS.has(w) ? w.toUpperCase() : w.charAt(0).toUpperCase() + w.slice(1)))
    .join(' ');
}

const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/**
 * How the user runs this CLI from `cwd`: `signal-integrations` when that name on PATH is this very CLI,
 * `npx signal-integrations` when it is installed as a package (node_modules), otherwise — a clone —
 * `node <path to dist/cli/main.js>`, relative to `cwd` when inside it.
 */
export function selfCommand(cwd: string, root: string = packagePath(), pathEnv: string = process.env.PATH ?? ''): string {
  const main = join(root, 'dist', 'cli', 'main.js');
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  for (const d of pathEnv.split(delimiter).filter(Boolean)) {
    const bin = join(d, 'signal-integrations');
    if (existsSync(bin) && real(bin) === real(main)) return 'signal-integrations';
  }
  if (root.split(sep).includes('node_modules')) return 'npx signal-integrations';
  const rel = relative(cwd, main);
  return `node ${shellWord(rel && !rel.startsWith('..') ? rel : main)}`;
}

function specText(vendor: string, host: string, schemaRef: string, opts: InitOptions): string {
  const title = titleOf(vendor);
  const config: string[] = [];
  const required: string[] = [];
  if (opts.auth === 'api_key') {
    required.push('api_key');
    config.push('    api_key:\n      type: string\n      description: API key from the vendor\'s settings page.\n      minLength: 1\n      secret: true');
  }
  if (opts.auth === 'oauth_client_credentials') {
    required.push('client_id', 'client_secret');
    config.push('    client_id:\n      type: string\n      description: OAuth client ID.\n      minLength: 1');
    config.push('    client_secret:\n      type: string\n      description: OAuth client secret.\n      minLength: 1\n      secret: true');
  }
  config.push('    list_id:\n      type: string\n      description: Where the vendor should put the contacts (an example of a plain config field).\n      minLength: 1');
  required.push('list_id');
  const auth =
    opts.auth === 'oauth_client_credentials'
      ? `
# Runs before the send stage; its result is cached per cache_key until it expires.
auth:
  - name: token
    request:
      method: POST
      url: https://auth.${host}/oauth/token
      encoding: form
      body:
        grant_type: '"client_credentials"'
    # RFC 6749 §2.3.1: client_id and client_secret in the form body (post), or \`method: basic\` for an
    # Authorization: Basic header; the engine encodes them.
    client_auth:
      method: post
      id: $config.client_id
      secret: $config.client_secret
    token_type: Bearer
    result:
      access_token: access_token
    expires_in: expires_in
    cache_key: [client_id]
`
      : '';
  const authHeader =
    opts.auth === 'api_key' ? '\n      Authorization: Bearer {$config.api_key}' : opts.auth === 'oauth_client_credentials' ? '\n      Authorization: Bearer {$auth.token.access_token}' : '';
  const hosts = opts.auth === 'oauth_client_credentials' ? `[api.${host}, auth.${host}]` : `[api.${host}]`;
  const path = opts.batch ? '/v1/events/batch' : '/v1/events';
  const batch = opts.batch
    ? `  # Many events per request: request.body maps one event, batch.body the request around them.
  batch:
    max_items: 100
    max_wait_ms: 1000
    body:
      list_id: $config.list_id
      events: $items
`
    : '';
  const body = opts.batch
    ? `    body:
      email: properties.email
      event: event
      event_id: event_id
      "...": $fields`
    : `    body:
      list_id: $config.list_id
      email: properties.email
      event: event
      event_id: event_id
      "...": $fields`;
  return `# yaml-language-server: $schema=${schemaRef}
#
# ${title}: a skeleton written by \`signal-integrations init\`. Replace the example host, paths and
# fields with the vendor's; \`signal-integrations validate\` checks it, \`signal-integrations test\`
# runs its pin (tests/${vendor}/), \`signal-integrations preview\` shows the exact requests.
# Bodies map keys to JSONata expressions (a quoted string literal is a constant); URLs and header values
# are templates whose {placeholders} are expressions.
spec_version: 1
vendor: ${vendor}
title: ${title}
version: 0.1.0
description: Sends Signal events to ${title}.

config:
  type: object
  additionalProperties: false
  required: [${required.join(', ')}]
  properties:
${config.join('\n')}

consent_categories: [marketing]

# Requests may only go to these hosts (\`*.\` matches exactly one label).
allowed_hosts: ${hosts}

# Per event name: the extra fields an integration sends (as $fields), chosen by the record's preset.
presets:
  default:
    title: Default
    default: true
    events:
      Lead Submitted:
        fields:
          lead_type: properties.lead_type
${auth}
send:
  request:
    method: POST
    url: https://api.${host}${path}
    headers:
      Content-Type: application/json${authHeader}
${body}
${batch}  checks:
    - that: '$type(email) = "string" and email != ""'
      message: the event has no email, so it was not sent
      hint: The vendor needs an email to identify the contact; make sure the event's properties.email is set.
  success:
    status: [2xx]
  errors:
    - when: { status: 401 }
      action: ${opts.auth === 'oauth_client_credentials' ? 'reauth' : 'fail'}
      hint: The vendor refused the credentials; check them in the integration's config.
`;
}

function recordFor(vendor: string, title: string, auth: AuthKind): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  if (auth === 'api_key') config.api_key = 'example-api-key';
  if (auth === 'oauth_client_credentials') Object.assign(config, { client_id: 'example-client-id', client_secret: 'example-client-secret' });
  config.list_id = 'example-list';
  return { source_id: 'src_example', vendor, name: `${title} — example`, enabled: true, config, consent_categories: ['marketing'] };
}

const EXAMPLE_EVENT = {
  type: 'track',
  event: 'Lead Submitted',
  event_id: 'evt_example_1',
  timestamp: '2026-01-01T00:00:00.000Z',
  user_id: 'user-123',
  properties: { email: 'jane.doe@example.com', first_name: 'Jane', lead_type: 'newsletter' },
  consent: { marketing: true },
};

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

async function init(ctx: Context, vendor: string, opts: InitOptions): Promise<number> {
  const { io } = ctx;
  if (!/^[a-z][a-z0-9_]*$/.test(vendor)) throw new CliError(`vendor '${vendor}' must be lowercase letters, digits and underscores, starting with a letter (e.g. acme_crm)`);
  const dir = resolvePath(io, opts.dir);
  const specFile = join(dir, `${vendor}.yaml`);
  const testDir = join(dir, 'tests', vendor);
  const recordFile = join(testDir, 'record.json');
  const eventFile = join(testDir, 'event.json');
  const pinFile = join(testDir, 'lead_submitted.yaml');
  const taken = [];
  for (const f of [specFile, recordFile, eventFile, pinFile]) if (await exists(f)) taken.push(displayPath(io, f));
  if (taken.length) throw new CliError(`not overwriting what exists: ${taken.join(', ')}`, EXIT.failed);

  const host = `${vendor.replace(/_/g, '-')}.example.com`;
  const schemaRef = relative(dir, packagePath('schemas', 'integration-spec.schema.json')).split('\\').join('/');
  const title = titleOf(vendor);
  await mkdir(testDir, { recursive: true });
  // 'wx': fail rather than overwrite, should a file appear between the check and the write.
  await writeFile(specFile, specText(vendor, host, schemaRef, opts), { flag: 'wx' });
  await writeFile(recordFile, JSON.stringify(recordFor(vendor, title, opts.auth), null, 2) + '\n', { flag: 'wx' });
  await writeFile(eventFile, JSON.stringify(EXAMPLE_EVENT, null, 2) + '\n', { flag: 'wx' });
  await writeFile(pinFile, `# The exact requests the example record and event produce (run: signal-integrations test).\n# Change the spec, then run \`signal-integrations test --update\` and review the diff.\ndescription: the example Lead Submitted event\nrecord: record.json\nevent: event.json\n`, { flag: 'wx' });

  // Fill the pin's expectation from the spec as written, so it passes at once.
  const { Engine } = await import('../../engine/index.js');
  const { runPin } = await import('../pins.js');
  const engine = await Engine.load({ specs: [specFile] });
  try {
    const r = await runPin(engine, pinFile, { update: true });
    if (!r.ok) throw new CliError(`the new pin could not be written: ${r.problems.join('; ')}`, EXIT.failed);
  } finally {
    engine.close();
  }
  for (const f of [specFile, recordFile, eventFile, pinFile]) io.stdout.write(`created  ${displayPath(io, f)}\n`);
  // The commands as they run from where the user stands (a clone has no signal-integrations on PATH).
  const shown = (f: string) => shellWord(displayPath(io, f));
  const self = `${selfCommand(cwdOf(io))} --specs ${shown(dir)}`;
  io.stdout.write(
    `\nnext: edit ${displayPath(io, specFile)}, then\n` +
      `  ${self} validate ${shown(specFile)}\n` +
      `  ${self} preview --integration ${shown(recordFile)} --event ${shown(eventFile)}\n` +
      `  ${self} test ${shown(dirname(pinFile))} --update   # after changing what it sends\n`,
  );
  return EXIT.ok;
}
