/**
 * `WWW-Authenticate` challenges (RFC 9110 §11.6.1, formerly RFC 7235 §4.1), as a resource server states a
 * Bearer token error in them (RFC 6750 §3: `Bearer realm="api", error="invalid_token",
 * error_description="The access token expired"`). Pure: header text in, challenges out.
 */

export interface Challenge {
  /** The auth scheme as written (`Bearer`). */
  scheme: string;
  /** Parameters by lowercase name, quoted strings unescaped; a token68 form is kept as `token68`. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;
const SPACE = /[ \t]*/y;

function at(re: RegExp, s: string, i: number): string | undefined {
  re.lastIndex = i;
  const m = re.exec(s);
  return m ? m[0] : undefined;
}

/** Every challenge in the header's value(s), in order; what cannot be parsed ends the list (nothing is guessed). */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(', ') : (header as string);
  const out: Challenge[] = [];
  let i = 0;
  const skip = () => {
    i += at(SPACE, text, i)!.length;
  };
  const skipCommas = () => {
    for (;;) {
      skip();
      if (text[i] !== ',') return;
      i++;
    }
  };
  skipCommas();
  while (i < text.length) {
    const scheme = at(TOKEN, text, i);
    if (!scheme) break;
    i += scheme.length;
    const challenge: Challenge = { scheme, params: {} };
    out.push(challenge);
    skip();
    // token68 (`Basic abc==`): one opaque value ending the challenge; `error=...` is a parameter instead.
    const t68 = at(TOKEN68, text, i);
    if (t68) {
      const after = i + t68.length;
      const next = text[after + at(SPACE, text, after)!.length];
      const isParam = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(t68) && next === '=';
      if (!isParam && (next === undefined || next === ',')) {
        challenge.params.token68 = t68;
        i = after;
        skipCommas();
        continue;
      }
    }
    // auth-params: name = token / quoted-string, comma-separated; a token without `=` starts the next challenge.
    for (;;) {
      skip();
      const start = i;
      const name = at(TOKEN, text, i);
      if (!name) break;
      let j = i + name.length;
      j += at(SPACE, text, j)!.length;
      if (text[j] !== '=') {
        i = start; // the next challenge's scheme
        break;
      }
      j++;
      j += at(SPACE, text, j)!.length;
      let value: string | undefined;
      if (text[j] === '"') {
        let v = '';
        j++;
        let closed = false;
        while (j < text.length) {
          const ch = text[j]!;
          if (ch === '\\' && j + 1 < text.length) {
            v += text[j + 1];
            j += 2;
          } else if (ch === '"') {
            closed = true;
            j++;
            break;
          } else {
            v += ch;
            j++;
          }
        }
        if (!closed) return out;
        value = v;
      } else {
        value = at(TOKEN, text, j);
        if (value === undefined) return out;
        j += value.length;
      }
      const key = name.toLowerCase();
      if (!(key in challenge.params)) challenge.params[key] = value;
      i = j;
      skip();
      if (text[i] !== ',') break;
      i++;
    }
    skipCommas();
    if (i < text.length && !at(TOKEN, text, i)) break;
  }
  return out;
}

/**
 * What error rules read as `$challenge`: the first challenge, its parameters at the top level beside
 * `scheme` (`$challenge.error`, `$challenge.error_description`, `$challenge.scope`); undefined without one.
 */
export function challengeValue(header: string | readonly string[] | undefined): Record<string, string> | undefined {
  const first = parseChallenges(header)[0];
  return first ? { ...first.params, scheme: first.scheme } : undefined;
}
