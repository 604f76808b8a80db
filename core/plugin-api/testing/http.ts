/**
 * The bridge's own HTTP client for a connector's behaviour tests: the client a running instance
 * gets (classified errors, Retry-After, token caches, refused credentials flagged), without the
 * machine's proxy settings and without an SSRF policy, so that it reaches loopback mock servers.
 */
import { createHttpClientFactory } from '../../http/client.ts';
import type { HttpClientFactory, Logger } from '../types.ts';

export interface TestHttpOptions {
  logger: Logger;
  /** The instance's signal: aborting it cancels every request in flight. */
  signal: AbortSignal;
  /** Told when a remote refuses the credentials, as the host sets the instance's status. */
  onAuthFailure(reason: string): void;
  /** Told of every request made to a token endpoint. */
  onTokenRequest?(): void;
  /** Milliseconds since the epoch, for token lifetimes. */
  now?: () => number;
}

export function testHttpClientFactory(options: TestHttpOptions): HttpClientFactory {
  const onTokenRequest = options.onTokenRequest;
  return createHttpClientFactory({
    logger: options.logger,
    signal: options.signal,
    onAuthFailure: options.onAuthFailure,
    proxyEnv: {},
    ...(onTokenRequest ? { metrics: { onRequest: (o) => void (o.tokenRequest && onTokenRequest()) } } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}
