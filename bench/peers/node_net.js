// node_net.js: the idiomatic Node.js echo server: net, socket.pipe(socket).
const net = require('net');
const srv = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
srv.listen({ host: '127.0.0.1', port: +(process.argv[2] || 0), backlog: 4096 },
  () => console.log('listening on 127.0.0.1:' + srv.address().port));
