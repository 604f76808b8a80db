import { describe, expect, it } from 'vitest';
import { StatusBoard } from './status.ts';

const clock = { now: () => new Date('2025-01-01T00:00:00Z') };

function board(): StatusBoard {
  const status = new StatusBoard(clock);
  status.register('hook', 'webhook', 'outbound');
  status.set('hook', 'ok');
  return status;
}

describe('instance status', () => {
  it('reports the time of the last success to every reader, and forgets it when the instance is registered again', () => {
    let now = new Date('2025-01-01T00:00:00Z');
    const status = new StatusBoard({ now: () => now });
    status.register('hook', 'webhook', 'outbound');
    const seen: Array<string | undefined> = [];
    status.onChange((s) => seen.push(s.lastSuccessAt));
    expect(status.get('hook')?.lastSuccessAt).toBeUndefined();
    status.set('hook', 'recoverable_error', 'HTTP 503');
    now = new Date('2025-01-01T00:00:05Z');
    status.success('hook');
    now = new Date('2025-01-01T00:00:09Z');
    status.success('hook');
    expect(status.get('hook')?.lastSuccessAt).toBe('2025-01-01T00:00:09.000Z');
    expect(status.list().find((s) => s.id === 'hook')?.lastSuccessAt).toBe('2025-01-01T00:00:09.000Z');
    // The first success cleared the error: its listener saw that success's time.
    expect(seen).toEqual([undefined, '2025-01-01T00:00:05.000Z']);
    status.register('hook', 'webhook', 'outbound');
    expect(status.get('hook')?.lastSuccessAt).toBeUndefined();
  });

  it('a success after a refusal of the credentials makes the instance ok and ready again', () => {
    const status = board();
    status.refused('hook', 'credentials refused: 401');
    expect(status.readiness()).toEqual({
      ready: false,
      reasons: ['hook: permanent_error (credentials refused: 401)'],
    });
    status.success('hook');
    expect(status.get('hook')).toMatchObject({
      state: 'ok',
      lastError: 'credentials refused: 401',
      lastErrorAt: '2025-01-01T00:00:00.000Z',
    });
    expect(status.readiness()).toEqual({ ready: true, reasons: [] });
  });

  it('the connector restating the refusal in its own words keeps it clearable', () => {
    const status = board();
    // The HTTP client's hook flags it first, then the poller reports the failed run.
    status.refused('hook', 'GET https://mdm.example/api answered 401');
    status.set('hook', 'permanent_error', 'the vendor refused the credentials: answered 401');
    status.success('hook');
    expect(status.get('hook')?.state).toBe('ok');
  });

  it('keeps other permanent errors after a success, as the connector that raised them owns them', () => {
    const status = board();
    status.set('hook', 'permanent_error', 'the transmitter disabled the stream');
    status.success('hook');
    expect(status.get('hook')?.state).toBe('permanent_error');
    // A refusal that ended (ok) does not make a later, different permanent error clearable.
    status.refused('hook', 'credentials refused: 403');
    status.set('hook', 'ok');
    status.set('hook', 'permanent_error', 'stream not found');
    status.success('hook');
    expect(status.get('hook')?.state).toBe('permanent_error');
  });

  it('a success clears a recoverable error', () => {
    const status = board();
    status.set('hook', 'recoverable_error', 'timeout');
    status.success('hook');
    expect(status.get('hook')?.state).toBe('ok');
  });

  it('is not ready while a probe fails or does not answer in time, and says which', async () => {
    const status = board();
    status.addProbe('store', async () => 7);
    expect(await status.check(50)).toEqual({ ready: true, reasons: [] });
    status.addProbe('store', () => new Promise(() => undefined));
    expect(await status.check(50)).toEqual({ ready: false, reasons: ['store: no answer within 50 ms'] });
    status.addProbe('store', async () => {
      throw new Error('disk I/O error');
    });
    status.set('hook', 'stopped');
    expect(await status.check(50)).toEqual({
      ready: false,
      reasons: ['hook: stopped', 'store: disk I/O error'],
    });
  });
});
