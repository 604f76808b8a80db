import { describe, expect, it } from 'vitest';
import { POLL_METHOD, PUSH_METHOD } from './config.ts';
import {
  mergeFields,
  readStreamRequest,
  renderStream,
  replaceFields,
  transmitterFieldMismatch,
  type RenderContext,
  type StoredStreamConfig,
} from './stream-model.ts';

const A = 'urn:a';
const B = 'urn:b';
const ctx: RenderContext = {
  issuer: 'https://tx.example',
  supported: [A, B],
  supportedSet: new Set([A, B]),
  minVerificationInterval: 10,
  pollEndpoint: (id) => `https://tx.example/ssf/poll/${id}`,
};
const stored: StoredStreamConfig = {
  aud: 'rx',
  events_requested: [A, 'urn:unknown'],
  delivery: { method: POLL_METHOD },
  description: 'd',
  internal: { rev: '1' },
};

describe('stream configuration', () => {
  it('SSF 1.0 §8.1.1 (SSF-27): a very long events_requested is taken, keeping the types the transmitter knows', () => {
    const revoked = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
    const unknown = Array.from({ length: 300 }, (_, i) => `https://vendor.example/event/${i}`);
    const request = readStreamRequest({ events_requested: [revoked, ...unknown, revoked] }, 'create');
    expect(request.fields.events_requested).toEqual([revoked]);
    const short = readStreamRequest({ events_requested: [revoked, 'urn:unknown', revoked] }, 'create');
    expect(short.fields.events_requested).toEqual([revoked, 'urn:unknown']);
  });

  it("SSF-27: events_delivered is requested ∩ supported; the poll URL is the transmitter's", () => {
    const rendered = renderStream('s1', stored, ctx);
    expect(rendered.events_delivered).toEqual([A]);
    expect(rendered.delivery).toEqual({
      method: POLL_METHOD,
      endpoint_url: 'https://tx.example/ssf/poll/s1',
    });
    expect(rendered).not.toHaveProperty('internal');
  });

  it('reads requests: syntax only, transmitter fields collected, descriptions truncated', () => {
    const request = readStreamRequest(
      {
        stream_id: 's1',
        iss: 'x',
        description: 'y'.repeat(5000),
        delivery: { method: PUSH_METHOD, endpoint_url: 'https://rx' },
      },
      'update',
    );
    expect(request.streamId).toBe('s1');
    expect(request.transmitterFields).toEqual({ iss: 'x' });
    expect(request.fields.description).toHaveLength(1024);
    expect(() => readStreamRequest({}, 'update')).toThrow(/stream_id/);
    expect(() => readStreamRequest({ events_requested: [1] }, 'create')).toThrow(/events_requested/);
    // Header values Node refuses at every push (or garbles) are refused when the stream is made.
    for (const header of [
      'a\r\nb',
      'Bearer \u0000x',
      'Bearer caf\u00e9',
      'Bearer \u2603',
      'x'.repeat(8193),
    ]) {
      expect(
        () =>
          readStreamRequest(
            { delivery: { method: PUSH_METHOD, endpoint_url: 'https://rx', authorization_header: header } },
            'create',
          ),
        JSON.stringify(header.slice(0, 20)),
      ).toThrow(/one line of printable ASCII/);
    }
    const ok = readStreamRequest(
      {
        delivery: {
          method: PUSH_METHOD,
          endpoint_url: 'https://rx',
          authorization_header: 'SSWS 00a-B_c~+/=',
        },
      },
      'create',
    );
    expect(ok.fields.delivery).toMatchObject({ authorization_header: 'SSWS 00a-B_c~+/=' });
  });

  it('SSF-29 / SSF-30: PATCH merges, PUT replaces and falls back to poll', () => {
    expect(mergeFields(stored, { description: 'new' })).toMatchObject({
      description: 'new',
      events_requested: [A, 'urn:unknown'],
    });
    const replaced = replaceFields(
      { ...stored, delivery: { method: PUSH_METHOD, endpoint_url: 'https://rx' } },
      { events_requested: [B] },
    );
    expect(replaced).toEqual({
      aud: 'rx',
      delivery: { method: POLL_METHOD },
      events_requested: [B],
      internal: { rev: '1' },
    });
  });

  it('SSF-29: transmitter-supplied values must match, in any order for lists', () => {
    const current = renderStream('s1', stored, ctx);
    const check = (body: Record<string, unknown>) =>
      transmitterFieldMismatch(readStreamRequest({ stream_id: 's1', ...body }, 'update'), current);
    expect(
      check({ iss: 'https://tx.example', aud: ['rx'], events_supported: [B, A], events_delivered: [A] }),
    ).toBeUndefined();
    expect(check({ aud: 'other' })).toBe('aud');
    expect(check({ events_delivered: [A, B] })).toBe('events_delivered');
    expect(check({ min_verification_interval: 11 })).toBe('min_verification_interval');
    expect(check({ delivery: { method: POLL_METHOD, endpoint_url: 'https://elsewhere' } })).toBe(
      'delivery.endpoint_url',
    );
    expect(
      check({ delivery: { method: POLL_METHOD, endpoint_url: 'https://tx.example/ssf/poll/s1' } }),
    ).toBeUndefined();
  });
});
