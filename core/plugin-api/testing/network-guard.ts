import net from 'node:net';

export interface NetworkGuard {
  /** One entry per connection attempted while the guard was up, e.g. `127.0.0.1:8080`. */
  readonly attempts: string[];
  release(): void;
}

/**
 * Refuses every outgoing TCP connection until released, recording where each one went. HTTP
 * clients (axios, fetch, node:http) and TLS all connect through net.Socket, so this catches real
 * socket attempts whatever library made them. The refused socket fails asynchronously, as a
 * network error would.
 */
export function guardNetwork(): NetworkGuard {
  const attempts: string[] = [];
  const original = net.Socket.prototype.connect;
  const refused = function (this: net.Socket, ...args: unknown[]): net.Socket {
    attempts.push(describeTarget(args));
    process.nextTick(() => this.destroy(new Error('network access is not allowed here (conformance guard)')));
    return this;
  };
  net.Socket.prototype.connect = refused as typeof original;
  return {
    attempts,
    release() {
      if (net.Socket.prototype.connect === (refused as typeof original))
        net.Socket.prototype.connect = original;
    },
  };
}

function describeTarget(args: unknown[]): string {
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'object' && first !== null) {
    const o = first as { host?: string; port?: number | string; path?: string };
    if (o.path) return o.path;
    return `${o.host ?? 'localhost'}:${String(o.port ?? '?')}`;
  }
  if (typeof first === 'number' || typeof first === 'string') {
    const host = typeof args[1] === 'string' ? args[1] : 'localhost';
    return typeof first === 'number' ? `${host}:${first}` : first;
  }
  return 'an unknown address';
}
