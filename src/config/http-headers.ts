import { ConfigError, errnoCode, errorMessage } from '../errors';
import { readSmallFile } from './read-small-file';
import type { HeaderSource, HttpHandlerConfig } from './types';

/**
 * What Node's HTTP client accepts in a header value (it throws on anything else, line breaks
 * included, which would otherwise allow header injection).
 */
export const HEADER_VALUE_CHARS = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The HTTP handler's header values, read from where `headers` says: what the daemon does
 * when it starts, and nothing else does (the secrets are the handler's, not a publisher's).
 * Messages name the header and where its value comes from, never the value.
 *
 * @param at - the handler's config key, for the problems' paths (`lanes[0].handler`)
 * @param read - reads a `{ "file" }` source @defaultValue `readSmallFile`
 * @throws ConfigError listing every header that cannot be resolved, `path` naming the first
 */
export function resolveHeaders(config: HttpHandlerConfig, at: string, read: (file: string) => string = readSmallFile): Record<string, string> {
  const headers: Record<string, string> = {};
  const problems: Array<{ path: string; message: string }> = [];
  for (const [name, spec] of Object.entries(config.headers)) {
    const path = `${at}.headers.${name}`;
    const resolved = resolveOne(spec, read);
    if ('problem' in resolved) problems.push({ path, message: `${path}: ${resolved.problem}` });
    else headers[name] = resolved.value;
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => p.message).join('\n'), { path: problems[0]!.path });
  return headers;
}

function resolveOne(spec: HeaderSource, read: (file: string) => string): { value: string } | { problem: string } {
  let value: string;
  let source: string;
  if ('env' in spec) {
    source = `environment variable ${spec.env}`;
    if (spec.value === null) return { problem: `${source} is not set` };
    value = spec.value;
  } else if ('file' in spec) {
    source = `file ${spec.file}`;
    try {
      // Secret files usually end with a newline that is not part of the secret.
      value = read(spec.file).replace(/[\r\n]+$/, '');
    } catch (err) {
      const code = errnoCode(err) ?? errorMessage(err);
      return { problem: `${source} cannot be read (${code})` };
    }
    if (value === '') return { problem: `${source} is empty` };
  } else {
    source = 'its value';
    value = spec.value;
  }
  if (!HEADER_VALUE_CHARS.test(value)) return { problem: `${source} holds a line break or control character, which HTTP header values cannot` };
  return { value };
}
