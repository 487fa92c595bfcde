/**
 * A real Prometheus for tests: Debian's `prometheus` package (`/usr/bin/prometheus`,
 * `/usr/bin/promtool`; `npm test` installs it when missing, scripts/test-prerequisites.sh). Each server runs on its own
 * port with its own data directory, and is stopped by the test that started it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const PROMETHEUS_BIN = process.env.ORBIT_PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const PROMTOOL_BIN = process.env.ORBIT_PROMTOOL_BIN ?? '/usr/bin/promtool';

/** docker/ in this repository: prometheus/, grafana/, rabbitmq/. */
export const DOCKER_DIR = resolve(__dirname, '../../docker');

/** Fails with the fix when the binaries are missing (a skipped test would hide that). */
export function requirePrometheus(): void {
  const missing = [PROMETHEUS_BIN, PROMTOOL_BIN].filter((bin) => !existsSync(bin));
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(' and ')} not found: apt-get install -y --no-install-recommends prometheus ` +
        '(`ORBIT_INSTALL_PREREQUISITES=1 npm test` does this first, as CI does: scripts/test-prerequisites.sh), or point ORBIT_PROMETHEUS_BIN / ORBIT_PROMTOOL_BIN at the binaries',
    );
  }
}

export interface ToolResult {
  readonly code: number;
  readonly output: string;
}

/** Runs promtool; never throws on a non-zero exit, so the test can show the output. */
export function promtool(args: readonly string[], cwd: string): Promise<ToolResult> {
  return new Promise((done) => {
    execFile(PROMTOOL_BIN, [...args], { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** Replaces `from` by `to` exactly once, or throws: the test must notice when the file changes shape. */
function replaceOnce(text: string, from: string | RegExp, to: string | ((match: string, group: string) => string), what: string): string {
  const matches =
    typeof from === 'string'
      ? text.split(from).length - 1
      : (text.match(new RegExp(from.source, `${from.flags.replace('g', '')}g`)) ?? []).length;
  if (matches !== 1) throw new Error(`prometheus.yml: expected exactly one ${what}, found ${matches}`);
  return typeof to === 'string' ? text.replace(from, () => to) : text.replace(from, to);
}

/**
 * docker/prometheus/prometheus.yml rewritten for a local run: the compose host names become
 * local addresses and every interval becomes `interval`, so a test sees data in seconds.
 * Everything else (jobs, rule_files, paths) stays as shipped.
 */
export function localPrometheusConfig(text: string, targets: { orbit: string; rabbitmq: string }, interval = '1s'): string {
  let out = text;
  out = replaceOnce(out, "'orbit:9464'", `'${targets.orbit}'`, "target 'orbit:9464'");
  out = replaceOnce(out, "'rabbitmq:15692'", `'${targets.rabbitmq}'`, "target 'rabbitmq:15692'");
  out = replaceOnce(out, /^(\s*scrape_interval:\s*)\S+/m, (_m, key) => key + interval, 'global scrape_interval');
  out = replaceOnce(out, /^(\s*scrape_timeout:\s*)\S+/m, (_m, key) => key + interval, 'global scrape_timeout');
  out = replaceOnce(out, /^(\s*evaluation_interval:\s*)\S+/m, (_m, key) => key + interval, 'global evaluation_interval');
  return out;
}

/** What `/api/v1/query` answers. */
export interface QueryResponse {
  readonly status: 'success' | 'error';
  readonly errorType?: string;
  readonly error?: string;
  readonly data?: { resultType: string; result: Array<{ metric: Record<string, string>; value?: [number, string] }> };
}

export interface RuleState {
  readonly name: string;
  readonly query: string;
  readonly health: string;
  readonly lastError?: string;
  readonly state?: string;
  readonly lastEvaluation: string;
  readonly type: string;
}

/** A prometheus process on 127.0.0.1:`port`, reading `<dir>/prometheus.yml`, storing in `<dir>/data`. */
export class PrometheusServer {
  private output = '';
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.stdout?.on('data', (b: Buffer) => this.keep(b));
    child.stderr?.on('data', (b: Buffer) => this.keep(b));
    this.exited = new Promise((done) => child.once('exit', () => done()));
  }

  static async start(dir: string, port: number, timeoutMs = 20_000): Promise<PrometheusServer> {
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        '--storage.tsdb.retention.time=1h',
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new PrometheusServer(child, `http://127.0.0.1:${port}`);
    let gone = false;
    void server.exited.then(() => (gone = true));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`prometheus exited during start-up:\n${server.output}`);
      const ok = await fetch(`${server.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return server;
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.stop();
    throw new Error(`prometheus not ready after ${timeoutMs} ms:\n${server.output}`);
  }

  /** Last lines prometheus logged (for failure messages). */
  get log(): string {
    return this.output;
  }

  private keep(chunk: Buffer): void {
    this.output = (this.output + chunk.toString()).slice(-8000);
  }

  /** An instant query at the current time. */
  async query(expr: string): Promise<QueryResponse> {
    const res = await fetch(`${this.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }).toString(),
    });
    return (await res.json()) as QueryResponse;
  }

  /** Every rule Prometheus loaded, with its health and last evaluation. */
  async rules(): Promise<RuleState[]> {
    const res = await fetch(`${this.url}/api/v1/rules`);
    const body = (await res.json()) as { data: { groups: Array<{ rules: RuleState[] }> } };
    return body.data.groups.flatMap((g) => g.rules);
  }

  /** Scrape targets with their health (`up`, `down`, `unknown`). */
  async targets(): Promise<Array<{ job: string; health: string; scrapeUrl: string; lastError: string }>> {
    const res = await fetch(`${this.url}/api/v1/targets`);
    const body = (await res.json()) as {
      data: { activeTargets: Array<{ labels: Record<string, string>; health: string; scrapeUrl: string; lastError: string }> };
    };
    return body.data.activeTargets.map((t) => ({ job: t.labels['job'] ?? '', health: t.health, scrapeUrl: t.scrapeUrl, lastError: t.lastError }));
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s. Idempotent. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 5000))),
    ]);
    clearTimeout(timer);
    if (!killed) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

// ── Grafana dashboards ──────────────────────────────────────────────────────────

export interface DashboardQuery {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

interface PanelJson {
  title?: string;
  type?: string;
  targets?: Array<{ refId?: string; expr?: string }>;
  panels?: PanelJson[];
}

/** Every PromQL expression of a dashboard's panels (rows' nested panels included). */
export function dashboardQueries(dashboard: { panels?: PanelJson[] }): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const walk = (panels: PanelJson[] | undefined): void => {
    for (const panel of panels ?? []) {
      for (const t of panel.targets ?? []) {
        if (typeof t.expr === 'string' && t.expr.trim() !== '') out.push({ panel: panel.title ?? '', refId: t.refId ?? '', expr: t.expr });
      }
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** Grafana's built-in interval variables, as a 15 s scrape interval makes them. */
const BUILTINS: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __interval_ms: '15000',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
};

/**
 * A dashboard expression as Grafana would send it: `$name`, `${name}`, `${name:format}` and
 * `[[name]]` replaced by `values` (template variables) or the built-ins above. Throws on a
 * variable it does not know, so a new variable cannot slip past the test untested.
 * (`$1`-style references, as in label_replace, are left alone.)
 */
export function interpolate(expr: string, values: Readonly<Record<string, string>>): string {
  const all = { ...BUILTINS, ...values };
  const lookup = (name: string): string => {
    const value = all[name];
    if (value === undefined) throw new Error(`unknown variable $${name} in: ${expr}`);
    return value;
  };
  return expr
    .replace(/\$\{([A-Za-z_]\w*)(?::[^}]*)?\}/g, (_m, name: string) => lookup(name))
    .replace(/\[\[([A-Za-z_]\w*)(?::[^\]]*)?\]\]/g, (_m, name: string) => lookup(name))
    .replace(/\$([A-Za-z_]\w*)/g, (_m, name: string) => lookup(name));
}
