import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startGateway, stop, EVERYTHING, POLICIES } from './e2e/helpers.mjs';
const gw = await startGateway(['-p', `${POLICIES}/everything.yaml`, '--', process.execPath, EVERYTHING, 'stdio']);
try {
  const client = new Client({ name: 'v2', version: '1' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
  console.log('version', client.getNegotiatedProtocolVersion?.() ?? client.protocolVersion, client.getServerVersion());
  const tools = await client.listTools();
  console.log(tools.tools.map((t) => t.name).join(','));
  console.log(JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: 'hi' } })));
  console.log(JSON.stringify(await client.callTool({ name: 'get-env', arguments: {} })).slice(0, 300));
  await client.close();
} finally { await stop(gw.proc); console.log(gw.proc.stderrText.slice(-1500)); }
