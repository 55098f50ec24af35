// The same scenarios, run by the official TypeScript SDK client through toolwarden in front of
// @modelcontextprotocol/server-everything, over every combination of client and server
// transport. `connect()` returns a connected SDK Client; `teardown()` stops what it started.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

import { DENY_PREFIX } from './helpers.mjs';

export function newClient() {
  const client = new Client(
    { name: 'toolwarden-e2e', version: '1.0.0' },
    { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
    role: 'assistant',
    model: 'e2e-model',
    content: { type: 'text', text: `sampled reply to ${req.params.messages.length} message(s)` },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: 'accept',
    content: { name: 'Ada Lovelace' },
  }));
  client.setRequestHandler(ListRootsRequestSchema, async () => ({
    roots: [{ uri: 'file:///e2e/root', name: 'e2e-root' }],
  }));
  return client;
}

function text(result) {
  return result.content.map((c) => c.text ?? '').join('\n');
}

export function everythingSuite(name, { setup, teardown }) {
  describe(name, () => {
    let client;
    before(async () => {
      client = await setup();
    });
    after(async () => {
      await client?.close().catch(() => {});
      await teardown?.();
    });

    it('negotiates and relays the server identity', () => {
      assert.equal(client.getServerVersion().name, 'mcp-servers/everything');
      const caps = client.getServerCapabilities();
      assert.ok(caps.tools, 'tools capability relayed');
      assert.equal(caps.tasks, undefined, 'capabilities the gateway does not relay are removed');
    });

    it('lists tools across every page without the hidden ones', async () => {
      const names = [];
      let cursor;
      do {
        const page = await client.listTools({ cursor });
        names.push(...page.tools.map((t) => t.name));
        cursor = page.nextCursor;
      } while (cursor);
      assert.ok(names.includes('echo'));
      assert.ok(names.includes('trigger-sampling-request'), 'conditional tools need our capabilities');
      assert.ok(!names.includes('get-env'), 'hidden tool must not be listed');
    });

    it('forwards an allowed call and returns the server result', async () => {
      const r = await client.callTool({ name: 'echo', arguments: { message: 'hello gateway' } });
      assert.equal(text(r), 'Echo: hello gateway');
      assert.ok(!r.isError);
    });

    it('denies by rule with a readable result the model can see', async () => {
      const r = await client.callTool({ name: 'toggle-simulated-logging', arguments: {} });
      assert.equal(r.isError, true);
      assert.equal(text(r), `${DENY_PREFIX}Toggling is not for agents`);
      assert.deepEqual(r._meta['toolwarden/decision'].decision, 'deny');
      assert.equal(r._meta['toolwarden/decision'].rule, 'tools.toggle-*');
    });

    it('denies a hidden tool called anyway', async () => {
      const r = await client.callTool({ name: 'get-env', arguments: {} });
      assert.equal(r.isError, true);
      assert.equal(r._meta['toolwarden/decision'].rule, 'hide');
      assert.ok(!text(r).includes('PATH='), 'nothing from the server leaked');
    });

    it('holds a call that needs approval and denies it when nobody approves in time', async () => {
      const r = await client.callTool({ name: 'gzip-file-as-resource', arguments: {} });
      assert.equal(r.isError, true);
      assert.match(text(r), /Nobody approved this call in time/);
      assert.equal(r._meta['toolwarden/decision'].rule, 'approval');
    });

    it('relays resources and prompts', async () => {
      const { resources } = await client.listResources();
      assert.ok(resources.length > 0);
      const read = await client.readResource({ uri: resources[0].uri });
      assert.equal(read.contents[0].uri, resources[0].uri);
      const { prompts } = await client.listPrompts();
      assert.ok(prompts.some((p) => p.name === 'simple-prompt'));
      const prompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lisbon' } });
      assert.match(JSON.stringify(prompt.messages), /Lisbon/);
    });

    it('relays progress notifications for the right request', async () => {
      const seen = [];
      const r = await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (p) => seen.push(p.progress) },
      );
      assert.match(text(r), /Long running operation completed/);
      // The SDK client handles notifications a microtask later than responses, so the last
      // progress can lose the race with the result: every earlier one must arrive, in order.
      assert.ok(seen.length >= 2, `progress seen: ${seen}`);
      assert.deepEqual(seen, [1, 2, 3].slice(0, seen.length));
    });

    it('relays a sampling request from the server to this client and back', async () => {
      const r = await client.callTool({
        name: 'trigger-sampling-request', arguments: { prompt: 'Say hi', maxTokens: 20 },
      });
      assert.match(text(r), /sampled reply to 1 message/);
    });

    it('relays an elicitation request and the answer', async () => {
      const r = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
      assert.match(text(r), /Ada Lovelace/);
    });

    it('relays roots/list from the server to the client', async () => {
      const r = await client.callTool({ name: 'get-roots-list', arguments: {} });
      assert.match(text(r), /file:\/\/\/e2e\/root/);
    });

    it('cancels a call in flight and keeps serving', async () => {
      const controller = new AbortController();
      const started = Date.now();
      const call = client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } },
        undefined,
        { signal: controller.signal, onprogress: () => controller.abort('test cancels') },
      );
      await assert.rejects(call);
      assert.ok(Date.now() - started < 10000, 'the cancelled call did not run to completion');
      const r = await client.callTool({ name: 'echo', arguments: { message: 'still here' } });
      assert.equal(text(r), 'Echo: still here');
    });

    it('answers ping', async () => {
      assert.deepEqual(await client.ping(), {});
    });
  });
}
