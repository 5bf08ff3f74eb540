/**
 * Outbound host allow-listing: a spec may only send to the hosts it declares, so a templated URL
 * can't be steered to an arbitrary server.
 */

/** Lowercase and drop one trailing dot: "API.Example.com." and "api.example.com" are the same host. */
function normalize(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** An allowed_hosts entry split into its host pattern and its port, when it names one (`api.example.com:8443`). */
export function splitHostEntry(raw: string): { host: string; port?: number } {
  const m = /^(.*):(\d{1,5})$/.exec(raw);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: raw };
}

/**
 * True when host matches any pattern. A pattern is an exact host, or `*.suffix` matching exactly ONE
 * extra DNS label: `*.a.com` matches `x.a.com` but not `a.com` nor `y.x.a.com` — deeper matching would
 * let anyone who can create sub-subdomains (e.g. tenant subdomains on a shared platform) receive data.
 * Case-insensitive; a trailing dot is ignored. `host` is a bare hostname (no port).
 * `**.suffix` opts in to one or more extra labels (`**.a.com` matches `x.a.com` and `y.x.a.com`, not `a.com`).
 * A bare `*`, or `*` anywhere but the leading label, never matches: allowing everything must not be a
 * one-character typo away.
 *
 * Ports: a pattern may end in `:port` (`127.0.0.1:8443`, `*.a.com:8443`) and then matches that port
 * only; a pattern without one matches the scheme's default port only (443 for https, 80 for http).
 * `port` is the URL's port when it names one other than its scheme's default (`new URL(u).port`: empty
 * for the default), `defaultPort` its scheme's default.
 */
export function hostAllowed(host: string, patterns: readonly string[], port?: number, defaultPort?: number): boolean {
  const h = normalize(host);
  if (h === '') return false;
  const effective = port ?? defaultPort;
  for (const entry of patterns) {
    const { host: raw, port: wanted } = splitHostEntry(entry);
    if (wanted === undefined ? port !== undefined && port !== defaultPort : effective !== wanted) continue;
    const p = normalize(raw);
    if (p.startsWith('**.')) {
      // Opt-in: one or more extra labels (a vendor's many regional hosts), still never the suffix itself.
      const suffix = p.slice(3);
      if (suffix === '' || suffix.includes('*')) continue;
      if (h.endsWith('.' + suffix) && h.length > suffix.length + 1 && !h.slice(0, h.length - suffix.length - 1).split('.').includes('')) return true;
    } else if (p.startsWith('*.')) {
      const suffix = p.slice(2);
      if (suffix === '' || suffix.includes('*')) continue;
      if (!h.endsWith('.' + suffix)) continue;
      const label = h.slice(0, h.length - suffix.length - 1);
      if (label !== '' && !label.includes('.')) return true;
    } else if (p !== '' && !p.includes('*') && p === h) {
      return true;
    }
  }
  return false;
}
