// Drives an llmo model service (or the gateway in front of one) with the
// official `openai` npm package: node openai_modelsvc.mjs BASE_URL MODEL
// BASE_URL ends in /v1. Exits non-zero on the first failed check and prints
// one JSON line of what it saw on success.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
if (!baseURL || !model) {
  console.error("usage: node openai_modelsvc.mjs BASE_URL MODEL");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY || "sk-test", maxRetries: 0, timeout: 60_000 });
const seen = {};

// Models list.
const models = [];
for await (const m of client.models.list()) models.push(m);
const me = models.find((m) => m.id === model);
assert.ok(me, `model ${model} not listed: ${JSON.stringify(models)}`);
assert.equal(me.object, "model");
assert.ok(me.context_length > 0, "context_length");
seen.models = models.map((m) => m.id);

// Chat, not streamed.
const chat = await client.chat.completions.create({
  model, messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }],
  max_tokens: 12, temperature: 0, seed: 1,
});
assert.equal(chat.object, "chat.completion");
assert.match(chat.id, /^chatcmpl-/);
assert.equal(chat.model, model);
assert.equal(chat.choices.length, 1);
assert.equal(chat.choices[0].message.role, "assistant");
assert.equal(typeof chat.choices[0].message.content, "string");
assert.ok(["stop", "length"].includes(chat.choices[0].finish_reason));
assert.ok(chat.usage.prompt_tokens > 0 && chat.usage.completion_tokens > 0);
assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);
seen.chat = chat.choices[0].message.content;

// Chat, streamed, with usage; the concatenated deltas equal the greedy
// non-streamed answer.
const stream = await client.chat.completions.create({
  model, messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }],
  max_tokens: 12, temperature: 0, seed: 1, stream: true, stream_options: { include_usage: true },
});
let text = "", finish = null, usage = null, chunks = 0;
for await (const c of stream) {
  chunks++;
  assert.equal(c.object, "chat.completion.chunk");
  if (c.usage) usage = c.usage;
  for (const ch of c.choices) {
    text += ch.delta.content ?? "";
    if (ch.finish_reason) finish = ch.finish_reason;
  }
}
assert.equal(text, seen.chat, "streamed text differs from non-streamed greedy text");
assert.ok(finish, "no finish_reason in stream");
assert.ok(usage && usage.completion_tokens === chat.usage.completion_tokens, `usage ${JSON.stringify(usage)}`);
seen.chatChunks = chunks;

// Completion, not streamed, with n=2 and logprobs.
const comp = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0.8, seed: 7, n: 2, logprobs: 2 });
assert.equal(comp.object, "text_completion");
assert.equal(comp.choices.length, 2);
for (const c of comp.choices) {
  assert.equal(typeof c.text, "string");
  assert.ok(c.logprobs && c.logprobs.tokens.length > 0 && c.logprobs.top_logprobs[0] !== null);
}
assert.ok(comp.usage.completion_tokens > 0);
seen.completion = comp.choices.map((c) => c.text);

// Completion, streamed.
const cs = await client.completions.create({ model, prompt: "The little dog", max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } });
let ctext = "", cfinish = null, cusage = null;
for await (const c of cs) {
  if (c.usage) cusage = c.usage;
  for (const ch of c.choices) {
    ctext += ch.text;
    if (ch.finish_reason) cfinish = ch.finish_reason;
  }
}
const cfull = await client.completions.create({ model, prompt: "The little dog", max_tokens: 10, temperature: 0 });
assert.equal(ctext, cfull.choices[0].text);
assert.equal(cfinish, cfull.choices[0].finish_reason);
assert.equal(cusage.completion_tokens, cfull.usage.completion_tokens);
seen.streamedCompletion = ctext;

// Embeddings: the SDK asks for base64 by default and decodes it.
const emb = await client.embeddings.create({ model, input: ["hello world", "a cat"] });
assert.equal(emb.data.length, 2);
const v = emb.data[0].embedding;
assert.ok(Array.isArray(v) && v.length > 0);
const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
assert.ok(Math.abs(norm - 1) < 1e-3, `embedding not L2-normalised: ${norm}`);
assert.ok(emb.usage.prompt_tokens > 0);
const embf = await client.embeddings.create({ model, input: "hello world", encoding_format: "float" });
assert.equal(embf.data[0].embedding.length, v.length);
for (let i = 0; i < v.length; i++) assert.ok(Math.abs(embf.data[0].embedding[i] - v[i]) < 1e-6, "float and base64 embeddings differ");
seen.embeddingDim = v.length;

// Errors surface as typed SDK errors with the OpenAI envelope.
try {
  await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
  assert.fail("unknown model accepted");
} catch (e) {
  assert.ok(e instanceof OpenAI.NotFoundError, `got ${e}`);
  assert.equal(e.code, "model_not_found");
}
try {
  await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], temperature: 3 });
  assert.fail("temperature 3 accepted");
} catch (e) {
  assert.ok(e instanceof OpenAI.BadRequestError, `got ${e}`);
  assert.equal(e.param, "temperature");
}

console.log(JSON.stringify({ ok: true, ...seen }));
