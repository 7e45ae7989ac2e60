'use strict';
// Minimal broadcast server on Node `ws`, a peer for the Switchboard benchmark.
//   node server.js [PORT]     (or PORT=N; 0 or nothing picks a free port)
// Listens on 127.0.0.1. WebSocket clients of /sub are kept in a Set; every message a
// client of /pub sends is sent unchanged (text stays text) to every /sub client.
// Per channel the same: /sub/<channel> and /pub/<channel> (channel [A-Za-z0-9_:.@=-]+)
// have a Set each; /sub and /pub are the channel of the empty name.
// No permessage-deflate, no slow-consumer policy: a subscriber that does not read makes
// the server buffer for it without bound (what a minimal ws server does).
// With TLS_CERT and TLS_KEY (PEM file paths) in the environment it serves wss:// instead.
// Prints "listening <port>" on stdout once it accepts connections.
const { WebSocketServer } = require('ws');
const { createServer, listen } = require('./http');

const channels = new Map(); // channel name -> Set of subscribers
const route = /^\/(sub|pub)(?:\/([A-Za-z0-9_:.@=-]+))?$/;

const server = createServer();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

server.on('upgrade', (req, socket, head) => {
  const m = route.exec(req.url.split('?')[0]);
  if (m === null) {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const name = m[2] || '';
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {});
    if (m[1] === 'sub') {
      let subs = channels.get(name);
      if (subs === undefined) channels.set(name, (subs = new Set()));
      subs.add(ws);
      ws.on('close', () => {
        subs.delete(ws);
        if (subs.size === 0 && channels.get(name) === subs) channels.delete(name);
      });
    } else {
      ws.on('message', (data, isBinary) => {
        const subs = channels.get(name);
        if (subs === undefined) return;
        for (const client of subs) {
          if (client.readyState === 1) client.send(data, { binary: isBinary });
        }
      });
    }
  });
});

listen(server);

// No SIGTERM handler: the default action ends the process at once (exit by signal 15),
// even when the event loop is busy with seconds of queued sends after an overload.
