import { describe, expect, it } from 'vitest';
import { PermanentError } from './errors.ts';
import { sameOriginLink } from './same-origin-link.ts';

function refusal(link: string, base: string, options?: Parameters<typeof sameOriginLink>[2]): PermanentError {
  try {
    sameOriginLink(link, base, options);
  } catch (err) {
    expect(err).toBeInstanceOf(PermanentError);
    return err as PermanentError;
  }
  throw new Error(`${link} was followed`);
}

describe('sameOriginLink', () => {
  it('resolves relative and absolute links on the base origin', () => {
    const base = 'https://api.example.com/v1.0/';
    expect(sameOriginLink('items?page=2', base).href).toBe('https://api.example.com/v1.0/items?page=2');
    expect(sameOriginLink('/v2/items?page=2', base).href).toBe('https://api.example.com/v2/items?page=2');
    expect(sameOriginLink('https://api.example.com/v1.0/items?$skip=10', base).href).toBe(
      'https://api.example.com/v1.0/items?$skip=10',
    );
    expect(sameOriginLink('HTTPS://API.example.com:443/x', new URL(base)).href).toBe(
      'https://api.example.com/x',
    );
  });

  it('refuses a link to another origin, naming it', () => {
    const base = 'https://api.example.com';
    for (const [link, origin] of [
      ['https://attacker.example/v1.0/items', 'https://attacker.example'],
      ['//attacker.example/items', 'https://attacker.example'],
      ['https://api.example.com:8443/items', 'https://api.example.com:8443'],
      ['https://api.example.com.attacker.example/items', 'https://api.example.com.attacker.example'],
    ] as const) {
      const error = refusal(link, base);
      expect(error.code, link).toBe('SSF_ERR_FOREIGN_LINK');
      expect(error.message, link).toContain(`another origin (${origin})`);
    }
  });

  it('refuses a change of scheme, either way', () => {
    expect(refusal('http://api.example.com/items', 'https://api.example.com').message).toContain(
      '(http://api.example.com)',
    );
    expect(refusal('https://127.0.0.1:8080/items', 'http://127.0.0.1:8080/api').message).toContain(
      '(https://127.0.0.1:8080)',
    );
  });

  it('refuses a link that is not a URL, quoting it', () => {
    const error = refusal('http://[attacker', 'https://api.example.com');
    expect(error.message).toContain('not a URL ("http://[attacker")');
    expect(error.code).toBe('SSF_ERR_FOREIGN_LINK');
  });

  it("words the refusal as the caller's options say", () => {
    const options = {
      code: 'SSF_ERR_X_PAGING',
      message: (origin: string | undefined, link: string) => `to ${origin ?? 'nowhere'} from ${link}`,
    };
    expect(refusal('https://attacker.example/a', 'https://api.example.com', options)).toMatchObject({
      code: 'SSF_ERR_X_PAGING',
      message: 'to https://attacker.example from https://attacker.example/a',
    });
    expect(refusal('https://[', 'https://api.example.com', options).message).toBe(
      'to nowhere from https://[',
    );
  });
});
