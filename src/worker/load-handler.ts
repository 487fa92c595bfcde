import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { errnoCode, HandlerLoadError } from '../errors';
import type { Handler } from './handler-types';
import { describeLoadFailure } from './load-failure';

/**
 * Why the handler at `path` cannot be loaded without running it (it is not there), or
 * undefined: the check `orbit config` makes, and the first one `loadHandler` makes.
 */
export function missingHandler(path: string): string | undefined {
  return existsSync(path) ? undefined : `handler module not found: ${path}`;
}

/**
 * Loads a lane's handler module: CommonJS or ES module (`.js`, `.cjs`, `.mjs`) exporting
 * `handle` or a default function.
 *
 * `require` comes first: it loads CommonJS everywhere and ES modules on Node ≥ 20.19
 * (require(esm)), and it works inside jest. A native `import()` is the fallback for ES
 * modules `require` refuses (top-level await, older Node); it is built with `Function` so
 * the CommonJS build keeps it a real dynamic import instead of rewriting it to `require`.
 *
 * Every failure is a HandlerLoadError with a one-line message (and the location of a
 * syntax error or throw): the CLI exits 2 on it, as for bad configuration.
 */
export async function loadHandler(path: string): Promise<Handler> {
  const missing = missingHandler(path);
  if (missing !== undefined) throw new HandlerLoadError(missing);
  let mod: unknown;
  try {
    mod = require(path);
  } catch (err) {
    // A module may throw anything at import, null included.
    const code = errnoCode(err);
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') {
      throw new HandlerLoadError(`cannot load handler ${path}: ${describeLoadFailure(path, err)}`, { cause: err });
    }
    try {
      mod = await nativeImport(pathToFileURL(path).href);
    } catch (importErr) {
      throw new HandlerLoadError(`cannot load handler ${path}: ${describeLoadFailure(path, importErr)}`, { cause: importErr });
    }
  }
  const handler = pickHandler(mod);
  if (!handler) {
    throw new HandlerLoadError(`handler ${path} exports no function: export "handle" or a default function`);
  }
  return handler;
}

const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

function pickHandler(mod: unknown): Handler | undefined {
  if (typeof mod === 'function') return mod as Handler;
  if (typeof mod !== 'object' || mod === null) return undefined;
  const m = mod as { handle?: unknown; default?: unknown };
  if (typeof m.handle === 'function') return m.handle as Handler;
  if (typeof m.default === 'function') return m.default as Handler;
  // An ES module's default export seen through require(esm) or CJS interop.
  if (typeof m.default === 'object' && m.default !== null) return pickHandler(m.default);
  return undefined;
}
