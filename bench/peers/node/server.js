'use strict';
// Minimal broadcast server on Node `ws`, a peer for the Switchboard benchmark.
//   node server.js [PORT]     (or PORT=N; 0 or nothing picks a free port)
// Listens on 127.0.0.1. WebSocket clients of /sub are kept in a Set; every message a
// client of /pub sends is sent unchanged (text stays text) to every /sub client.
// No permessage-deflate, no slow-consumer policy: a subscriber that does not read makes
// the server buffer for it without bound (what a minimal ws server does).
// With TLS_CERT and TLS_KEY (PEM file paths) in the environment it serves wss:// instead.
// Prints "listening <port>" on stdout once it accepts connections.
const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || process.env.PORT || 0);
const subs = new Set();

const notFound = (req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
};
const server = process.env.TLS_CERT
  ? https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT),
                         key: fs.readFileSync(process.env.TLS_KEY) }, notFound)
  : http.createServer(notFound);
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  if (path !== '/sub' && path !== '/pub') {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {});
    if (path === '/sub') {
      subs.add(ws);
      ws.on('close', () => subs.delete(ws));
    } else {
      ws.on('message', (data, isBinary) => {
        for (const client of subs) {
          if (client.readyState === 1) client.send(data, { binary: isBinary });
        }
      });
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

// No SIGTERM handler: the default action ends the process at once (exit by signal 15),
// even when the event loop is busy with seconds of queued sends after an overload.
