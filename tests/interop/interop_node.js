#!/usr/bin/env node
// Interop test: the real switchboard binary driven by Node's `ws` (a strict client: it
// checks RSV bits, opcodes, lengths, masking rules and UTF-8, and drops the connection on
// any violation). Half of the subscribers read slowly, so the server's batched raw writes
// meet partial sends; message sizes cover all three WebSocket length encodings.
// usage: interop_node.js PATH/TO/switchboard
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');
const { check, fails } = require('./sbcheck');

const binary = process.argv[2];

const SUBS = 30, MESSAGES = 3000;
const config = {
	log_level: 'info',
	drain_period: 1, /* SIGTERM drains the 30 subscribers over 1 s (close code 4012) */
	limits: { max_message_size: 262144, max_data_size: 200000, send_queue_bytes: 268435456,
		  send_queue_messages: 100000,
		  /* the publisher sends as fast as it can: lift its rate limits */
		  client_publish: { per_second: 1000000, burst: 1000000 },
		  client_commands: { per_second: 1000000, burst: 1000000 } },
};

function startServer() {
	const cfgPath = path.join(os.tmpdir(), `sb-interop-${process.pid}.json`);
	fs.writeFileSync(cfgPath, JSON.stringify(config));
	const proc = spawn(binary, ['--config', cfgPath, '--host', '127.0.0.1', '--port', '0'],
			   { stdio: ['ignore', 'ignore', 'pipe'] });
	return new Promise((resolve, reject) => {
		let buf = '', started = false;
		const timer = setTimeout(() => reject(new Error('server did not start')), 10000);
		proc.stderr.on('data', (d) => {
			buf += d;
			const m = /listening on 127\.0\.0\.1:(\d+)/.exec(buf);
			if (m && !started) {
				started = true;
				clearTimeout(timer);
				fs.unlinkSync(cfgPath);
				resolve({ proc, port: Number(m[1]) });
			}
		});
	});
}

function open(port, user) {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
		ws.on('error', reject);
		ws.once('open', () => {
			ws.send(JSON.stringify({ type: 'connect', id: 0, user }));
			ws.once('message', () => resolve(ws));
		});
	});
}

function request(ws, frame) {
	return new Promise((resolve) => {
		const onMsg = (d) => {
			const f = JSON.parse(d);
			if (f.id === frame.id) {
				ws.off('message', onMsg);
				resolve(f);
			}
		};
		ws.on('message', onMsg);
		ws.send(JSON.stringify(frame));
	});
}

function sizeOf(i) {
	if (i % 997 === 0) return 70000;   // 64-bit length
	if (i % 3 === 0) return 300;        // 16-bit length
	return i % 2 ? 20 : 100;            // 7-bit length
}

async function main() {
	const { proc, port } = await startServer();
	const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
	const subs = [];
	const results = [];
	for (let i = 0; i < SUBS; i++) {
		const ws = await open(port, `sub${i}`);
		const r = { got: 0, bad: 0, last: 0, errors: 0, close: null, pongs: 0 };
		ws.on('error', () => r.errors++);
		ws.on('pong', () => r.pongs++);
		ws.on('close', (code) => { r.close = code; });
		const sub = await request(ws, { type: 'subscribe', id: 1, channel: 'bench' });
		check(sub.type === 'subscribed', `sub${i} subscribed`);
		ws.on('message', (d) => {
			const f = JSON.parse(d);
			if (f.type !== 'message') return;
			if (f.offset !== r.last + 1 && r.last !== 0) r.bad++;
			if (f.data.pad.length !== sizeOf(f.data.i) || f.data.s !== 'é✓') r.bad++;
			r.last = f.offset;
			r.got++;
		});
		if (i % 2) { // slow reader: paused 30 ms of every 40 ms; pings its server every 7 ms
			const t = setInterval(() => {
				ws._socket.pause();
				setTimeout(() => ws._socket.resume(), 30);
				if (ws.readyState === WebSocket.OPEN) ws.ping();
			}, 40);
			ws.on('close', () => clearInterval(t));
		}
		subs.push(ws);
		results.push(r);
	}
	const pub = await open(port, 'pub');
	await request(pub, { type: 'subscribe', id: 1, channel: 'bench' });
	let acks = 0;
	pub.on('message', (d) => { if (JSON.parse(d).type === 'published') acks++; });
	for (let i = 1; i <= MESSAGES; i++) {
		pub.send(JSON.stringify({ type: 'publish', id: 10 + i, channel: 'bench',
					  data: { i, s: 'é✓', pad: 'x'.repeat(sizeOf(i)) } }));
		if (i % 200 === 0) await new Promise((r) => setImmediate(r));
	}
	const deadline = Date.now() + 60000;
	while (Date.now() < deadline && (acks < MESSAGES || results.some((r) => r.got < MESSAGES)))
		await new Promise((r) => setTimeout(r, 50));
	const total = results.reduce((a, r) => a + r.got, 0);
	check(acks === MESSAGES, `publisher got ${acks}/${MESSAGES} acks`);
	check(total === SUBS * MESSAGES, `subscribers got ${total}/${SUBS * MESSAGES} messages`);
	check(results.every((r) => r.bad === 0), 'no gap, no reorder, no corrupted payload');
	check(results.every((r) => r.errors === 0), 'ws reported no protocol error');
	console.log(`     client pings answered: ${results.reduce((a, r) => a + r.pongs, 0)}`);

	proc.kill('SIGTERM');
	const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
	await new Promise((r) => setTimeout(r, 100));
	const closes = results.map((r) => r.close);
	check(closes.every((c) => c === 4012), `SIGTERM drains: every subscriber is closed with 4012 (${[...new Set(closes)]})`);
	check(code === 0, `server exits 0 after SIGTERM (got ${code})`);
	console.log(`interop_node: ${fails.length} failed`);
	process.exit(fails.length ? 1 : 0);
}

setTimeout(() => { console.log('FAIL interop_node timed out'); process.exit(1); }, 100000).unref();
main().catch((e) => { console.log('FAIL ' + e.stack); process.exit(1); });
