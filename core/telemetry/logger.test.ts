import { describe, expect, it } from 'vitest';
import { Secret } from '../plugin-api/index.ts';
import { capturingLogger } from '../../test/helpers/capture.ts';
import { inspect } from 'node:util';

describe('logger secret hygiene', () => {
  it('scrubs the value of every Secret from messages, objects and errors', () => {
    const { logger, text } = capturingLogger();
    const token = new Secret('tok_live_5f2b9c1d8e');
    logger.info({ token }, 'configured');
    logger.info(`calling with ${token.reveal()} in the message`);
    logger.warn({ err: new Error(`upstream said: bad token ${token.reveal()}`) }, 'failed');
    logger.info({ nested: { deep: { value: token.reveal() } } }, 'nested');
    expect(text()).not.toContain('tok_live_5f2b9c1d8e');
    expect(text().match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(4);
  });

  it('redacts credential fields by name even when their values are not known secrets', () => {
    const { logger, records } = capturingLogger();
    logger.info(
      {
        headers: { authorization: 'Bearer abc.def.ghi', dpop: 'eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.sig' },
        password: 'hunter22',
      },
      'request',
    );
    const [record] = records();
    expect(record?.headers).toEqual({ authorization: '[redacted]', dpop: '[redacted]' });
    expect(record?.password).toBe('[redacted]');
  });

  it('Secret never prints itself', () => {
    const s = new Secret('another-secret-1');
    expect(String(s)).toBe('[redacted]');
    expect(`${s}`).toBe('[redacted]');
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect({ s })).not.toContain('another-secret-1');
    expect(s.reveal()).toBe('another-secret-1');
  });
});
