// Loads the compiled addon. Every failure becomes one SeedcastError (SEEDCAST_ERR_NATIVE_LOAD)
// that lists each path tried and why it failed, and says how to build it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SeedcastError } from '../shared/errors.ts';
import type { NativeConfig } from './config.ts';
import type { NativeBinding } from './types.ts';

const require = createRequire(import.meta.url);

/** native/build/Release/seedcast_native.node, from src/native or dist/native alike. */
export const DEFAULT_ADDON_PATH = fileURLToPath(
  new URL('../../native/build/Release/seedcast_native.node', import.meta.url),
);

let cached: { path: string; binding: NativeBinding } | undefined;

export function addonPaths(config: Pick<NativeConfig, 'addonPath'>): string[] {
  return config.addonPath ? [config.addonPath] : [DEFAULT_ADDON_PATH];
}

export function loadBinding(config: Pick<NativeConfig, 'addonPath'>): NativeBinding {
  const paths = addonPaths(config);
  if (cached && paths.includes(cached.path)) return cached.binding;
  const failures: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) {
      failures.push(`${path}: not found`);
      continue;
    }
    try {
      const binding = require(path) as NativeBinding;
      cached = { path, binding };
      return binding;
    } catch (err) {
      failures.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new SeedcastError(
    'SEEDCAST_ERR_NATIVE_LOAD',
    `the seedcast native addon could not be loaded (${failures.join('; ')}). ` +
      'Build it with `npm run build:native` (needs cmake and a C++17 compiler; no CUDA needed), ' +
      'or set SEEDCAST_NATIVE_ADDON to a built seedcast_native.node.',
    { retryable: false },
  );
}
