// The official OpenAI SDK for Node against clawgate: models list/retrieve,
// chat (JSON and stream), responses (JSON and stream), embeddings, with the
// gateway token as the API key. Run by tests/integration/test_openai_sdk.py:
//   node sdk-check.mjs <sdk dir> <base url> <token> [check ...]
// Prints one JSON line per check {name, ok, detail} and exits 1 on failure.
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [sdkDir, baseURL, apiKey, ...only] = process.argv.slice(2);
const req = createRequire(join(sdkDir, 'package.json'));
const mod = req('openai');
const OpenAI = mod.OpenAI ?? mod.default ?? mod;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 15000 });

function assert(c, msg) {
	if (!c) throw new Error(msg);
}

const checks = {
	async models() {
		const ids = [];
		for await (const m of client.models.list()) ids.push(m.id);
		assert(ids.includes('openclaw'), 'no openclaw in ' + ids);
		assert(ids.includes('openclaw/main'), 'no openclaw/main');
		const one = await client.models.retrieve('openclaw/default');
		assert(one.id === 'openclaw/default', 'retrieve: ' + one.id);
		return ids.length;
	},
	async chat() {
		const r = await client.chat.completions.create({
			model: 'openclaw',
			messages: [{ role: 'user', content: 'sdk [[reply:hi sdk]]' }],
		});
		assert(r.choices[0].message.content === 'hi sdk',
		       'content ' + r.choices[0].message.content);
		assert(r.usage.total_tokens > 0, 'usage');
		return r.id;
	},
	async chatStream() {
		const s = await client.chat.completions.create({
			model: 'openclaw/main', stream: true,
			stream_options: { include_usage: true },
			messages: [{ role: 'user', content: 'one two three' }],
		});
		let text = '', n = 0, usage = null, finish = null;
		for await (const c of s) {
			n++;
			if (c.usage) usage = c.usage;
			const ch = c.choices[0];
			if (ch?.delta?.content) text += ch.delta.content;
			if (ch?.finish_reason) finish = ch.finish_reason;
		}
		assert(text === 'echo: one two three', 'text ' + text);
		assert(finish === 'stop', 'finish ' + finish);
		assert(usage && usage.total_tokens > 0, 'usage');
		return n;
	},
	async chatTools() {
		const s = client.chat.completions.stream({
			model: 'openclaw',
			tools: [{ type: 'function', function: { name: 'lookup',
				parameters: { type: 'object' } } }],
			messages: [{ role: 'user',
				     content: 't [[tool:lookup:{"q":1}]]' }],
		});
		const final = await s.finalChatCompletion();
		const tc = final.choices[0].message.tool_calls;
		assert(tc && tc[0].function.name === 'lookup', 'tool calls');
		assert(JSON.parse(tc[0].function.arguments).q === 1, 'args');
		return tc[0].id;
	},
	async responses() {
		const r = await client.responses.create({
			model: 'openclaw', input: 'resp [[reply:hello resp]]',
			instructions: 'Be brief.',
		});
		assert(r.status === 'completed', 'status ' + r.status);
		assert(r.output_text === 'hello resp', 'text ' + r.output_text);
		return r.id;
	},
	async responsesStream() {
		const s = await client.responses.create({
			model: 'openclaw', input: 'a b c', stream: true,
		});
		const types = [];
		let text = '';
		for await (const e of s) {
			types.push(e.type);
			if (e.type === 'response.output_text.delta') text += e.delta;
		}
		assert(types[0] === 'response.created', 'first ' + types[0]);
		assert(types.at(-1) === 'response.completed', 'last');
		assert(text === 'echo: a b c', 'text ' + text);
		// the stream helper accumulates the final response
		const h = client.responses.stream({ model: 'openclaw',
						    input: 'x y' });
		const fin = await h.finalResponse();
		assert(fin.output_text === 'echo: x y', 'helper ' +
		       fin.output_text);
		return types.length;
	},
	async embeddings() {
		const r = await client.embeddings.create({
			model: 'openclaw', input: ['alpha', 'beta'],
		});
		assert(r.data.length === 2, 'count');
		assert(r.data[0].embedding.length === 8,
		       'dims ' + r.data[0].embedding.length);
		const f = await client.embeddings.create({
			model: 'openclaw', input: 'alpha',
			encoding_format: 'float',
		});
		const d = Math.abs(f.data[0].embedding[0] - r.data[0].embedding[0]);
		assert(d < 1e-5, 'base64 default decoding differs');
		return r.data[0].embedding.length;
	},
	async badKey() {
		const bad = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
		try {
			await bad.models.list();
		} catch (e) {
			assert(e.status === 401, 'status ' + e.status);
			return e.status;
		}
		throw new Error('no error');
	},
};

let failed = 0;
for (const [name, fn] of Object.entries(checks)) {
	if (only.length && !only.includes(name)) continue;
	try {
		const detail = await fn();
		console.log(JSON.stringify({ name, ok: true, detail }));
	} catch (e) {
		failed++;
		console.log(JSON.stringify({ name, ok: false,
					     detail: String(e?.stack || e) }));
	}
}
process.exit(failed ? 1 : 0);
