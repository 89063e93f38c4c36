// Drives llmo's Ollama-compatible API with the official `ollama` npm package:
//   node ollama_gateway.mjs HOST MODEL
// HOST is the server's base URL (http://127.0.0.1:PORT, no /api). The API key,
// if any, comes from LLMO_KEY and is sent as Authorization: Bearer. Exits
// non-zero on the first failed check and prints one JSON line of what it saw.
import assert from "node:assert/strict";
import { Ollama } from "ollama";

const [host, model] = process.argv.slice(2);
if (!host || !model) {
  console.error("usage: node ollama_gateway.mjs HOST MODEL");
  process.exit(2);
}
const key = process.env.LLMO_KEY || "";
const headers = key ? { Authorization: `Bearer ${key}` } : {};
const ollama = new Ollama({ host, headers });
const seen = {};
const opts = { temperature: 0, seed: 1, num_predict: 8 };

// version
const v = await ollama.version();
assert.match(v.version, /^\d+\.\d+\.\d+/);
seen.version = v.version;

// tags
const tags = await ollama.list();
const m = tags.models.find((x) => x.name === model);
assert.ok(m, `model ${model} not in /api/tags: ${JSON.stringify(tags)}`);
assert.equal(m.model, model);
assert.ok(m.size > 0, "size");
assert.equal(m.details.format, "gguf");
assert.ok(m.details.family, "family");
assert.ok(m.details.parameter_size, "parameter_size");
assert.ok(m.details.quantization_level, "quantization_level");
assert.ok(!Number.isNaN(Date.parse(m.modified_at)), "modified_at");
seen.tags = tags.models.map((x) => x.name);

// show
const show = await ollama.show({ model });
assert.equal(show.details.family, m.details.family);
const arch = show.model_info["general.architecture"];
assert.ok(arch, "general.architecture");
assert.ok(show.model_info[`${arch}.context_length`] > 0, "context_length");
assert.ok(show.capabilities.includes("completion"));

// ps
const ps = await ollama.ps();
const running = ps.models.find((x) => x.name === model);
assert.ok(running, "model not in /api/ps");
assert.ok(running.size > 0);
assert.ok(Date.parse(running.expires_at) > Date.now());

// generate, not streamed
const gen = await ollama.generate({ model, prompt: "Once upon a time", stream: false, options: opts });
assert.equal(gen.model, model);
assert.equal(gen.done, true);
assert.ok(["stop", "length"].includes(gen.done_reason), gen.done_reason);
assert.equal(typeof gen.response, "string");
assert.ok(gen.response.length > 0, "empty generate response");
assert.ok(gen.prompt_eval_count > 0 && gen.eval_count > 0 && gen.eval_count <= 8, JSON.stringify(gen));
assert.ok(gen.total_duration > 0 && gen.eval_duration > 0);
seen.generate = gen.response;

// generate raw (no template: /v1/completions), streamed
let rawText = "";
let rawLast;
let rawLines = 0;
for await (const part of await ollama.generate({ model, prompt: "Once upon a time", raw: true, stream: true, options: opts })) {
  rawLines++;
  if (!part.done) rawText += part.response;
  rawLast = part;
}
assert.ok(rawLines >= 2, `raw stream sent ${rawLines} lines`);
assert.equal(rawLast.done, true);
assert.ok(rawLast.eval_count > 0 && rawLast.prompt_eval_count > 0, JSON.stringify(rawLast));
assert.ok(rawLast.total_duration >= rawLast.prompt_eval_duration);
assert.ok(rawText.length > 0);
seen.generateRawStream = rawText;

// chat, not streamed
const chat = await ollama.chat({
  model,
  messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }],
  stream: false,
  options: opts,
});
assert.equal(chat.done, true);
assert.equal(chat.message.role, "assistant");
assert.ok(chat.message.content.length > 0);
assert.ok(chat.eval_count > 0);
seen.chat = chat.message.content;

// chat, streamed: many lines, text equal to the non-streamed answer (greedy)
let text = "";
let lines = 0;
let last;
for await (const part of await ollama.chat({
  model,
  messages: [{ role: "system", content: "You tell stories." }, { role: "user", content: "Once upon a time" }],
  stream: true,
  options: opts,
})) {
  lines++;
  assert.equal(part.message.role, "assistant");
  text += part.message.content;
  last = part;
}
assert.ok(lines >= 2, `chat stream sent ${lines} lines`);
assert.equal(last.done, true);
assert.ok(["stop", "length"].includes(last.done_reason));
assert.equal(last.eval_count, chat.eval_count);
assert.equal(text, chat.message.content, "streamed and non-streamed greedy chats differ");
seen.chatStreamLines = lines;

// embed: one and many
const e1 = await ollama.embed({ model, input: "hello" });
assert.equal(e1.embeddings.length, 1);
assert.ok(e1.embeddings[0].length > 0);
const e2 = await ollama.embed({ model, input: ["hello", "world"] });
assert.equal(e2.embeddings.length, 2);
assert.equal(e2.embeddings[1].length, e1.embeddings[0].length);
assert.deepEqual(e2.embeddings[0], e1.embeddings[0]);
seen.embeddingDim = e1.embeddings[0].length;

// legacy embeddings
const legacy = await ollama.embeddings({ model, prompt: "hello" });
assert.equal(legacy.embedding.length, seen.embeddingDim);

// errors come back as ResponseError with Ollama's status and message
await assert.rejects(ollama.chat({ model: "no-such-model", messages: [{ role: "user", content: "hi" }], stream: false }), (err) => {
  assert.equal(err.name, "ResponseError");
  assert.equal(err.status_code, 404);
  assert.match(err.error, /no-such-model|not found/i);
  return true;
});
await assert.rejects(ollama.show({ model: "no-such-model" }), (err) => err.status_code === 404);
await assert.rejects(ollama.generate({ model, prompt: "x", options: { temperature: "hot" }, stream: false }), (err) => {
  assert.equal(err.status_code, 400);
  assert.match(err.error, /temperature/);
  return true;
});
if (key) {
  const bad = new Ollama({ host, headers: { Authorization: "Bearer sk-not-a-real-key" } });
  await assert.rejects(bad.list(), (err) => {
    assert.equal(err.status_code, 401);
    assert.match(err.error, /invalid API key/);
    return true;
  });
}

console.log(JSON.stringify({ ok: true, ...seen }));
