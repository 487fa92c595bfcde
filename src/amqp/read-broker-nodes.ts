import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AmqpConfig } from '../config/types';
import type { BrokerNodeLimits } from '../topology/broker-capacity';
import type { NodeMemory } from '../topology/broker-memory';

/**
 * What a client cannot learn over AMQP — a node's file-handle limit — read from RabbitMQ's
 * management API (`GET /api/nodes`), when it is there. Read-only, one request per URL tried,
 * bounded by a timeout: a broker without the management plugin (or a firewall) only means the
 * check is skipped, never a slower or failed start.
 */

/** The management plugin's default ports: plain and TLS. */
const MANAGEMENT_PORT = 15672;
const MANAGEMENT_TLS_PORT = 15671;

/**
 * The management URLs to try: `amqp.management.url` when set, else one per AMQP URL, on the
 * same host with the plugin's default port (https and 15671 for `amqps://`) and the AMQP
 * URL's credentials (the user needs the `monitoring` tag to read nodes).
 */
export function managementUrls(amqp: AmqpConfig): string[] {
  if (amqp.management.url !== null) return [amqp.management.url];
  return amqp.urls.map((text) => {
    const url = new URL(text);
    const tls = url.protocol === 'amqps:';
    // An IPv6 host keeps its brackets in `hostname` (amqp: is not a "special" scheme).
    const out = new URL(`${tls ? 'https' : 'http'}://${url.hostname}:${tls ? MANAGEMENT_TLS_PORT : MANAGEMENT_PORT}/`);
    out.username = url.username || 'guest';
    out.password = url.password || 'guest';
    return out.toString();
  });
}

/** Either every node's limits, or why they could not be read (per URL tried, credentials never shown). */
export type BrokerNodesResult = { readonly nodes: readonly BrokerNodeLimits[]; readonly from: string } | { readonly unavailable: string };

/** `http(s)://host:port` of a URL: how messages name it, without credentials or path. */
export function describeUrl(text: string): string {
  const url = new URL(text);
  return `${url.protocol}//${url.host}`;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** The nodes in an `/api/nodes` answer; throws when the answer is not a list of nodes. */
export function parseNodes(body: string): BrokerNodeLimits[] {
  const data: unknown = JSON.parse(body);
  if (!Array.isArray(data)) throw new Error('the answer is not a list of nodes');
  return data.map((n: unknown) => {
    const node = (n ?? {}) as Record<string, unknown>;
    return { name: String(node.name ?? 'unknown'), fdTotal: numberOrUndefined(node.fd_total), fdUsed: numberOrUndefined(node.fd_used) };
  });
}

/**
 * One node's memory breakdown (`GET /api/nodes/<node>/memory`); undefined when the node
 * reports none (a node that is down answers `"not_available"`).
 */
export function parseNodeMemory(name: string, body: string): NodeMemory | undefined {
  const data = JSON.parse(body) as { memory?: unknown };
  const memory = (typeof data?.memory === 'object' && data.memory !== null ? data.memory : {}) as Record<string, unknown>;
  const binaryBytes = numberOrUndefined(memory.binary);
  const quorumEtsBytes = numberOrUndefined(memory.quorum_ets);
  return binaryBytes === undefined || quorumEtsBytes === undefined ? undefined : { name, binaryBytes, quorumEtsBytes };
}

function get(text: string, path: string, amqp: AmqpConfig, timeoutMs: number): Promise<string> {
  const url = new URL(path, text);
  const auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  const tls = url.protocol === 'https:';
  const options = {
    method: 'GET',
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (tls ? 443 : 80),
    path: `${url.pathname}${url.search}`,
    headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}`, accept: 'application/json' },
    timeout: timeoutMs,
    ...(tls
      ? {
          ca: amqp.tls.caFile ? readFileSync(amqp.tls.caFile) : undefined,
          servername: amqp.tls.servername ?? undefined,
          rejectUnauthorized: amqp.tls.rejectUnauthorized,
        }
      : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(Buffer.concat(chunks).toString('utf8'));
        else reject(new Error(`HTTP ${res.statusCode}${res.statusCode === 401 ? ' (the user needs the monitoring tag)' : ''}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Reads every node's limits from the first management URL that answers. */
export function readBrokerNodes(amqp: AmqpConfig, timeoutMs = 3000): Promise<BrokerNodesResult> {
  return fromFirstAnswering(amqp, async (url) => parseNodes(await get(url, 'api/nodes?columns=name,fd_total,fd_used', amqp, timeoutMs)));
}

/**
 * `read` against each management URL in turn, until one answers: its result and the URL, or
 * why none did (per URL tried, credentials never shown).
 */
async function fromFirstAnswering<T>(amqp: AmqpConfig, read: (url: string) => Promise<T>): Promise<{ readonly nodes: T; readonly from: string } | { readonly unavailable: string }> {
  const reasons: string[] = [];
  for (const url of managementUrls(amqp)) {
    try {
      return { nodes: await read(url), from: describeUrl(url) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reasons.push(`${describeUrl(url)}: ${e.code ?? e.message}`);
    }
  }
  return { unavailable: reasons.join('; ') };
}

/** Either the memory of every node that reported it, or why it could not be read. */
export type NodesMemoryResult = { readonly nodes: readonly NodeMemory[]; readonly from: string } | { readonly unavailable: string };

/**
 * Reads the memory breakdown of each of `nodes` from the first management URL that answers
 * (one request per node: RabbitMQ computes a breakdown on demand, so this is for a check
 * every few minutes, not a sampler). A node without figures is left out.
 */
export function readNodesMemory(amqp: AmqpConfig, nodes: readonly string[], timeoutMs = 3000): Promise<NodesMemoryResult> {
  return fromFirstAnswering(amqp, async (url) => {
    const out: NodeMemory[] = [];
    for (const name of nodes) {
      const memory = parseNodeMemory(name, await get(url, `api/nodes/${encodeURIComponent(name)}/memory`, amqp, timeoutMs));
      if (memory) out.push(memory);
    }
    return out;
  });
}
