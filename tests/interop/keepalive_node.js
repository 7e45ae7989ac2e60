#!/usr/bin/env node
// The HTTP edge of the real server against Node's own clients:
//   A  HTTP keep-alive: an http.Agent({keepAlive: true, maxSockets: 1}) makes 1,000
//      sequential POST /api/v1/channels/<c>/messages; every one gets its 201 with no
//      ECONNRESET / socket hang up (the server either keeps the connection or says
//      `Connection: close`), a `ws` subscriber gets offsets 1..1000 in order, and a GET
//      after a POST works on the same agent.
//   C  refusals before the upgrade, seen by `ws` ('unexpected-response'): 403 origin,
//      404 path, 503 per address (Retry-After), 429 rate (Retry-After), each HTTP/1.1
//      with a JSON {"error":{"code","message"}} body.
// Each part starts its own server; a failing part does not stop the others.
// usage: keepalive_node.js PATH/TO/switchboard
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');
const { check, fails } = require('./sbcheck');

const binary = process.argv[2];
const KEY = 'sk_node_1';
const API_KEYS = [{ name: 'node', key: KEY, quota: { per_minute: 1000000, burst: 1000000 } }];
const N_POSTS = 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves p, or rejects after ms with a message naming what.
function within(ms, what, p) {
	let t;
	return Promise.race([p, new Promise((_, rej) => {
		t = setTimeout(() => rej(new Error(`${what}: no outcome within ${ms} ms`)), ms);
	})]).finally(() => clearTimeout(t));
}

// The server on a free loopback port with config; resolves {proc, port, exit}.
function launch(config) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-keepalive-'));
	const file = path.join(dir, 'config.json');
	fs.writeFileSync(file, JSON.stringify(config));
	const proc = spawn(binary, ['--config', file, '--host', '127.0.0.1', '--port', '0'],
			   { stdio: ['ignore', 'inherit', 'pipe'] });
	const exit = new Promise((r) => proc.on('exit', (code, sig) => r(sig || code)));
	let log = '';
	const port = new Promise((resolve, reject) => {
		proc.stderr.on('data', (d) => {
			log += d;
			const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
			if (m) resolve(Number(m[1]));
		});
		exit.then((rc) => reject(new Error(`server exited (${rc}) before listening: ${log.trim()}`)));
	});
	const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
	return within(10000, 'server start', port)
		.then((p) => { cleanup(); return { proc, port: p, exit }; },
		      (e) => { cleanup(); proc.kill('SIGKILL'); throw e; });
}

async function shutdown(srv, part) {
	srv.proc.kill('SIGTERM');
	const rc = await Promise.race([srv.exit, sleep(15000).then(() => 'still running after 15 s')]);
	if (rc === 'still running after 15 s') srv.proc.kill('SIGKILL');
	check(rc === 0, `${part}: server exits 0 after SIGTERM (got ${rc})`);
}

// One request; resolves {status, headers, body, reused} or rejects with the socket error.
function request(port, agent, method, urlPath, body) {
	return new Promise((resolve, reject) => {
		const headers = { Authorization: `Bearer ${KEY}` };
		if (body !== undefined) {
			headers['Content-Type'] = 'application/json';
			headers['Content-Length'] = Buffer.byteLength(body);
		}
		const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers },
			(res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
					body: Buffer.concat(chunks).toString(), reused: req.reusedSocket }));
				res.on('error', reject);
			});
		req.setTimeout(5000, () => req.destroy(new Error('no response within 5 s')));
		req.on('error', reject);
		req.end(body);
	});
}

// A `ws` client that has sent connect and subscribed to channel; frames of the channel
// go to onFrame.
function subscriber(port, channel, onFrame) {
	return within(5000, 'subscribe', new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
		ws.on('error', reject);
		ws.on('open', () => {
			ws.send(JSON.stringify({ type: 'connect', id: 1, user: 'node' }));
			ws.send(JSON.stringify({ type: 'subscribe', id: 2, channel }));
		});
		ws.on('message', (d) => {
			const f = JSON.parse(d);
			if (f.id === 2) {
				if (f.type === 'subscribed') resolve(ws);
				else reject(new Error(`subscribe refused: ${d}`));
			} else if (f.channel === channel) {
				onFrame(f);
			}
		});
	}));
}

async function partKeepAlive() {
	const srv = await launch({ api_keys: API_KEYS });
	try {
		const channel = 'ka:node';
		const offsets = [];
		const ws = await subscriber(srv.port, channel, (f) => {
			if (f.type === 'message') offsets.push(f.offset);
		});
		const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
		const errors = {}, statuses = {};
		let firstError = null, closes = 0, reused = 0;
		const deadline = Date.now() + 60000;
		for (let i = 1; i <= N_POSTS && Date.now() < deadline; i++) {
			try {
				const r = await request(srv.port, agent, 'POST', `/api/v1/channels/${channel}/messages`,
							JSON.stringify({ data: { i } }));
				statuses[r.status] = (statuses[r.status] || 0) + 1;
				if (/close/i.test(r.headers.connection || '')) closes++;
				if (r.reused) reused++;
			} catch (e) {
				const code = e.code || e.message;
				errors[code] = (errors[code] || 0) + 1;
				if (firstError === null) firstError = `request ${i}: ${code}`;
			}
		}
		console.log(`     ${closes} responses said Connection: close, ${reused} requests reused a socket`);
		const nerr = Object.values(errors).reduce((a, b) => a + b, 0);
		check(nerr === 0, `A: ${N_POSTS} keep-alive POSTs without a socket error ` +
		      `(${nerr} errors ${JSON.stringify(errors)}${firstError ? ', first ' + firstError : ''})`);
		check(statuses[201] === N_POSTS, `A: every POST answered 201 (statuses ${JSON.stringify(statuses)})`);
		const until = Date.now() + 10000;
		while (offsets.length < N_POSTS && Date.now() < until) await sleep(20);
		const wrong = offsets.findIndex((o, i) => o !== i + 1);
		check(offsets.length === N_POSTS && wrong < 0,
		      `A: the ws subscriber got offsets 1..${N_POSTS} in order (got ${offsets.length} messages, ` +
		      `${wrong < 0 ? 'in order' : `offset ${offsets[wrong]} at position ${wrong + 1}`})`);

		// a GET right after a POST, through the same keep-alive agent
		try {
			const p = await request(srv.port, agent, 'POST', '/api/v1/channels/ka:get/messages', '{"data":1}');
			const g = await request(srv.port, agent, 'GET', '/api/v1/channels/ka:get/messages');
			check(p.status === 201 && g.status === 200 && /"offset":1/.test(g.body),
			      `A: a GET after a POST on the keep-alive agent works (POST ${p.status}, GET ${g.status})`);
		} catch (e) {
			check(false, `A: a GET after a POST on the keep-alive agent: ${e.code || e.message}`);
		}
		agent.destroy();
		ws.terminate();
	} finally {
		await shutdown(srv, 'A');
	}
}

// Opens a `ws` client expecting a refusal; resolves {status, version, headers, body} from
// 'unexpected-response', {status: 101} if it opened, or {error} for anything else.
function refusal(port, urlPath, origin) {
	return within(5000, `upgrade ${urlPath}`, new Promise((resolve) => {
		const ws = new WebSocket(`ws://127.0.0.1:${port}${urlPath}`, origin ? { origin } : {});
		ws.on('unexpected-response', (req, res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => {
				resolve({ status: res.statusCode, version: res.httpVersion, headers: res.headers,
					  body: Buffer.concat(chunks).toString() });
				req.destroy();
			});
		});
		ws.on('open', () => { ws.close(); resolve({ status: 101 }); });
		ws.on('error', (e) => resolve({ error: e.message }));
	}));
}

// Checks r as an HTTP/1.1 `status` refusal with a JSON error body (and Retry-After).
function checkRefusal(r, status, what, retryAfter) {
	const p = [];
	if (r.error !== undefined) p.push(`error without a response: ${r.error}`);
	if (r.status !== status) p.push(`status ${r.status}, not ${status}`);
	if (r.version !== undefined && r.version !== '1.1') p.push(`HTTP/${r.version}, not HTTP/1.1`);
	const ctype = (r.headers || {})['content-type'] || '';
	if (r.status !== 101 && ctype.split(';')[0].trim().toLowerCase() !== 'application/json')
		p.push(`Content-Type ${JSON.stringify(ctype)}, not application/json`);
	let err = null;
	try { err = JSON.parse(r.body).error; } catch (e) { /* reported below */ }
	if (r.status !== 101 && !(err && typeof err.code === 'string' && typeof err.message === 'string'))
		p.push(`body is not {"error":{"code":..,"message":..}} (${JSON.stringify((r.body || '').slice(0, 50))})`);
	if (retryAfter && !/^\d+$/.test((r.headers || {})['retry-after'] || ''))
		p.push(`no Retry-After in seconds (${(r.headers || {})['retry-after']})`);
	check(p.length === 0, `C: ws ${what} -> 'unexpected-response' HTTP/1.1 ${status} with a JSON error` +
	      (p.length ? ': ' + p.join('; ') : ''));
}

function opened(port) {
	return within(5000, 'open', new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
		ws.on('open', () => resolve(ws));
		ws.on('error', reject);
	}));
}

async function partRefusals() {
	let srv = await launch({ allowed_origins: ['https://app.example'], limits: { max_connections_per_ip: 3 } });
	try {
		const ok = await refusal(srv.port, '/ws', 'https://app.example');
		check(ok.status === 101, `C: ws from an allowed origin opens (got ${ok.status || ok.error})`);
		await sleep(200); // let the server count that connection as gone
		checkRefusal(await refusal(srv.port, '/ws', 'https://evil.example'), 403, 'from an origin not allowed');
		checkRefusal(await refusal(srv.port, '/nope'), 404, 'on /nope');
		const held = [];
		for (let i = 0; i < 3; i++) held.push(await opened(srv.port));
		checkRefusal(await refusal(srv.port, '/ws'), 503, '4th from one address (max_connections_per_ip 3)', true);
		held.forEach((ws) => ws.terminate());
	} finally {
		await shutdown(srv, 'C');
	}
	srv = await launch({ limits: { connection_rate_per_ip: { per_second: 1, burst: 2 } } });
	try {
		const first = [await refusal(srv.port, '/ws'), await refusal(srv.port, '/ws')];
		check(first.every((r) => r.status === 101),
		      `C: ws: the first 2 upgrades of a burst of 2 open (${first.map((r) => r.status || r.error)})`);
		checkRefusal(await refusal(srv.port, '/ws'), 429, '3rd within a second (connection_rate_per_ip 1/s, burst 2)', true);
	} finally {
		await shutdown(srv, 'C');
	}
}

async function main() {
	const parts = [['A keep-alive', partKeepAlive], ['C refusals', partRefusals]];
	const outcome = [];
	for (const [name, fn] of parts) {
		console.log(`--- ${name}`);
		const before = fails.length;
		try {
			await within(120000, name, fn());
		} catch (e) {
			check(false, `${name}: aborted: ${e.stack || e}`);
		}
		outcome.push([name, fails.length - before]);
	}
	for (const [name, n] of outcome) console.log(`part ${name}: ${n ? `FAILED (${n})` : 'passed'}`);
	console.log(fails.length ? `${fails.length} failed` : 'all passed');
	process.exit(fails.length ? 1 : 0);
}

setTimeout(() => { console.log('FAIL keepalive_node timed out'); process.exit(1); }, 280000).unref();
main().catch((e) => { console.log('FAIL ' + e.stack); process.exit(1); });
