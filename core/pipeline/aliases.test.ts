import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger, SubjectIdentifier } from '../plugin-api/types.ts';
import { deliveryConfigSchema } from '../delivery/config.ts';
import { validateDraft } from '../runtime/ssf-adapters.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { findEventType, subjectKey } from '../ssf/index.ts';
import { routesConfigSchema, subjectsConfigSchema } from './config.ts';
import { Pipeline } from './pipeline.ts';

// The pipeline as the bridge wires it: the catalog's validation and subject key.
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

type Alias = { from: Record<string, unknown>; to: Record<string, unknown> };

function setup(aliases: Alias[], type = 'caep.session-revoked') {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-aliases-'));
  const store = SqliteStore.open({ path: join(dir, 'bridge.db') });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const warnings: unknown[] = [];
  const logger = { warn: (o: unknown) => warnings.push(o), info: () => {} } as unknown as Logger;
  const pipeline = new Pipeline({
    store,
    delivery: deliveryConfigSchema.parse({}),
    routes: routesConfigSchema.parse([{ to: ['okta'] }]),
    subjects: subjectsConfigSchema.parse({ aliases }),
    validateEvent: validateDraft,
    subjectKey,
    resolveEventType: (name) => findEventType(name)?.uri,
    logger,
  });
  let n = 0;
  const stored = async (subject: Record<string, unknown>) => {
    const result = await pipeline.accept('workday', [
      { type, subject: subject as SubjectIdentifier, sourceRecordId: `r${++n}`, claims: {} },
    ]);
    return (await store.events.get(result.accepted[0]!))!;
  };
  return { stored, warnings };
}

const email = (address: string) => ({ format: 'email', email: address });
const PERSONAL = email('dana@home.example');
const WORK = email('dana.lee@corp.example');

describe('subject aliases (docs/delivery.md: one hop, identifier by identifier)', () => {
  it('rewrites the aliased identifier of an aliases subject (HR connectors send {opaque, email})', async () => {
    const { stored } = setup([{ from: PERSONAL, to: WORK }]);
    const event = await stored({
      format: 'aliases',
      identifiers: [{ format: 'opaque', id: 'WID-7' }, PERSONAL],
    });
    const expected = { format: 'aliases', identifiers: [WORK, { format: 'opaque', id: 'WID-7' }] };
    expect(event.subject).toEqual(expected);
    expect(event.subjectKey).toBe(subjectKey(expected as SubjectIdentifier));
  });

  it('an aliases to adds its identifiers; a repeat left by the rewrite is dropped', async () => {
    const both = { format: 'aliases', identifiers: [WORK, { format: 'opaque', id: 'WID-7' }] };
    const { stored } = setup([{ from: PERSONAL, to: both }]);
    const event = await stored({ format: 'aliases', identifiers: [PERSONAL, WORK] });
    expect(event.subject).toEqual(both);
  });

  it('rewrites the aliased member of a complex subject and keeps the others', async () => {
    const { stored } = setup([{ from: PERSONAL, to: WORK }]);
    const device = { format: 'opaque', id: 'laptop-9' };
    const event = await stored({ format: 'complex', user: PERSONAL, device });
    expect(event.subject).toEqual({ format: 'complex', user: WORK, device });
  });

  it('matches an email as the catalog normalises it: domain in any case, local part exactly', async () => {
    const { stored } = setup([{ from: PERSONAL, to: WORK }]);
    expect((await stored(email('dana@HOME.Example'))).subject).toEqual(WORK);
    expect((await stored(email('Dana@home.example'))).subject).toEqual(email('Dana@home.example'));
  });

  it('takes one hop only, and stores the normalised to', async () => {
    const { stored } = setup([
      { from: PERSONAL, to: email('Dana.Lee@CORP.example') },
      { from: email('Dana.Lee@corp.example'), to: email('someone-else@corp.example') },
    ]);
    expect((await stored(PERSONAL)).subject).toEqual(email('Dana.Lee@corp.example'));
  });

  it('keeps the source subject, with a warning, when the alias gives one the event type does not take', async () => {
    // RISC 1.0 §2.6: identifier-recycled names an email or phone number, never an opaque id.
    const { stored, warnings } = setup(
      [{ from: PERSONAL, to: { format: 'opaque', id: 'WID-7' } }],
      'risc.identifier-recycled',
    );
    expect((await stored(PERSONAL)).subject).toEqual(PERSONAL);
    expect(warnings).toEqual([expect.objectContaining({ problems: [expect.stringMatching(/^subject/)] })]);
  });
});
