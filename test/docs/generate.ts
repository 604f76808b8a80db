/**
 * `npm run docs`: writes the generated reference of every first-party connector
 * (docs/connectors/<id>.md, docs/schemas/<id>.config.schema.json), the catalog
 * (docs/connectors/index.md) and the reference section of the plugin template's READMEs.
 * Hand-written text outside the marker comments is kept.
 */
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { firstPartyConnectors } from '../../connectors/index.ts';
import { repositoryDocs, writeDocFiles, type DocSources } from '../../core/plugin-api/testing/docs.ts';
import { exampleInboundConnector } from '../../plugin-template/inbound/index.ts';
import { exampleOutboundConnector } from '../../plugin-template/outbound/index.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export const docSources: DocSources = {
  connectors: firstPartyConnectors,
  packages: [
    {
      definition: exampleInboundConnector,
      dir: fileURLToPath(new URL('../../plugin-template/inbound/', import.meta.url)),
    },
    {
      definition: exampleOutboundConnector,
      dir: fileURLToPath(new URL('../../plugin-template/outbound/', import.meta.url)),
    },
  ],
};

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const written = writeDocFiles(await repositoryDocs(repoRoot, docSources));
  for (const file of written) process.stdout.write(`wrote ${relative(repoRoot, file)}\n`);
  if (written.length === 0) process.stdout.write('docs are current\n');
}
