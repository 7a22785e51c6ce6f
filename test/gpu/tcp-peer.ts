// One side of the 8 GiB tcp-over-cuda test: `send <port>` or `receive`. Both use the same GPU.
import { once } from 'node:events';
import net from 'node:net';
import { DeviceWriter, Gpu, sendDeviceRange } from '../../src/native/index.ts';
import { patternBytes, stampChunk } from './pattern.ts';

const CHUNK = 64 << 20;
const [mode, portArg, totalArg] = process.argv.slice(2);
const total = Number(totalArg ?? 8 * 2 ** 30);
const chunks = Math.ceil(total / CHUNK);
const gpu = await Gpu.open({ probe: false });
const pinned = [await gpu.allocPinned(CHUNK), await gpu.allocPinned(CHUNK)] as const;
const pattern = patternBytes(CHUNK, 12345);
const report = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (mode === 'send') {
  const src = await gpu.allocDevice(0, total);
  const stage = pinned[0].view();
  for (let k = 0; k < chunks; k++) {
    stampChunk(pattern, k).copy(stage);
    await src.copyFromHost(pinned[0], { dstOffset: k * CHUNK, bytes: Math.min(CHUNK, total - k * CHUNK) });
  }
  const checksum = await src.checksum();
  const socket = net.connect(Number(portArg), '127.0.0.1');
  await once(socket, 'connect');
  const t0 = performance.now();
  const sent = await sendDeviceRange(socket, src, { pinned });
  socket.end();
  await once(socket, 'close');
  report({ side: 'send', sent, seconds: (performance.now() - t0) / 1000, checksum });
} else {
  const dst = await gpu.allocDevice(0, total);
  await dst.fill(0);
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  report({ side: 'receive', port: (server.address() as net.AddressInfo).port });
  const [socket] = (await once(server, 'connection')) as [net.Socket];
  const t0 = performance.now();
  const writer = new DeviceWriter(dst, { pinned });
  for await (const data of socket) await writer.write(data as Buffer);
  await writer.finish();
  const seconds = (performance.now() - t0) / 1000;
  server.close();
  // Byte-exact check: read every chunk back and compare with what the sender generated.
  let mismatched = 0;
  for (let k = 0; k < chunks; k++) {
    const bytes = Math.min(CHUNK, total - k * CHUNK);
    await dst.copyToHost(pinned[0], { srcOffset: k * CHUNK, bytes });
    if (!pinned[0].view(0, bytes).equals(stampChunk(pattern, k).subarray(0, bytes))) mismatched++;
  }
  report({ side: 'receive', received: writer.received, seconds, checksum: await dst.checksum(), mismatched });
}
