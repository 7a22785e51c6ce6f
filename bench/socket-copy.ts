// The baseline of the transport benchmark: a plain copy of N bytes over one loopback TCP socket
// between two processes, written as well as Node allows (4 MiB writes, reads through `onread`
// into memory the receiver owns, no allocation per read).
//
// REGION is how much memory each side copies from (sender) and into (receiver), reused round
// robin: REGION = BYTES moves N distinct bytes out of one buffer into another, as a transfer of
// weights must (both buffers are written before the clock starts, so no page is first touched
// while timed); REGION = 4 MiB re-sends one cache-resident buffer, the most a socket can do when
// memory is never touched (the benchmark reports both).
//
// `send PORT BYTES REGION` listens and prints `listening`; `recv PORT REGION` connects, reads
// everything and prints `{bytes, seconds}`. Both print `cpu0 ALL MAIN` (CPU seconds so far) on
// stderr once their memory is ready, so the benchmark can leave the set-up out of CPU figures.
import { connect, createServer } from 'node:net';

const [mode, portText, ...rest] = process.argv.slice(2);
const CHUNK = 4 << 20;

/** A region of at least one chunk, every page written (so none is first touched while timed). */
function region(text: string | undefined, fill: number): Buffer {
  const bytes = Math.max(CHUNK, Number(text ?? CHUNK));
  return Buffer.alloc(bytes, fill);
}

/** CPU seconds used so far (all threads, main thread), for the benchmark to subtract set-up. */
function cpuMark(): void {
  const u = process.cpuUsage();
  const t = process.threadCpuUsage();
  process.stderr.write(`cpu0 ${(u.user + u.system) / 1e6} ${(t.user + t.system) / 1e6}\n`);
}

if (mode === 'recv') {
  const memory = region(rest[0], 1);
  cpuMark();
  const port = Number(portText);
  let bytes = 0;
  let start = 0;
  let offset = 0;
  const socket = connect({
    host: '127.0.0.1',
    port,
    onread: {
      // Each read lands at the region's running offset (round robin, whole chunks).
      buffer: () => memory.subarray(offset, offset + CHUNK),
      callback: (n: number) => {
        if (bytes === 0) start = performance.now();
        bytes += n;
        offset += n;
        if (offset + CHUNK > memory.length) offset = 0;
        return true;
      },
    },
  });
  socket.on('end', () => {
    process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - start) / 1000 })}\n`);
    process.exit(0);
  });
} else if (mode === 'send') {
  const total = Number(rest[0]);
  const memory = region(rest[1], 0x5a);
  cpuMark();
  const server = createServer({ noDelay: true }, (socket) => {
    let sent = 0;
    let offset = 0;
    const pump = (): void => {
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent);
        if (offset + n > memory.length) offset = 0;
        const ok = socket.write(memory.subarray(offset, offset + n));
        sent += n;
        offset += n;
        if (!ok) {
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
  process.stderr.write('usage: socket-copy.ts send PORT BYTES REGION | recv PORT REGION\n');
  process.exit(2);
}
