/**
 * The configuration `ssf-bridge run` uses when given no file: an events API on loopback with a
 * documented token, an SSF transmitter whose receiver uses the same token, and a route that
 * sends every event to standard output and to every stream. docs/quickstart.md walks through it.
 */
export const QUICKSTART_TOKEN_DEFAULT = 'quickstart-token';

export const QUICKSTART_CONFIG = `
server:
  host: 127.0.0.1
  port: \${env:SSF_BRIDGE_PORT:-8080}
data_dir: \${env:SSF_BRIDGE_DATA_DIR:-./data}
inbound:
  - id: quickstart
    connector: events-api
    description: Post events here with the quickstart token.
    config:
      token: \${env:SSF_BRIDGE_QUICKSTART_TOKEN:-${QUICKSTART_TOKEN_DEFAULT}}
outbound:
  - id: stdout
    connector: log
    config:
      audience: urn:ssf-bridge:quickstart
transmitter:
  receivers:
    - client_id: quickstart
      token: \${env:SSF_BRIDGE_QUICKSTART_TOKEN:-${QUICKSTART_TOKEN_DEFAULT}}
  streams:
    per_receiver: many
  ssrf:
    allow_http_hosts: [127.0.0.1, localhost, '::1']
    allow_hosts: [localhost]
    allow_cidrs: [127.0.0.0/8, '::1/128']
routes:
  - id: everything
    from: '*'
    to: [stdout]
    streams: true
`;
