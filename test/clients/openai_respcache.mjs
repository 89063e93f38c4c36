// Replays llmo's response cache through the official `openai` npm package:
// node openai_respcache.mjs BASE_URL MODEL PROMPT
// BASE_URL ends in /v1. For chat and completions it makes the same
// deterministic streamed request twice (the second should be a cache hit),
// then once not streamed, and prints one JSON line with what the package
// parsed, for the Go test to compare with what it saw on the wire.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [baseURL, model, prompt] = process.argv.slice(2);
if (!baseURL || !model || !prompt) {
  console.error("usage: node openai_respcache.mjs BASE_URL MODEL PROMPT");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey: "sk-test", maxRetries: 0, timeout: 60_000 });
const out = { chat: [], completions: [] };

const chatReq = { model, messages: [{ role: "user", content: prompt }], max_tokens: 16, temperature: 0 };
for (let i = 0; i < 2; i++) {
  const { data: stream, response } = await client.chat.completions
    .create({ ...chatReq, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  const run = { x_cache: response.headers.get("x-cache"), deltas: [], finish_reason: null, usage: null, role: null };
  for await (const c of stream) {
    assert.equal(c.object, "chat.completion.chunk");
    if (c.usage) run.usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta.role) run.role = ch.delta.role;
      if (ch.delta.content) run.deltas.push(ch.delta.content);
      if (ch.finish_reason) run.finish_reason = ch.finish_reason;
    }
  }
  out.chat.push(run);
}
{
  const { data, response } = await client.chat.completions.create(chatReq).withResponse();
  out.chat.push({ x_cache: response.headers.get("x-cache"), deltas: [data.choices[0].message.content], finish_reason: data.choices[0].finish_reason, usage: data.usage, role: data.choices[0].message.role });
}

const compReq = { model, prompt, max_tokens: 16, temperature: 0 };
for (let i = 0; i < 2; i++) {
  const { data: stream, response } = await client.completions.create({ ...compReq, stream: true }).withResponse();
  const run = { x_cache: response.headers.get("x-cache"), deltas: [], finish_reason: null };
  for await (const c of stream) {
    for (const ch of c.choices) {
      if (ch.text) run.deltas.push(ch.text);
      if (ch.finish_reason) run.finish_reason = ch.finish_reason;
    }
  }
  out.completions.push(run);
}
{
  const { data, response } = await client.completions.create(compReq).withResponse();
  out.completions.push({ x_cache: response.headers.get("x-cache"), deltas: [data.choices[0].text], finish_reason: data.choices[0].finish_reason });
}
console.log(JSON.stringify(out));
