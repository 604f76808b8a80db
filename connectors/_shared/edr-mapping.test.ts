import { describe, expect, it } from 'vitest';
import { looksLikeEmail, subjectsSchema } from './edr-config.ts';
import { resolveUser } from './edr-mapping.ts';

/** Addresses that look like one at a glance, but that the event catalog refuses as an e-mail subject. */
const REFUSED_BY_THE_CATALOG = [
  'dana..lee@example.com',
  'dana.lee.@example.com',
  '.dana.lee@example.com',
  'dana,lee@example.com',
  'dana.lee@example.com.',
  'dana\u200blee@example.com',
  'dana.lee@-corp.example.com',
];

describe('EDR user addresses', () => {
  const subjects = subjectsSchema.parse({ user_aliases: { 'CORP\\dlee': 'dana.lee@example.com' } });

  it('names a user only by an address the event catalog takes', () => {
    expect(looksLikeEmail(' dana.lee@example.com ')).toBe(true);
    expect(looksLikeEmail('jörg@bücher.example')).toBe(true);
    for (const address of REFUSED_BY_THE_CATALOG) {
      expect(looksLikeEmail(address), JSON.stringify(address)).toBe(false);
      expect(resolveUser([address], [], subjects), JSON.stringify(address)).toBeUndefined();
      expect(resolveUser([], [{ name: address }], subjects), JSON.stringify(address)).toBeUndefined();
    }
  });

  it('falls back to the alias map when the user principal name is not a usable address', () => {
    expect(resolveUser(['dana.lee.@example.com'], [{ name: 'dlee', domain: 'CORP' }], subjects)).toBe(
      'dana.lee@example.com',
    );
  });

  it('refuses a user_aliases entry whose address the event catalog would refuse', () => {
    for (const address of REFUSED_BY_THE_CATALOG) {
      const parsed = subjectsSchema.safeParse({ user_aliases: { 'CORP\\dlee': address } });
      expect(parsed.success, JSON.stringify(address)).toBe(false);
      expect(parsed.error?.issues[0]).toMatchObject({
        path: ['user_aliases', 'CORP\\dlee'],
        message: 'must be an e-mail address',
      });
    }
    expect(
      subjectsSchema.parse({ user_aliases: { 'CORP\\JB': 'jörg@bücher.example' } }).user_aliases,
    ).toEqual({
      'corp\\jb': 'jörg@bücher.example',
    });
  });
});
