// The baseline of the transport benchmark: a plain copy of N bytes over one loopback TCP socket
// between two processes, written as well as Node allows (4 MiB writes, reads into one reused
// buffer through `onread`). `send PORT BYTES` listens and
// prints `listening`; `recv PORT` connects, reads everything and prints `{bytes, seconds}`.
import { connect, createServer } from 'node:net';

const [mode, portText, bytesText] = process.argv.slice(2);
const CHUNK = 4 << 20;

if (mode === 'recv') {
  const buffer = Buffer.allocUnsafe(CHUNK);
  const port = Number(portText);
  let bytes = 0;
  let start = 0;
  const socket = connect({
    host: '127.0.0.1',
    port,
    onread: {
      buffer,
      callback: (n: number) => {
        if (bytes === 0) start = performance.now();
        bytes += n;
        return true;
      },
    },
  });
  socket.on('end', () => {
    process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - start) / 1000 })}\n`);
    process.exit(0);
  });
} else if (mode === 'send') {
  const total = Number(bytesText);
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const server = createServer({ noDelay: true }, (socket) => {
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent);
        sent += n;
        if (!socket.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(() => process.exit(0));
    };
    pump();
  });
  server.listen(Number(portText), '127.0.0.1', () => process.stdout.write('listening\n'));
} else {
  process.stderr.write('usage: socket-copy.ts send PORT BYTES | recv PORT\n');
  process.exit(2);
}
