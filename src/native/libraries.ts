// Where to look for libcuda and libnccl. Order (native/src/library_loader.cc): the override alone
// when set; else a copy already loaded in this process; else these candidates; else the system.
import { readdirSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { NativeConfig } from './config.ts';
import type { LibrarySearch } from './types.ts';

/** Folders that hold Python packages (site-packages / dist-packages) in the usual places. */
export function sitePackagesDirs(
  config: NativeConfig,
  listDir: (dir: string) => string[] = safeList,
): string[] {
  const prefixes: string[] = [];
  if (config.virtualEnv) prefixes.push(config.virtualEnv);
  if (config.condaPrefix) prefixes.push(config.condaPrefix);
  // The python3 on PATH (e.g. /opt/torch/.venv/bin/python3 -> /opt/torch/.venv).
  for (const dir of config.path) {
    if (listDir(dir).includes('python3')) {
      prefixes.push(dirname(dir));
      try {
        prefixes.push(dirname(dirname(realpathSync(join(dir, 'python3')))));
      } catch {
        // a dangling link: the unresolved prefix above is enough
      }
    }
  }
  prefixes.push('/usr/local', '/usr', '/opt/conda');
  if (config.home) prefixes.push(join(config.home, '.local'));

  const dirs: string[] = [...config.extraSitePackages, ...config.pythonPath];
  for (const prefix of prefixes) {
    for (const lib of ['lib', 'lib64']) {
      for (const py of listDir(join(prefix, lib)).filter((n) => /^python3(\.\d+)?$/.test(n))) {
        dirs.push(join(prefix, lib, py, 'site-packages'), join(prefix, lib, py, 'dist-packages'));
      }
    }
  }
  return [...new Set(dirs)];
}

export function ncclSearch(
  config: NativeConfig,
  listDir: (dir: string) => string[] = safeList,
): LibrarySearch {
  const candidates = sitePackagesDirs(config, listDir)
    .map((site) => join(site, 'nvidia', 'nccl', 'lib'))
    .filter((dir) => listDir(dir).includes('libnccl.so.2'))
    .map((dir) => join(dir, 'libnccl.so.2'));
  return {
    ...(config.ncclPath ? { override: config.ncclPath } : {}),
    loadedPrefix: 'libnccl.so',
    candidates,
    systemNames: ['libnccl.so.2', 'libnccl.so'],
  };
}

export function cudaSearch(
  config: NativeConfig,
  listDir: (dir: string) => string[] = safeList,
): LibrarySearch {
  // The NVIDIA container toolkit mounts the driver's libraries here; the GPU operator under /usr/local/nvidia.
  const dirs = [
    '/usr/local/nvidia/lib64',
    '/usr/local/nvidia/lib',
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib64',
    '/usr/lib/wsl/lib',
  ];
  const candidates = dirs
    .filter((dir) => listDir(dir).includes('libcuda.so.1'))
    .map((dir) => join(dir, 'libcuda.so.1'));
  return {
    ...(config.cudaPath ? { override: config.cudaPath } : {}),
    loadedPrefix: 'libcuda.so',
    candidates,
    systemNames: ['libcuda.so.1', 'libcuda.so'],
  };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
