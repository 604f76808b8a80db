/**
 * Serves the web console (built into core/console/dist by `npm run build:console`) at
 * `/console`. The console is static: it talks to the admin API with the operator's admin token
 * in a header, so the pages themselves need no authentication. Every answer carries a strict
 * Content-Security-Policy: scripts, styles and requests only from the bridge itself.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const CONSOLE_DIST = fileURLToPath(new URL('./dist', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path).split(sep).join('/'), readFileSync(path));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin');
}

export function registerConsole(app: FastifyInstance, dist: string = CONSOLE_DIST): void {
  const files = filesUnder(dist);
  const index = files.get('index.html');

  const sendIndex = (reply: FastifyReply) => {
    if (!index) {
      return secure(reply)
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The console is not built. Run `npm run build:console` (npm ci runs it) and restart.');
    }
    return secure(reply).header('cache-control', 'no-cache').type(TYPES['.html']!).send(index);
  };

  app.get('/console', async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console/', async (_req, reply) => sendIndex(reply));
  app.get<{ Params: { '*': string } }>('/console/*', async (req, reply) => {
    const path = req.params['*'];
    const file = files.get(path);
    if (file) {
      const immutable = path.startsWith('assets/');
      return secure(reply)
        .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
        .type(TYPES[extname(path)] ?? 'application/octet-stream')
        .send(file);
    }
    // Client-side routes (#/...) never reach here; a missing asset is a plain 404.
    if (path.startsWith('assets/') || extname(path) !== '') {
      return secure(reply)
        .code(404)
        .send({ error: 'not_found', message: `no console file ${path}` });
    }
    return sendIndex(reply);
  });
}
