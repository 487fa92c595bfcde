/**
 * Which RabbitMQ the tests talk to, and the one way they run its CLI tools.
 *
 * The broker under test (the "shared" broker of the integration tests) is
 *   ORBIT_TEST_AMQP_URL        its AMQP URL            [amqp://guest:guest@127.0.0.1:5672]
 *   ORBIT_TEST_RABBITMQ_NODE   its Erlang node name, for every rabbitmqctl call the tests make
 *                              (`rabbitmqctl -n <node>`)  [unset: rabbitmqctl's default node,
 *                              which on this machine is the shared rabbit@localhost]
 *   ORBIT_TEST_RABBITMQ4_ROOT  set when that node runs in a RabbitMQ 4 root (scripts/rabbitmq4-root.sh):
 *                              the root's path; rabbitmqctl then runs as
 *                              `chroot <root> /usr/sbin/rabbitmqctl -n <node>` (the root's CLI and
 *                              cookie). A bare `1` means the default root (rabbitmq4Root()).
 * e.g. for a node started with `scripts/rabbitmq4-node.sh start orbit4dev 5682`:
 *   ORBIT_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5682 ORBIT_TEST_RABBITMQ_NODE=orbit4dev@localhost \
 *   ORBIT_TEST_RABBITMQ4_ROOT=/var/cache/orbit/rabbitmq4-root npx jest test/integration
 *
 * Private nodes (PrivateBroker, ScriptCluster) are 3.10 nodes from the machine's own
 * /usr/sbin/rabbitmq-server unless asked for 4.0 (`new PrivateBroker({ rabbitmq: 4 })`) or
 *   ORBIT_TEST_RABBITMQ=4      every private node (and the fault suite's cluster) is a 4.0 node
 *                              from the root  [3: the machine's RabbitMQ]
 *   ORBIT_RABBITMQ4_ROOT       where the 4.0 root is (the same variable scripts/rabbitmq4-*.sh read)
 *                              [/var/cache/orbit/rabbitmq4-root]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ctlCommand, ctlEnv, type CtlTarget } from '../../bench/lib/ctl-command';

export { ctlCommand, ctlEnv, type CtlTarget };

const run = promisify(execFile);

export const DEFAULT_RABBITMQ4_ROOT = '/var/cache/orbit/rabbitmq4-root';
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** The machine's shared node. */
export const SHARED_NODE = 'rabbit@localhost';

/** The broker under test (ORBIT_TEST_AMQP_URL). */
export const AMQP_URL = process.env.ORBIT_TEST_AMQP_URL || DEFAULT_AMQP_URL;

/** The path of the RabbitMQ 4 root when it is built and ready, else undefined. */
export function rabbitmq4Root(): string | undefined {
  const root = process.env.ORBIT_RABBITMQ4_ROOT || DEFAULT_RABBITMQ4_ROOT;
  return existsSync(join(root, '.orbit-ready')) && existsSync(join(root, 'usr', 'sbin', 'rabbitmq-server')) ? root : undefined;
}

/** Why the root is missing and how to make it (for skip and error messages). */
export function rabbitmq4Missing(): string {
  const root = process.env.ORBIT_RABBITMQ4_ROOT || DEFAULT_RABBITMQ4_ROOT;
  return `no RabbitMQ 4 root at ${root} (no .orbit-ready): build it with \`sudo ORBIT_INSTALL_PREREQUISITES=1 bash scripts/rabbitmq4-root.sh\` (about 45 s, once per machine)`;
}

/** The root's path; throws the "how to build it" message when it is missing. */
export function requireRabbitmq4Root(): string {
  const root = rabbitmq4Root();
  if (root === undefined) throw new Error(rabbitmq4Missing());
  return root;
}

/** The RabbitMQ major version private nodes get by default: ORBIT_TEST_RABBITMQ (3 or 4). */
export function defaultPrivateRabbitmq(): 3 | 4 {
  const v = (process.env.ORBIT_TEST_RABBITMQ ?? '').trim();
  if (v === '' || v === '3' || v === '3.10') return 3;
  if (v === '4' || v.startsWith('4.')) return 4;
  throw new Error(`ORBIT_TEST_RABBITMQ must be 3 or 4 (got "${v}")`);
}

/**
 * `describe` for tests that need RabbitMQ 4. Without the root: skipped with a message
 * saying how to build it — except under CI (process.env.CI set), where a missing root
 * fails the suite: CI must never skip silently.
 */
export function describeRabbitmq4(name: string, fn: () => void): void {
  if (rabbitmq4Root() !== undefined) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      test('the RabbitMQ 4 root is available (required under CI)', () => {
        throw new Error(`${rabbitmq4Missing()}; .ci/run builds it before the tests`);
      });
    });
  } else {
    process.stderr.write(`skipping "${name}": ${rabbitmq4Missing()}\n`);
    describe.skip(name, fn);
  }
}

export interface CtlOptions {
  /** @defaultValue 90 s */
  readonly timeoutMs?: number;
  /** @defaultValue 64 MiB */
  readonly maxBuffer?: number;
}

/**
 * The broker under test as a CtlTarget, from ORBIT_TEST_RABBITMQ_NODE and
 * ORBIT_TEST_RABBITMQ4_ROOT. Refuses (throws) when ORBIT_TEST_AMQP_URL names a broker other
 * than the shared one but no node is given: rabbitmqctl would then list, close or change
 * things on the shared node instead of on the broker the test uses.
 */
export function brokerUnderTest(): CtlTarget {
  const node = process.env.ORBIT_TEST_RABBITMQ_NODE?.trim() || undefined;
  const rootVar = process.env.ORBIT_TEST_RABBITMQ4_ROOT?.trim() || undefined;
  const root = rootVar === undefined ? undefined : rootVar === '1' || rootVar === 'true' ? requireRabbitmq4Root() : rootVar;
  if (node === undefined) {
    if (root !== undefined) throw new Error('ORBIT_TEST_RABBITMQ4_ROOT is set but ORBIT_TEST_RABBITMQ_NODE is not: name the node under test');
    if (!isSharedBrokerUrl(AMQP_URL)) {
      throw new Error(
        `ORBIT_TEST_AMQP_URL (${redact(AMQP_URL)}) is not the shared broker, but ORBIT_TEST_RABBITMQ_NODE is not set: ` +
          'rabbitmqctl would address the shared node. Set ORBIT_TEST_RABBITMQ_NODE (and ORBIT_TEST_RABBITMQ4_ROOT for a node in the 4.0 root).',
      );
    }
  }
  if (root !== undefined && !existsSync(join(root, 'usr', 'sbin', 'rabbitmqctl'))) {
    throw new Error(`ORBIT_TEST_RABBITMQ4_ROOT=${root}: no usr/sbin/rabbitmqctl there`);
  }
  return { node, root };
}

function isSharedBrokerUrl(url: string): boolean {
  try {
    const first = new URL(url.split(',')[0]!.trim());
    const port = first.port === '' ? (first.protocol === 'amqps:' ? '5671' : '5672') : first.port;
    return ['127.0.0.1', 'localhost', '[::1]'].includes(first.hostname) && port === '5672';
  } catch {
    return false;
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}

/** Runs a RabbitMQ CLI tool against `target`; resolves with stdout. */
export async function ctlAt(target: CtlTarget, args: readonly string[], options: CtlOptions & { tool?: string } = {}): Promise<string> {
  const [command, argv] = ctlCommand(target, args, options.tool);
  const { stdout } = await run(command, argv, {
    env: ctlEnv(),
    timeout: options.timeoutMs ?? 90_000,
    maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024,
  });
  return stdout;
}

/**
 * `rabbitmqctl …args` against the broker under test (ORBIT_TEST_AMQP_URL's node, see above);
 * resolves with stdout. Every rabbitmqctl call of the integration tests goes through here.
 */
export function rabbitmqctl(...args: string[]): Promise<string> {
  return ctlAt(brokerUnderTest(), args);
}

/** A node for the watchdog: its pid file (host path) and the name its beam runs as. */
export interface WatchedNode {
  readonly pidFile: string;
  readonly nodename: string;
}

const WATCHDOG = `
owner=$1; dir=$2; shift 2
while kill -0 "$owner" 2>/dev/null; do sleep 2; done
while [ $# -ge 2 ]; do
  f=$1; n=$2; shift 2
  pid=$(tr -d '[:space:]' <"$f" 2>/dev/null) || continue
  case $pid in ''|*[!0-9]*) continue ;; esac
  if tr '\\0' '\\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$n"; then kill -9 "$pid"; fi
done
sleep 1
if [ -n "$dir" ]; then rm -rf "$dir"; fi
`;

/**
 * Starts a small detached watchdog that SIGKILLs `nodes` (each only if its pid really is
 * that node) and removes `dir` once this test process is gone without having stopped them —
 * a jest worker that is killed, or whose afterAll hung, never runs `process.on('exit')`
 * handlers (and in jest's sandbox those are not the real process's anyway). Call `kill()`
 * on the result when the nodes are stopped properly.
 */
export function watchNodes(nodes: readonly WatchedNode[], dir: string): ChildProcess {
  const args = nodes.flatMap((n) => [n.pidFile, n.nodename]);
  const child = spawn('sh', ['-c', WATCHDOG, 'orbit-node-watchdog', String(process.pid), dir, ...args], {
    detached: true,
    stdio: 'ignore',
  });
  child.on('error', () => undefined);
  child.unref();
  return child;
}
