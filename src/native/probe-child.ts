// Runs in a child process (see probe.ts): opens the GPU libraries, lists devices, prints one JSON line.
import { nativeConfigFromEnv } from './config.ts';
import { cudaSearch, ncclSearch } from './libraries.ts';
import { loadBinding } from './loader.ts';

const config = nativeConfigFromEnv();
try {
  const binding = loadBinding(config);
  const status = await binding.openLibraries({ cuda: cudaSearch(config), nccl: ncclSearch(config) });
  const devices = status.cuda?.ok ? await binding.devices() : [];
  process.stdout.write(`${JSON.stringify({ ok: true, status, devices })}\n`);
} catch (err) {
  const code = (err as { code?: string }).code ?? 'SEEDCAST_ERR_NATIVE_LOAD';
  process.stdout.write(
    `${JSON.stringify({ ok: false, code, message: err instanceof Error ? err.message : String(err) })}\n`,
  );
}
