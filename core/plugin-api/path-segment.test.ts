import { describe, expect, it } from 'vitest';
import { PermanentError } from './errors.ts';
import { pathSegment } from './path-segment.ts';

describe('pathSegment', () => {
  it('RFC 3986 §3.3: escapes what a segment cannot hold, keeps sub-delimiters unless told', () => {
    expect(pathSegment('dana+ops@example.com')).toBe('dana+ops@example.com');
    expect(pathSegment('a/b?c#d e')).toBe('a%2Fb%3Fc%23d%20e');
    expect(pathSegment('dana@example.com', { escapeAll: true })).toBe('dana%40example.com');
    expect(new URL(`https://api.example/users/${pathSegment('a/../b')}/x`).pathname).toBe(
      '/users/a%2F..%2Fb/x',
    );
  });

  it('RFC 3986 §5.2.4: refuses ids a URL parser would resolve as dot-segments, and the empty id', () => {
    for (const id of ['.', '..', '%2e', '%2E%2e', '']) {
      expect(() => pathSegment(id), id).toThrow(PermanentError);
      expect(() => pathSegment(id), id).toThrow('is not an id that can name a resource in a URL path');
    }
    expect(pathSegment('...')).toBe('...');
  });
});
