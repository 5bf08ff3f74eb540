import { describe, expect, it } from 'vitest';
import { displayRedisUrl } from '../../engine/policy/redis-url.js';

describe('displayRedisUrl', () => {
  it.each<[string, string]>([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:hunter2@127.0.0.1:1', 'redis://:***@127.0.0.1:1'],
    ['redis://alice:hunter2@h:6379/2', 'redis://***:***@h:6379/2'],
    ['redis://alice@h:6379', 'redis://***@h:6379'],
    ['redis://h:6379/?password=hunter2', 'redis://h:6379/?password=***'],
    ['redis://h:6379/?username=alice&password=hunter2', 'redis://h:6379/?username=***&password=***'],
    ['rediss://h:6380/0?sentinelPassword=hunter2&db=3&family=6', 'rediss://h:6380/0?sentinelPassword=***&db=3&family=6'],
    ['redis://h:6379?password=hunter2#hunter2', 'redis://h:6379?password=***'],
    ['redis://h:6379/?password=hun%20ter2&password=other', 'redis://h:6379/?password=***&password=***'],
    ['redis://h:P/?password=hunter2', '(invalid URL)'],
    ['not a url hunter2', '(invalid URL)'],
  ])('%s → %s', (url, shown) => {
    expect(displayRedisUrl(url)).toBe(shown);
    expect(displayRedisUrl(url)).not.toMatch(/hunter2|alice|hun%20ter2|other/);
  });
});
