/**
 * Changes that lose a write to another instance (the stream's revision moved since it was read)
 * are tried again on what that instance wrote. What a change tells the receiver, or the other
 * instances, must follow the write that counted, not every try:
 *
 * - SSF 1.0 §8.1.2, §8.1.5 (checklist SSF-38): a transmitter-initiated status change is announced
 *   with one stream-updated event, and a change that was never written is not announced;
 * - SSF 1.0 §8.1.3 (SSF-40…SSF-42): a subject added or removed at one instance is added or
 *   removed at every instance sharing the store, and a change that answered an error left nothing
 *   behind that only one instance sees.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamConflict } from '../../core/storage/stream-conflict.ts';
import {
  ALICE,
  alice,
  POLL,
  SESSION_REVOKED,
  STREAM_UPDATED,
  call,
  decodeJwt,
  eventually,
  startBridge,
  type Bridge,
} from './harness.ts';

async function pollStream(bridge: Bridge): Promise<string> {
  const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
    token: ALICE.token,
    body: { events_requested: [SESSION_REVOKED], delivery: { method: POLL } },
  });
  expect(created.status).toBe(201);
  return created.json.stream_id as string;
}

describe('SSF 1.0 §8.1.2, §8.1.5 (SSF-38): a status change that lost a write is announced once', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startBridge({ transmitter: { streams: { per_receiver: 'many' } } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  /** The stream-updated events the stream's receiver gets (control SETs are served whatever the status). */
  async function announcements(streamId: string): Promise<unknown[]> {
    const res = await call(bridge.issuer, 'POST', `ssf/poll/${streamId}`, {
      token: ALICE.token,
      body: { returnImmediately: true },
    });
    return Object.values(res.json.sets as Record<string, string>)
      .map((jwt) => decodeJwt(jwt).payload.events[STREAM_UPDATED])
      .filter(Boolean);
  }

  it('SSF-38: one write lost to another instance, then written: one "paused" announcement', async () => {
    const streamId = await pollStream(bridge);
    const streams = bridge.store.streams;
    const update = streams.update.bind(streams);
    let tries = 0;
    streams.update = async (id, patch, now) => {
      tries += 1;
      if (tries === 1) throw streamConflict(id);
      return update(id, patch, now);
    };
    try {
      await bridge.tx.setStreamStatus(streamId, 'paused', 'maintenance');
    } finally {
      streams.update = update;
    }
    expect(tries).toBe(2);
    expect(await announcements(streamId)).toEqual([{ status: 'paused', reason: 'maintenance' }]);
  });

  it('SSF-38: every write lost: the change fails, the stream stays enabled and nothing is announced', async () => {
    const streamId = await pollStream(bridge);
    const streams = bridge.store.streams;
    const update = streams.update.bind(streams);
    streams.update = async (id) => {
      throw streamConflict(id);
    };
    let failure: unknown;
    try {
      await bridge.tx.setStreamStatus(streamId, 'disabled', 'offboarding');
    } catch (err) {
      failure = err;
    } finally {
      streams.update = update;
    }
    expect(failure).toMatchObject({ code: 'SSF_ERR_STREAM_CONFLICT' });
    expect((await bridge.store.streams.get(streamId))?.status).toBe('enabled');
    expect(await announcements(streamId)).toEqual([]);
  });
});

describe('SSF 1.0 §8.1.3: subject changes racing another instance reach every instance', () => {
  let a: Bridge;
  let b: Bridge;
  const transmitter = { streams: { per_receiver: 'many' as const, default_subjects: 'NONE' as const } };

  beforeAll(async () => {
    a = await startBridge({ transmitter, instanceId: 'a', noEngine: true });
    b = await startBridge({ transmitter, instanceId: 'b', noEngine: true, store: a.store });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const routes = (bridge: Bridge, email: string) =>
    bridge.tx.routeEvent({ type: SESSION_REVOKED, subject: { format: 'email', email } });

  /**
   * Has instance B change the stream (a PATCH of its description) each time instance A is about
   * to write or delete a subject row: after A read the stream, before A writes its revision.
   */
  function racedBy(method: 'putSubject' | 'deleteSubject'): { restore(): void; races(): number } {
    const streams = a.store.streams;
    const original = streams[method];
    let races = 0;
    (streams as any)[method] = async (...args: unknown[]) => {
      races += 1;
      await b.tx.service.update(
        alice,
        { stream_id: args[0] as string, description: `written by b (${races})` },
        'update',
      );
      return (original as (...a: unknown[]) => Promise<unknown>).apply(streams, args);
    };
    return {
      restore: () => {
        (streams as any)[method] = original;
      },
      races: () => races,
    };
  }

  it('SSF-41: an add-subject whose stream another instance wrote meanwhile answers 200 and the subject reaches that instance too', async () => {
    const streamId = await pollStream(a);
    const destination = `stream:${streamId}`;
    await eventually(() => b.tx.destinations.get(destination) !== undefined);
    const race = racedBy('putSubject');
    let res;
    try {
      res = await call(a.issuer, 'POST', 'ssf/subjects/add', {
        token: ALICE.token,
        body: { stream_id: streamId, subject: { format: 'email', email: 'raced-add@example.com' } },
      });
    } finally {
      race.restore();
    }
    expect(res.status).toBe(200);
    expect(routes(a, 'raced-add@example.com')).toContain(destination);
    // Instance B wrote the stream after A read it: B must still load the subject A added.
    await eventually(() => routes(b, 'raced-add@example.com').includes(destination));
  });

  it('SSF-42: a remove-subject whose stream another instance wrote meanwhile removes the subject at that instance too', async () => {
    const streamId = await pollStream(a);
    const destination = `stream:${streamId}`;
    const subject = { format: 'email', email: 'raced-remove@example.com' };
    const added = await call(a.issuer, 'POST', 'ssf/subjects/add', {
      token: ALICE.token,
      body: { stream_id: streamId, subject },
    });
    expect(added.status).toBe(200);
    await eventually(() => routes(b, subject.email).includes(destination));
    const race = racedBy('deleteSubject');
    let res;
    try {
      res = await call(a.issuer, 'POST', 'ssf/subjects/remove', {
        token: ALICE.token,
        body: { stream_id: streamId, subject },
      });
    } finally {
      race.restore();
    }
    expect(res.status).toBe(204);
    expect(routes(a, subject.email)).not.toContain(destination);
    await eventually(() => !routes(b, subject.email).includes(destination));
  });

  it('SSF-41: provisioned streams take every configured subject (each subject write follows the one before)', async () => {
    const provisioned = await startBridge({
      transmitter: {
        ...transmitter,
        provisioned_streams: [
          {
            stream_id: 'prov-several-subjects',
            client_id: ALICE.client_id,
            events_requested: [SESSION_REVOKED],
            subjects: [
              { format: 'email', email: 'one@example.com' },
              { format: 'email', email: 'two@example.com' },
              { format: 'email', email: 'three@example.com' },
            ],
          },
        ],
      },
      noEngine: true,
    });
    try {
      for (const email of ['one@example.com', 'two@example.com', 'three@example.com'])
        expect(routes(provisioned, email)).toEqual(['stream:prov-several-subjects']);
    } finally {
      await provisioned.close();
    }
  });
});
