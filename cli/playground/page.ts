/**
 * The playground page: one self-contained document (no framework, nothing fetched from the internet).
 * The record form is generated from the chosen spec's config schema; the preview refreshes as you type.
 */
const STYLE = `
  :root { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; background: #f5f6f8; }
  body { margin: 0; }
  header { background: #1d2330; color: #fff; padding: 10px 18px; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  header small { opacity: .7; }
  main { display: grid; grid-template-columns: minmax(320px, 420px) minmax(0, 1fr); gap: 16px; padding: 16px; }
  /* Narrow windows: one column, so the preview keeps a readable width. */
  @media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr); } }
  section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 12px 14px; margin-bottom: 14px; }
  h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #5a6475; margin: 0 0 8px; }
  label { display: block; font-weight: 600; margin-top: 8px; }
  label .req { color: #b42318; }
  .help { color: #5a6475; font-size: 12px; margin: 2px 0 0; }
  input[type=text], input[type=password], input[type=number], select, textarea { width: 100%; box-sizing: border-box; font: inherit; padding: 5px 7px; border: 1px solid #c4cad3; border-radius: 4px; }
  textarea { font-family: ui-monospace, monospace; font-size: 12px; min-height: 220px; }
  pre { background: #0f1420; color: #e6e9ef; padding: 10px; border-radius: 4px; overflow: auto; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
  .errors { color: #b42318; font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; }
  .ok { color: #067647; }
  .skipped { color: #b54708; font-weight: 700; }
  .toggles label { display: inline-flex; gap: 4px; font-weight: normal; margin-right: 10px; }
  button { font: inherit; padding: 6px 14px; border-radius: 4px; border: 1px solid #1d2330; background: #1d2330; color: #fff; cursor: pointer; }
  .status-delivered { color: #067647; font-weight: 700; }
  .status-failed { color: #b42318; font-weight: 700; }
  .status-skipped { color: #b54708; font-weight: 700; }
`;

// Plain JavaScript (no template literals inside: this file is itself a template literal).
const SCRIPT = `
'use strict';
var state = null, spec = null, timer = null;
function $(id) { return document.getElementById(id); }
function el(tag, attrs, text) { var e = document.createElement(tag); for (var k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }
function post(path, body) {
  return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(function (r) { return r.json(); });
}
function showErrors() {
  var box = $('spec-errors');
  box.textContent = state.diagnostics.map(function (d) { return d.file + ':' + d.line + ':' + d.col + ': ' + d.message + (d.path ? ' (at ' + d.path + ')' : ''); }).join('\\n');
  box.hidden = state.diagnostics.length === 0;
}
function exampleRecord(vendor) {
  // The spec's own example record (tests/<vendor>/record.json beside it, as init writes), never another vendor's.
  var r = state.examples.records.filter(function (x) { return x.vendor === vendor; })[0];
  return r || { config: {} };
}
function buildForm() {
  var form = $('config'); form.textContent = '';
  var ex = exampleRecord(spec.vendor);
  $('name').value = (ex.vendor === spec.vendor && ex.name) || spec.title;
  Object.keys(spec.config.properties).forEach(function (name) {
    var p = spec.config.properties[name];
    var label = el('label', { 'for': 'cfg-' + name }, name);
    if (spec.config.required.indexOf(name) >= 0) label.appendChild(el('span', { 'class': 'req' }, ' *'));
    form.appendChild(label);
    var input;
    if (p.enum) { input = el('select'); p.enum.forEach(function (v) { input.appendChild(el('option', { value: v }, v)); }); }
    else input = el('input', { type: p.secret ? 'password' : (p.type === 'integer' || p.type === 'number' ? 'number' : 'text'), autocomplete: 'off' });
    input.id = 'cfg-' + name; input.dataset.field = name; input.dataset.type = Array.isArray(p.type) ? p.type[0] : (p.type || 'string');
    var v = ex.config && ex.config[name] !== undefined ? ex.config[name] : (p.example !== undefined ? p.example : p['default']);
    if (v !== undefined) input.value = String(v);
    form.appendChild(input);
    if (p.description) form.appendChild(el('p', { 'class': 'help' }, p.description));
  });
  var presets = $('preset'); presets.textContent = '';
  spec.presets.forEach(function (p) { var o = el('option', { value: p.name }, p.title); if (p['default']) o.selected = true; presets.appendChild(o); });
  $('preset-row').hidden = spec.presets.length === 0;
  var sim = $('simulate'); sim.textContent = ''; sim.appendChild(el('option', { value: '' }, 'the vendor accepts'));
  (spec.failures || []).forEach(function (f) { sim.appendChild(el('option', { value: f }, f)); });
  $('simulate-row').hidden = spec.target !== 'capture';
  $('send').textContent = spec.target === 'capture' ? 'Send to capture vendor' : 'Send to emulator';
  buildToggles();
}
function buildToggles() {
  var box = $('events'); box.textContent = '';
  var preset = spec.presets.filter(function (p) { return p.name === $('preset').value; })[0];
  (preset ? preset.events : []).forEach(function (name) {
    var l = el('label'); var c = el('input', { type: 'checkbox' }); c.checked = true; c.dataset.event = name;
    l.appendChild(c); l.appendChild(document.createTextNode(name)); box.appendChild(l);
  });
}
function record() {
  var config = {};
  document.querySelectorAll('#config [data-field]').forEach(function (i) {
    if (i.value === '') return;
    config[i.dataset.field] = (i.dataset.type === 'integer' || i.dataset.type === 'number') && i.value.trim() !== '' && !isNaN(Number(i.value)) ? Number(i.value) : i.value;
  });
  var r = { source_id: 'src_playground', vendor: spec.vendor, name: $('name').value || spec.title, enabled: true, config: config, consent_categories: spec.consentCategories };
  if (spec.presets.length) {
    r.preset = $('preset').value;
    var all = document.querySelectorAll('#events [data-event]'), on = [];
    all.forEach(function (c) { if (c.checked) on.push(c.dataset.event); });
    if (on.length !== all.length) r.events = on;
  }
  return r;
}
function eventValue() {
  try { return { ok: true, value: JSON.parse($('event').value) }; } catch (e) { return { ok: false, message: String(e.message || e) }; }
}
function renderRequests(target, reqs) {
  target.textContent = '';
  reqs.forEach(function (q) {
    var lines = ['# ' + q.stage, q.method + ' ' + q.url];
    Object.keys(q.headers).forEach(function (h) { lines.push(h + ': ' + q.headers[h]); });
    if (q.body !== null) { var b = q.body; try { b = JSON.stringify(JSON.parse(b), null, 2); } catch (e) {} lines.push('', b); }
    target.appendChild(el('pre', { 'class': 'request' }, lines.join('\\n')));
  });
}
function refresh() {
  if (!spec) return;
  var ev = eventValue(), out = $('preview'), msg = $('preview-msg');
  // Send only what deliver could take: a JSON event and a record the spec accepts.
  if (!ev.ok) { msg.className = 'errors'; msg.textContent = 'event is not JSON: ' + ev.message; $('send').disabled = true; return; }
  post('/api/preview', { record: record(), event: ev.value }).then(function (r) {
    out.textContent = ''; msg.className = 'errors';
    $('send').disabled = !!(r.recordErrors || r.error);
    if (r.recordErrors) msg.textContent = 'integration record:\\n' + r.recordErrors.map(function (p) { return '  - ' + p; }).join('\\n');
    else if (r.skipped) { msg.className = 'skipped'; msg.textContent = 'skipped: ' + r.skipped.reason + ': ' + r.skipped.message + ' (deliver sends nothing)'; }
    else if (r.notSent) msg.textContent = 'not sent: ' + r.notSent.reason + ': ' + r.notSent.message + (r.notSent.hint ? '\\nhint: ' + r.notSent.hint : '');
    else if (r.error) msg.textContent = r.error;
    else { msg.className = 'ok'; msg.textContent = r.requests.length + ' request(s), secrets redacted'; renderRequests(out, r.requests); }
  });
}
function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }
function send() {
  var ev = eventValue(); if (!ev.ok || !spec) return;
  $('send').disabled = true; $('outcome').textContent = 'sending…';
  post('/api/send', { record: record(), event: ev.value, simulate: $('simulate').value || undefined }).then(function (r) {
    $('send').disabled = false; refresh();
    var box = $('outcome'); box.textContent = '';
    if (r.recordErrors || r.error) { box.appendChild(el('div', { 'class': 'errors' }, (r.recordErrors || [r.error]).join('\\n'))); return; }
    var o = r.outcome;
    var head = el('p'); head.appendChild(el('span', { 'class': 'status-' + o.status, id: 'outcome-status' }, o.status));
    head.appendChild(document.createTextNode((o.reason ? ' — ' + o.reason : '') + (o.response_id ? ' — id ' + o.response_id : '') + ' — ' + o.attempts + ' attempt(s)'));
    box.appendChild(head);
    if (o.hint) box.appendChild(el('p', { 'class': 'help' }, 'hint: ' + o.hint));
    box.appendChild(el('h2', {}, 'attempts'));
    box.appendChild(el('pre', { id: 'attempts' }, r.attempts.map(function (a, i) { return (i + 1) + '. ' + a.stage + (a.auth_stage ? '.' + a.auth_stage : '') + ' → ' + (a.status !== undefined ? a.status : a.network) + ' (' + a.duration_ms + ' ms)'; }).join('\\n') || '(none)'));
    box.appendChild(el('h2', {}, 'trace'));
    box.appendChild(el('pre', { id: 'trace' }, r.trace || '(no trace)'));
    box.appendChild(el('h2', {}, 'outcome'));
    box.appendChild(el('pre', { id: 'outcome-json' }, JSON.stringify(o, null, 2)));
    box.appendChild(el('h2', {}, 'what the ' + r.target + ' received'));
    box.appendChild(el('pre', { id: 'received' }, r.received));
  });
}
function chooseSpec(vendor) {
  spec = state.specs.filter(function (s) { return s.vendor === vendor; })[0] || state.specs[0] || null;
  if (!spec) return;
  $('spec').value = spec.vendor; $('spec-title').textContent = spec.description || spec.title;
  buildForm(); refresh();
}
function load(keep) {
  return fetch('/api/state').then(function (r) { return r.json(); }).then(function (s) {
    var current = spec && spec.vendor; state = s; showErrors();
    var sel = $('spec'); sel.textContent = '';
    s.specs.forEach(function (x) { sel.appendChild(el('option', { value: x.vendor }, x.vendor)); });
    if (keep && current && s.specs.some(function (x) { return x.vendor === current; })) { spec = s.specs.filter(function (x) { return x.vendor === current; })[0]; sel.value = current; refresh(); }
    else chooseSpec(current);
    var ex = $('example'); if (!ex.options.length) {
      s.examples.events.forEach(function (e, i) { ex.appendChild(el('option', { value: String(i) }, e.name)); });
      if (s.examples.events.length) $('event').value = JSON.stringify(s.examples.events[0].event, null, 2);
      refresh();
    }
  });
}
document.addEventListener('DOMContentLoaded', function () {
  $('spec').addEventListener('change', function (e) { chooseSpec(e.target.value); });
  $('simulate').addEventListener('change', function (e) { e.stopPropagation(); });
  $('preset').addEventListener('change', function () { buildToggles(); later(); });
  $('example').addEventListener('change', function (e) { $('event').value = JSON.stringify(state.examples.events[Number(e.target.value)].event, null, 2); later(); });
  document.body.addEventListener('input', later);
  document.body.addEventListener('change', function (e) { if (e.target.id !== 'spec' && e.target.id !== 'example' && e.target.id !== 'preset') later(); });
  $('send').addEventListener('click', send);
  load(false).then(function () {
    // Specs reload on the server when their files change: pick that up.
    var version = state.version;
    setInterval(function () {
      fetch('/api/version').then(function (r) { return r.json(); }).then(function (v) { if (v.version !== version) { version = v.version; load(true); } });
    }, 1000);
  });
});
`;

export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'">
<title>signal-integrations playground</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>signal-integrations playground</h1><small>preview the exact requests; send to the local emulator</small></header>
<main>
  <div>
    <section>
      <h2>spec</h2>
      <select id="spec" aria-label="spec"></select>
      <p class="help" id="spec-title"></p>
      <div class="errors" id="spec-errors" hidden></div>
    </section>
    <section>
      <h2>integration record</h2>
      <label for="name">name</label><input type="text" id="name">
      <div id="config"></div>
      <div id="preset-row"><label for="preset">preset</label><select id="preset"></select>
      <p class="help">events this integration forwards:</p><div class="toggles" id="events"></div></div>
    </section>
    <section>
      <h2>event</h2>
      <select id="example" aria-label="example event"></select>
      <textarea id="event" spellcheck="false" aria-label="event JSON"></textarea>
    </section>
  </div>
  <div>
    <section>
      <h2>preview</h2>
      <div id="preview-msg"></div>
      <div id="preview"></div>
      <div id="simulate-row" hidden><label for="simulate">simulate</label><select id="simulate"></select>
      <p class="help">a capture vendor answers as the spec declares success, or with a failure its error rules name</p></div>
      <button id="send" type="button">Send to emulator</button>
    </section>
    <section>
      <h2>outcome</h2>
      <div id="outcome">(nothing sent yet)</div>
    </section>
  </div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
