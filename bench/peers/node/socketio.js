'use strict';
// Minimal Socket.IO server (socket.io 4, Engine.IO v4 / Socket.IO v5), a peer for the
// Switchboard benchmark: clients join rooms, publishers emit to rooms.
//   node socketio.js [PORT]   (or PORT=N; 0 or nothing picks a free port)
// Listens on 127.0.0.1, WebSocket transport only, at /socket.io/. Events (main namespace):
//   "join" (room)        the socket joins the room and is answered "joined" (room)
//   "pub" (room, data)   "msg" (data) goes to every socket in the room
// No permessage-deflate, no HTTP compression, no slow-consumer policy beyond Engine.IO's own
// ping timeout. With TLS_CERT and TLS_KEY (PEM file paths) in the environment it serves
// wss:// instead. Prints "listening <port>" on stdout once it accepts connections.
const { Server } = require('socket.io');
const { createServer, listen } = require('./http');

const server = createServer();
const io = new Server(server, {
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
  maxHttpBufferSize: 64 * 1024 * 1024, // as large as the load generator's messages may be
});

io.on('connection', (socket) => {
  socket.on('join', (room) => {
    room = String(room);
    socket.join(room);
    socket.emit('joined', room);
  });
  socket.on('pub', (room, data) => {
    io.to(String(room)).emit('msg', data);
  });
});

listen(server);

// No SIGTERM handler, as in server.js: the default action ends the process at once.
