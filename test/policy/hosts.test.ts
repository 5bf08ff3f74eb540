import { describe, expect, it } from 'vitest';
import { hostAllowed } from '../../engine/policy/hosts.js';

describe('hostAllowed', () => {
  it.each<[string, string[], boolean]>([
    ['api.example.com', ['api.example.com'], true],
    ['API.Example.COM', ['api.example.com'], true],
    ['api.example.com', ['API.EXAMPLE.COM'], true],
    ['api.example.com.', ['api.example.com'], true],
    ['api.example.com', ['api.example.com.'], true],
    ['other.example.com', ['api.example.com'], false],
    ['x.a.com', ['*.a.com'], true],
    ['X.A.COM.', ['*.a.com'], true],
    ['a.com', ['*.a.com'], false],
    ['y.x.a.com', ['*.a.com'], false],
    ['evila.com', ['*.a.com'], false],
    ['x.a.com.evil.net', ['*.a.com'], false],
    ['.a.com', ['*.a.com'], false],
    ['x.a.com', ['nope.net', '*.a.com'], true],
    ['x.a.com', [], false],
    ['x.a.com', ['*'], false],
    ['x.a.com', ['*.'], false],
    ['x.a.com', ['x.*.com'], false],
    ['x.y.a.com', ['*.*.a.com'], false],
    ['', ['*.a.com', ''], false],
    ['.', ['.'], false],
  ])('%s vs %j → %s', (host, patterns, expected) => {
    expect(hostAllowed(host, patterns)).toBe(expected);
  });
});
