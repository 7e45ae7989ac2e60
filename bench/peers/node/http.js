'use strict';
// What the Node peers share: an HTTP server on 127.0.0.1 that answers 404 to plain requests
// (https with TLS_CERT and TLS_KEY, PEM file paths, in the environment), and listen(), which
// prints "listening <port>" on stdout once it accepts connections.
const fs = require('fs');
const http = require('http');
const https = require('https');

const notFound = (req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
};

exports.createServer = () => (process.env.TLS_CERT
  ? https.createServer({ cert: fs.readFileSync(process.env.TLS_CERT),
                         key: fs.readFileSync(process.env.TLS_KEY) }, notFound)
  : http.createServer(notFound));

// PORT from argv[2] or $PORT; 0 or nothing picks a free port.
exports.listen = (server) => {
  const port = Number(process.argv[2] || process.env.PORT || 0);
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
};
