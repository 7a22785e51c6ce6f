// Probes the GPU libraries in a child process first: a broken driver (a crash in cuInit, a hang in
// dlopen) then takes down the child, not the agent.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NativeConfig } from './config.ts';
import type { DeviceInfo, GpuStatus } from './types.ts';

export type ProbeResult =
  | { ok: true; status: GpuStatus; devices: DeviceInfo[] }
  | { ok: false; code: string; message: string };

const CHILD = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './probe-child.ts' : './probe-child.js', import.meta.url),
);

export function probeGpu(
  config: Pick<NativeConfig, 'probeTimeoutMs'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CHILD],
      { env, timeout: config.probeTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        if (line.startsWith('{')) {
          try {
            resolve(JSON.parse(line) as ProbeResult);
            return;
          } catch {
            // fall through: report the raw failure
          }
        }
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: string }) | null;
        const why = e?.killed
          ? `timed out after ${config.probeTimeoutMs} ms (driver hang?)`
          : e?.signal
            ? `crashed with ${e.signal}`
            : `exited with ${e?.code ?? 'no output'}`;
        resolve({
          ok: false,
          code: 'SEEDCAST_ERR_NO_CUDA',
          message: `GPU probe child ${why}: ${stderr.trim().slice(-2000) || 'no stderr'}`,
        });
      },
    );
  });
}
