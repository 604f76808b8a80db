import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubjectValidationError } from './errors.ts';
import {
  normaliseSubject,
  parseSubject,
  registerSubjectFormat,
  subjectKey,
  subjectKeys,
  subjectsMatch,
  usableEmail,
  validateSubject,
  type SubjectIdentifier,
} from './subjects.ts';

function problemsOf(input: unknown, lenient = false): string[] {
  const result = validateSubject(input, { lenient });
  return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('RFC 9493 §3.2 subject formats', () => {
  it('RFC 9493 §3.2.1: account needs an acct: URI, and its host is case-insensitive', () => {
    expect(parseSubject({ format: 'account', uri: 'acct:Dana@Example.COM' })).toEqual({
      format: 'account',
      uri: 'acct:Dana@example.com',
    });
    expect(problemsOf({ format: 'account', uri: 'mailto:dana@example.com' })).toEqual([
      expect.stringMatching(/^subject\.uri: must be an acct: URI/),
    ]);
    expect(problemsOf({ format: 'account', uri: 'acct:no-host' })).toHaveLength(1);
  });

  it('RFC 9493 §3.2.2: email is an addr-spec; the domain is lowercased, the local part kept', () => {
    expect(parseSubject({ format: 'email', email: 'Dana.Lee@Example.COM' })).toEqual({
      format: 'email',
      email: 'Dana.Lee@example.com',
    });
    expect(parseSubject({ format: 'email', email: '"odd local"@example.com' }).email).toBe(
      '"odd local"@example.com',
    );
    // RFC 5322 §3.4.1: the domain may be a domain-literal.
    expect(parseSubject({ format: 'email', email: 'ops@[192.0.2.1]' }).email).toBe('ops@[192.0.2.1]');
    expect(parseSubject({ format: 'email', email: 'ops@[IPv6:2001:DB8::1]' }).email).toBe(
      'ops@[ipv6:2001:db8::1]',
    );
    for (const bad of [
      'dana',
      'dana@',
      '@example.com',
      'da na@example.com',
      'dana@exa mple.com',
      'dana@-x.com',
      // Controls, separators and invisible characters the UTF-8 ranges would otherwise admit.
      'a\u0085b@example.com',
      'a\u2028b@example.com',
      'ab@exa\u200bmple.com',
      'dana@exa\u00a0mple.com',
      '"odd\u00a0local"@example.com',
      'ops@[]',
      'ops@[a[b]',
      'ops@[a\\b]',
      'ops@[192.0.2.1 ]',
      'ops@x.[192.0.2.1]',
    ]) {
      expect(problemsOf({ format: 'email', email: bad }), bad).toEqual([
        expect.stringMatching(/^subject\.email: must be an RFC 5322 addr-spec/),
      ]);
    }
  });

  it('RFC 9493 §3.2.3: iss_sub needs both iss and sub, compared exactly', () => {
    const subject = { format: 'iss_sub', iss: 'https://IdP.example', sub: 'U-42' };
    expect(parseSubject(subject)).toEqual(subject);
    expect(problemsOf({ format: 'iss_sub', iss: 'https://idp.example' })).toEqual([
      'subject.sub: is required by format iss_sub (RFC 9493 §3.2.3)',
    ]);
  });

  it('RFC 9493 §3.2.4: opaque needs a non-empty id', () => {
    expect(parseSubject({ format: 'opaque', id: 'dev-1' })).toEqual({ format: 'opaque', id: 'dev-1' });
    expect(problemsOf({ format: 'opaque', id: '' })).toEqual(['subject.id: must be a non-empty string']);
    expect(problemsOf({ format: 'opaque', id: 42 })).toEqual(['subject.id: must be a non-empty string']);
  });

  it('RFC 9493 §3.2.5: phone_number is E.164 with a leading +', () => {
    expect(parseSubject({ format: 'phone_number', phone_number: '+12065550100' }).phone_number).toBe(
      '+12065550100',
    );
    for (const bad of ['12065550100', '+0206555', '+1 206 555 0100', '+1234567890123456']) {
      expect(problemsOf({ format: 'phone_number', phone_number: bad }), bad).toHaveLength(1);
    }
  });

  it('RFC 9493 §3.2.6: did needs a DID or DID URL', () => {
    expect(parseSubject({ format: 'did', url: 'did:example:123#key-1' }).url).toBe('did:example:123#key-1');
    expect(problemsOf({ format: 'did', url: 'https://example.com' })).toHaveLength(1);
  });

  it('RFC 9493 §3.2.7: uri needs an absolute URI; scheme and host are lowercased, the path kept', () => {
    expect(parseSubject({ format: 'uri', uri: 'HTTPS://User@Example.COM:8443/Path?Q=A' }).uri).toBe(
      'https://User@example.com:8443/Path?Q=A',
    );
    expect(parseSubject({ format: 'uri', uri: 'URN:Example:Thing' }).uri).toBe('urn:Example:Thing');
    expect(problemsOf({ format: 'uri', uri: '/relative/path' })).toHaveLength(1);
    // RFC 3986 §2: ASCII only, percent-encoding well formed (an IRI is not a URI).
    for (const bad of ['https://a/<script>', 'https://bücher.example/ü', 'https://a/%zz', 'https://a/b c']) {
      expect(problemsOf({ format: 'uri', uri: bad }), bad).toEqual([
        expect.stringMatching(/^subject\.uri: must be an absolute URI \(RFC 3986\)/),
      ]);
    }
    expect(parseSubject({ format: 'uri', uri: 'https://xn--bcher-kva.example/%C3%BC?q=a+b#f' }).uri).toBe(
      'https://xn--bcher-kva.example/%C3%BC?q=a+b#f',
    );
  });

  it('RFC 9493 §3.2.8: aliases holds simple identifiers; canonical form sorts them and drops repeats', () => {
    const a = { format: 'email', email: 'dana@example.com' };
    const b = { format: 'iss_sub', iss: 'https://idp.example', sub: 'u-42' };
    const one = parseSubject({
      format: 'aliases',
      identifiers: [b, a, { format: 'email', email: 'dana@EXAMPLE.com' }],
    });
    const two = parseSubject({ format: 'aliases', identifiers: [a, b] });
    expect(one).toEqual(two);
    expect(one.identifiers).toHaveLength(2);
    expect(problemsOf({ format: 'aliases', identifiers: [] })).toEqual([
      expect.stringMatching(/^subject\.identifiers: must be a non-empty array/),
    ]);
  });

  it('RFC 9493 §3.2.8 and checklist SUBJ-04: aliases and complex subjects do not nest', () => {
    const email = { format: 'email', email: 'dana@example.com' };
    expect(
      problemsOf({ format: 'aliases', identifiers: [{ format: 'aliases', identifiers: [email] }] }),
    ).toEqual([
      'subject.identifiers[0]: an aliases subject cannot be nested inside aliases (RFC 9493 §3.2.8, SSF 1.0 §3.3)',
    ]);
    expect(problemsOf({ format: 'complex', user: { format: 'complex', user: email } })).toEqual([
      'subject.user: a complex subject cannot be nested inside complex (RFC 9493 §3.2.8, SSF 1.0 §3.3)',
    ]);
    expect(problemsOf({ format: 'complex', user: { format: 'aliases', identifiers: [email] } })).toHaveLength(
      1,
    );
  });

  it('refuses a subject nested thousands of levels deep with the nesting problem, not an exhausted stack', () => {
    let deep: Record<string, unknown> = { format: 'email', email: 'dana@example.com' };
    for (let i = 0; i < 20_000; i += 1)
      deep = { format: i % 2 ? 'complex' : 'aliases', user: deep, identifiers: [deep] };
    const problems = validateSubject(deep, { lenient: true });
    expect(problems.ok).toBe(false);
    expect(problems.ok ? [] : problems.problems.map((p) => p.message)).toContainEqual(
      expect.stringMatching(/cannot be nested inside (complex|aliases)/),
    );
  });

  it('RFC 9493 §3 (checklist SUBJ-01): format is required and unknown members are refused', () => {
    expect(problemsOf({ email: 'dana@example.com' })).toEqual([
      'subject.format: is required and must be a non-empty string (RFC 9493 §3)',
    ]);
    expect(problemsOf({ format: 'email', email: 'dana@example.com', name: 'Dana' })).toEqual([
      'subject.name: is not a member of format email (RFC 9493 §3)',
    ]);
    expect(problemsOf({ format: 'username', username: 'dana' })).toEqual([
      expect.stringMatching(/^subject\.format: unknown subject format "username"/),
    ]);
    expect(problemsOf('dana@example.com')).toEqual([
      'subject: must be a JSON object with a "format" member (RFC 9493 §3)',
    ]);
  });
});

describe('SSF 1.0 subject formats', () => {
  it('SSF 1.0 §3.3: complex needs at least one simple member; members get a fixed order', () => {
    const parsed = parseSubject({
      format: 'complex',
      device: { format: 'opaque', id: 'd-1' },
      custom_member: { format: 'opaque', id: 'x' },
      user: { format: 'email', email: 'dana@EXAMPLE.com' },
    });
    expect(Object.keys(parsed)).toEqual(['format', 'user', 'device', 'custom_member']);
    expect(parsed.user).toEqual({ format: 'email', email: 'dana@example.com' });
    expect(problemsOf({ format: 'complex' })).toEqual([expect.stringMatching(/needs at least one member/)]);
    expect(problemsOf({ format: 'complex', user: { format: 'email', email: 'bad' } })).toEqual([
      expect.stringMatching(/^subject\.user\.email:/),
    ]);
  });

  it('SSF 1.0 §3.5.1: jwt_id needs iss and jti', () => {
    expect(parseSubject({ format: 'jwt_id', iss: 'https://idp.example', jti: 'B70BA622' }).jti).toBe(
      'B70BA622',
    );
    expect(problemsOf({ format: 'jwt_id', iss: 'https://idp.example' })).toEqual([
      'subject.jti: is required by format jwt_id (SSF 1.0 §3.5.1)',
    ]);
  });

  it('SSF 1.0 §3.5.2: saml_assertion_id needs issuer and assertion_id', () => {
    const subject = {
      format: 'saml_assertion_id',
      issuer: 'https://idp.example',
      assertion_id: '_8e8dc5f69a98',
    };
    expect(parseSubject(subject)).toEqual(subject);
    expect(problemsOf({ format: 'saml_assertion_id', issuer: 'https://idp.example' })).toHaveLength(1);
  });

  it('SSF 1.0 §3.5.3: ip-addresses holds IP addresses; IPv6 takes its RFC 5952 form', () => {
    expect(
      parseSubject({ format: 'ip-addresses', 'ip-addresses': ['192.0.2.1', '2001:DB8:0:0:0:0:0:1'] }),
    ).toEqual({
      format: 'ip-addresses',
      'ip-addresses': ['192.0.2.1', '2001:db8::1'],
    });
    expect(problemsOf({ format: 'ip-addresses', 'ip-addresses': ['192.0.2.300'] })).toEqual([
      'subject.ip-addresses[0]: must be an IPv4 or IPv6 address',
    ]);
    expect(problemsOf({ format: 'ip-addresses', 'ip-addresses': [] })).toHaveLength(1);
  });

  it('SSF 1.0 §3.5.3: an IPv4-mapped IPv6 address keeps the dotted-quad form of RFC 5952 §5', () => {
    expect(
      parseSubject({
        format: 'ip-addresses',
        'ip-addresses': ['::ffff:10.0.0.1', '::FFFF:192.0.2.1', '0:0:0:0:0:FFFF:C000:0280', '::ffff:0:0'],
      }),
    ).toEqual({
      format: 'ip-addresses',
      'ip-addresses': ['::ffff:10.0.0.1', '::ffff:192.0.2.1', '::ffff:192.0.2.128', '::ffff:0.0.0.0'],
    });
    // Not IPv4-mapped: a prefix before ffff, or ffff in another group, stays hexadecimal.
    expect(
      parseSubject({
        format: 'ip-addresses',
        'ip-addresses': ['1::ffff:a00:1', '::ffff:a00:1:2', '::ffff:1'],
      }),
    ).toEqual({ format: 'ip-addresses', 'ip-addresses': ['1::ffff:a00:1', '::ffff:a00:1:2', '::ffff:1'] });
    const mapped = { format: 'ip-addresses', 'ip-addresses': ['::FFFF:10.0.0.1'] };
    expect(normaliseSubject(normaliseSubject(mapped))).toEqual(normaliseSubject(mapped));
    expect(subjectsMatch(mapped, { format: 'ip-addresses', 'ip-addresses': ['::ffff:a00:1'] })).toBe(true);
  });

  it('SSF 1.0 §3.4: a proprietary format works once registered, and cannot be redefined', () => {
    expect(problemsOf({ format: 'x-badge', badge_id: 'B-1' })).toHaveLength(1);
    const definition = { format: 'x-badge', spec: 'agreed with the receiver', members: ['badge_id'] };
    registerSubjectFormat(definition);
    registerSubjectFormat(definition);
    expect(parseSubject({ format: 'x-badge', badge_id: 'B-1' })).toEqual({
      format: 'x-badge',
      badge_id: 'B-1',
    });
    expect(() => registerSubjectFormat({ ...definition, members: ['other'] })).toThrow(
      SubjectValidationError,
    );
    expect(() => registerSubjectFormat({ format: 'email', spec: 'x', members: ['e'] })).toThrow(
      /already defined/,
    );
    expect(() => registerSubjectFormat({ format: 'complex', spec: 'x', members: ['e'] })).toThrow(
      /already defined/,
    );
  });
});

describe('older spellings (checklist SUBJ-03, SUBJ-05, §10.1)', () => {
  it('are refused by default, naming the registered spelling', () => {
    expect(problemsOf({ format: 'phone', phone_number: '+12065550100' })).toEqual([
      'subject: "phone" is an older spelling; the registered format is "phone_number"',
    ]);
    expect(problemsOf({ subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '1' })).toEqual([
      'subject: "subject_type" is a pre-RFC 9493 spelling; use "format"',
    ]);
  });

  it('are rewritten to the registered spellings when lenient', () => {
    const lenient = (input: unknown) => parseSubject(input, { lenient: true });
    expect(lenient({ format: 'phone', phone: '+1 (206) 555-0100' })).toEqual({
      format: 'phone_number',
      phone_number: '+12065550100',
    });
    expect(lenient({ subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '1' })).toEqual({
      format: 'iss_sub',
      iss: 'https://accounts.google.com/',
      sub: '1',
    });
    expect(lenient({ format: 'jwt-id', iss: 'https://i', jti: 'j' }).format).toBe('jwt_id');
    expect(lenient({ format: 'saml-assertion-id', issuer: 'https://i', assertion_id: 'a' }).format).toBe(
      'saml_assertion_id',
    );
    expect(lenient({ user: { format: 'email', email: 'dana@example.com' } })).toEqual({
      format: 'complex',
      user: { format: 'email', email: 'dana@example.com' },
    });
  });
});

describe('lenient phone numbers (checklist SUBJ-04, SUBJ-05: E.164, RFC 9493 §3.2.5)', () => {
  const lenient = (input: unknown) => validateSubject(input, { lenient: true });

  it('SUBJ-04: drop the "(0)" trunk prefix that follows the country code, which is never dialled with it', () => {
    expect(lenient({ format: 'phone_number', phone_number: '+44 (0)20 7946 0958' })).toEqual({
      ok: true,
      subject: { format: 'phone_number', phone_number: '+442079460958' },
    });
    expect(lenient({ format: 'phone', phone: '+49 (0) 30 1234567' })).toEqual({
      ok: true,
      subject: { format: 'phone_number', phone_number: '+49301234567' },
    });
    expect(lenient({ format: 'phone_number', phone_number: '+33(0)1.23.45.67.89' })).toEqual({
      ok: true,
      subject: { format: 'phone_number', phone_number: '+33123456789' },
    });
  });

  it('SUBJ-04/05: drop it inside a complex subject too, so it matches the number written in E.164', () => {
    const result = lenient({
      user: { format: 'phone', phone: '+44 (0) 7700 900123' },
      device: { format: 'opaque', id: 'd-1' },
    });
    expect(result).toEqual({
      ok: true,
      subject: {
        format: 'complex',
        user: { format: 'phone_number', phone_number: '+447700900123' },
        device: { format: 'opaque', id: 'd-1' },
      },
    });
  });

  it('SUBJ-04: refuse a "(0)" anywhere else, since whether its 0 is dialled cannot be told', () => {
    for (const phone of ['+44 20 (0)7946 0958', '(0)20 7946 0958', '+4420(0)79460958']) {
      expect(problemsOf({ format: 'phone_number', phone_number: phone }, true), phone).toEqual([
        expect.stringMatching(/^subject\.phone_number: has a "\(0\)" that does not follow the country code/),
      ]);
    }
    expect(
      problemsOf({ format: 'complex', user: { format: 'phone', phone: '+44 20 (0)7946 0958' } }, true),
    ).toEqual([expect.stringMatching(/^subject\.user\.phone_number: has a "\(0\)"/)]);
    // Brackets around an area code are not a trunk prefix.
    expect(lenient({ format: 'phone_number', phone_number: '+1 (206) 555-0100' })).toMatchObject({
      subject: { phone_number: '+12065550100' },
    });
  });
});

const simpleSubject: fc.Arbitrary<SubjectIdentifier> = fc.oneof(
  fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9._%+-]{1,12}$/),
      fc.stringMatching(/^[A-Za-z0-9]{1,8}\.[A-Za-z]{2,4}$/),
    )
    .filter(([local]) => !local.startsWith('.') && !local.endsWith('.') && !local.includes('..'))
    .map(([local, domain]) => ({ format: 'email', email: `${local}@${domain}` })),
  fc.string({ minLength: 1, maxLength: 12 }).map((id) => ({ format: 'opaque', id })),
  fc
    .tuple(fc.webUrl(), fc.string({ minLength: 1, maxLength: 8 }))
    .map(([iss, sub]) => ({ format: 'iss_sub', iss, sub })),
  fc.stringMatching(/^\+[1-9][0-9]{1,14}$/).map((n) => ({ format: 'phone_number', phone_number: n })),
  fc.webUrl().map((uri) => ({ format: 'uri', uri })),
  fc
    .stringMatching(/^[A-Za-z0-9]{1,8}@[A-Za-z0-9]{1,8}\.[A-Za-z]{2,4}$/)
    .map((a) => ({ format: 'account', uri: `ACCT:${a}` })),
  fc.oneof(fc.ipV4(), fc.ipV6()).map((ip) => ({ format: 'ip-addresses', 'ip-addresses': [ip] })),
);

const complexSubject: fc.Arbitrary<SubjectIdentifier> = fc
  .record(
    { user: simpleSubject, device: simpleSubject, session: simpleSubject, tenant: simpleSubject },
    { requiredKeys: [] },
  )
  .filter((members) => Object.keys(members).length > 0)
  .map((members) => ({ format: 'complex', ...members }));

const aliasesSubject: fc.Arbitrary<SubjectIdentifier> = fc
  .array(simpleSubject, { minLength: 1, maxLength: 4 })
  .map((identifiers) => ({ format: 'aliases', identifiers }));

const anySubject = fc.oneof(simpleSubject, complexSubject, aliasesSubject);

describe('canonical normalisation', () => {
  it('is idempotent and keeps subjects valid (property)', () => {
    fc.assert(
      fc.property(anySubject, (subject) => {
        const once = normaliseSubject(subject);
        expect(normaliseSubject(once)).toEqual(once);
        expect(validateSubject(once).ok).toBe(true);
      }),
    );
  });

  it('maps case variants of email domains to one subject', () => {
    const a = normaliseSubject({ format: 'email', email: 'dana@EXAMPLE.com' });
    const b = normaliseSubject({ format: 'email', email: 'dana@example.COM' });
    expect(a).toEqual(b);
    expect(subjectKey(a)).toBe(subjectKey(b));
    expect(subjectKey({ format: 'email', email: 'Dana@example.com' })).not.toBe(subjectKey(a));
  });
});

describe('SSF 1.0 §8.1.3.1 subject matching', () => {
  const tenant = { format: 'opaque', id: 'tenant-1' };
  const user = { format: 'email', email: 'dana@example.com' };
  const group1 = { format: 'opaque', id: 'g1' };
  const group2 = { format: 'opaque', id: 'g2' };

  it('simple subjects match when identical after normalisation', () => {
    expect(subjectsMatch(user, { format: 'email', email: 'dana@EXAMPLE.com' })).toBe(true);
    expect(subjectsMatch(user, { format: 'email', email: 'lee@example.com' })).toBe(false);
    expect(subjectsMatch(user, { format: 'opaque', id: 'dana@example.com' })).toBe(false);
  });

  it('an absent member of a complex subject matches anything (checklist Appendix B)', () => {
    expect(subjectsMatch({ format: 'complex', tenant }, { format: 'complex', tenant, user })).toBe(true);
    expect(subjectsMatch({ format: 'complex', tenant, user }, { format: 'complex', tenant })).toBe(true);
    expect(
      subjectsMatch({ format: 'complex', user, group: group1 }, { format: 'complex', user, group: group2 }),
    ).toBe(false);
    expect(subjectsMatch({ format: 'complex', tenant }, { format: 'complex', user })).toBe(true);
  });

  it('a simple subject never matches a complex one; an aliases subject matches through any identifier', () => {
    expect(subjectsMatch(user, { format: 'complex', user })).toBe(false);
    const aliases = { format: 'aliases', identifiers: [{ format: 'opaque', id: 'u-42' }, user] };
    expect(subjectsMatch(aliases, user)).toBe(true);
    expect(subjectsMatch(user, aliases)).toBe(true);
    expect(subjectsMatch(aliases, { format: 'email', email: 'other@example.com' })).toBe(false);
  });

  it('is symmetric (property)', () => {
    fc.assert(fc.property(anySubject, anySubject, (a, b) => subjectsMatch(a, b) === subjectsMatch(b, a)));
  });

  it('matching subjects share an index key unless both are complex with no member name in common (property)', () => {
    fc.assert(
      fc.property(anySubject, anySubject, (a, b) => {
        if (!subjectsMatch(a, b)) return;
        const disjointComplex =
          a.format === 'complex' &&
          b.format === 'complex' &&
          !Object.keys(a).some((k) => k !== 'format' && k in b);
        if (disjointComplex) return;
        const keysOfB = new Set(subjectKeys(b));
        expect(subjectKeys(a).some((k) => keysOfB.has(k))).toBe(true);
      }),
    );
  });
});

describe('subjectKeys', () => {
  it('gives stable, documented keys', () => {
    expect(subjectKeys({ format: 'email', email: 'dana@EXAMPLE.com' })).toEqual([
      '["email","dana@example.com"]',
    ]);
    expect(
      subjectKeys({
        format: 'complex',
        device: { format: 'opaque', id: 'd-1' },
        user: { format: 'iss_sub', iss: 'https://idp.example', sub: 'u-42' },
      }),
    ).toEqual([
      '["complex","user","iss_sub","https://idp.example","u-42"]',
      '["complex","device","opaque","d-1"]',
    ]);
    expect(
      subjectKeys({
        format: 'aliases',
        identifiers: [
          { format: 'opaque', id: 'b' },
          { format: 'opaque', id: 'a' },
        ],
      }),
    ).toEqual(['["opaque","a"]', '["opaque","b"]']);
  });

  it('keeps member values apart whatever characters they hold', () => {
    const a = subjectKeys({ format: 'iss_sub', iss: 'https://i/a","b', sub: 'c' });
    const b = subjectKeys({ format: 'iss_sub', iss: 'https://i/a', sub: 'b","c' });
    expect(a).not.toEqual(b);
  });

  it('refuses an invalid subject', () => {
    expect(() => subjectKeys({ format: 'email', email: 'nope' })).toThrow(SubjectValidationError);
  });
});

describe('usableEmail: the addresses connectors name users by', () => {
  it('takes what the catalog takes, with a dot in the domain, trimmed; never what the catalog would refuse', () => {
    expect(usableEmail('  dana.lee@example.com ')).toBe('dana.lee@example.com');
    expect(usableEmail('jörg@bücher.example')).toBe('jörg@bücher.example');
    for (const wrong of [
      'jordan..avery@example.com',
      'jordan.@example.com',
      'j@-corp.example.com',
      'admin@localhost',
      'root@[10.0.0.5]',
      'a@b',
      '',
      42,
      null,
    ]) {
      expect(usableEmail(wrong), String(wrong)).toBeUndefined();
    }
    // Property: whatever it returns, the catalog accepts as an email subject.
    fc.assert(
      fc.property(fc.oneof(fc.emailAddress(), fc.string()), (candidate) => {
        const email = usableEmail(candidate);
        return email === undefined || validateSubject({ format: 'email', email }).ok;
      }),
    );
  });
});
