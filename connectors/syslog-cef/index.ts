import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createSyslogCef } from './connector.ts';
import { mapLine } from './mapping.ts';

/** Syslog listener: CEF and LEEF lines, turned into events by declarative mapping rules. */
export const syslogCef = defineConnector({
  manifest: {
    id: 'syslog-cef',
    kind: 'inbound',
    version: '0.1.0',
    stability: 'beta',
    displayName: 'Syslog (CEF / LEEF)',
    description:
      'Listens for syslog over UDP and TCP (RFC 5424 and RFC 3164, octet-counted or LF-framed), parses CEF and LEEF messages and turns them into CAEP, RISC or vendor events with declarative JSONata mapping rules.',
    // The rules decide the event types: any type the catalog knows.
    emits: ['*'],
    capabilities: { stream: true },
  },
  configSchema,
  examples: [
    {
      title: 'High-severity CEF alerts about a user',
      config: {
        udp_port: 5514,
        tcp_port: 5514,
        rules: [
          {
            name: 'cef-high-risk-user',
            match:
              'format = "cef" and cef.severity in ["7", "8", "9", "10", "High", "Very-High"] and $exists(cef.extension.suser)',
            event_type: 'caep.risk-level-change',
            subject: '{"format": "email", "email": cef.extension.suser}',
            claims: {
              principal: '"USER"',
              current_level: '"HIGH"',
              risk_reason: 'cef.name',
            },
            id: 'cef.extension.externalId',
            occurred_at: 'syslog.format = "rfc5424" ? syslog.timestamp',
            severity: '"high"',
          },
        ],
      },
    },
    {
      title: 'Disabled accounts reported as LEEF',
      config: {
        host: '0.0.0.0',
        tcp_port: 6514,
        max_line_bytes: 8192,
        rate_limit: { per_second: 200, burst: 500 },
        rules: [
          {
            name: 'leef-account-disabled',
            match: 'format = "leef" and leef.event_id = "AccountDisabled"',
            event_type: 'risc.account-disabled',
            subject: '{"format": "email", "email": leef.attributes.usrName}',
          },
        ],
      },
    },
  ],
  map: (record, config) => mapLine(record, config),
  create: createSyslogCef,
});
