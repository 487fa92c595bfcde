/**
 * The monitoring files in docker/ against real tools: promtool checks the Prometheus config
 * and alert rules and runs their unit tests; then a real Prometheus (Debian's package, on
 * its own port and data directory) scrapes a running daemon after a known workload, and
 * every PromQL expression of the Grafana dashboard and of the alert rules is evaluated
 * through its HTTP API: none may fail, and the core panels must show data.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, Scheduler, UnrecoverableError, type Handler } from '../../src';
import { deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';
import {
  DOCKER_DIR,
  PrometheusServer,
  dashboardQueries,
  interpolate,
  localPrometheusConfig,
  promtool,
  requirePrometheus,
  type QueryResponse,
} from '../helpers/prometheus';
import { freePort } from '../helpers/private-broker';
import { waitFor } from '../helpers/wait';

const PROMETHEUS_DIR = join(DOCKER_DIR, 'prometheus');
const DASHBOARD_FILE = join(DOCKER_DIR, 'grafana', 'dashboards', 'orbit.json');
const DATASOURCE_FILE = join(DOCKER_DIR, 'grafana', 'provisioning', 'datasources', 'prometheus.yml');

const ALERTS = ['OrbitDown', 'OrbitNotReady', 'OrbitDeadLettersGrowing', 'OrbitLatenessHigh', 'OrbitRunsPastBound', 'OrbitBrokerBlocked', 'OrbitUnroutable', 'OrbitQueueNeedsMigration', 'OrbitStrandedMessages', 'OrbitBrokerFileHandlesLow', 'OrbitPublishStalledQueue', 'OrbitConsumerRestarts'];

/** Panels that must show data once the workload ran (the others may be legitimately empty). */
const CORE_PANELS = [
  'Throughput by outcome',
  'Throughput by lane',
  'In-flight vs concurrency',
  'Lane utilisation',
  'Lane queue depth',
  'Delay level depth',
  'Dead and unroutable',
  'Handler duration p50 / p90 / p99',
  'Lateness p50 / p90 / p99',
  'Connection state',
  'Memory',
  'CPU',
  'Ready instances',
];

const ALL = { lane: '.*', instance: '.*' };

type Json = any;
const dashboard: Json = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));

/** Every tmp dir this file made, removed at the end. */
const tmpDirs: string[] = [];
function tmp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

/** A copy of docker/prometheus with prometheus.yml scraping local targets. */
function localPrometheusDir(orbit: string, rabbitmq: string): string {
  const dir = tmp('orbit-prom-');
  const text = readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8');
  writeFileSync(join(dir, 'prometheus.yml'), localPrometheusConfig(text, { orbit, rabbitmq }));
  for (const file of ['alerts.yml', 'alerts.test.yml']) copyFileSync(join(PROMETHEUS_DIR, file), join(dir, file));
  return dir;
}

describe('promtool', () => {
  beforeAll(() => requirePrometheus());

  test('check config passes on the shipped prometheus.yml and on the local rewrite', async () => {
    const shipped = await promtool(['check', 'config', 'prometheus.yml'], PROMETHEUS_DIR);
    expect(shipped).toMatchObject({ code: 0 });
    const local = await promtool(['check', 'config', 'prometheus.yml'], localPrometheusDir('127.0.0.1:9464', '127.0.0.1:15692'));
    expect(local).toMatchObject({ code: 0 });
  });

  test('check rules passes and finds every alert', async () => {
    const result = await promtool(['check', 'rules', 'alerts.yml'], PROMETHEUS_DIR);
    expect(result).toMatchObject({ code: 0 });
    expect(result.output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    const text = readFileSync(join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8');
    for (const alert of ALERTS) expect(text).toContain(`- alert: ${alert}\n`);
  });

  test('the rule unit tests pass, and cover every alert firing and silent', async () => {
    const result = await promtool(['test', 'rules', 'alerts.test.yml'], PROMETHEUS_DIR);
    expect(result).toMatchObject({ code: 0 });
    expect(result.output).toContain('SUCCESS');
    // Each alert has a case where it fires (exp_labels) and one where it must not (exp_alerts: []).
    const tests = readFileSync(join(PROMETHEUS_DIR, 'alerts.test.yml'), 'utf8');
    for (const alert of ALERTS) {
      const cases = tests.split(/\n\s*- eval_time:/).filter((c) => c.includes(`alertname: ${alert}\n`));
      expect({ alert, firing: cases.some((c) => c.includes('exp_labels:')) }).toEqual({ alert, firing: true });
      expect({ alert, silent: cases.some((c) => c.includes('exp_alerts: []')) }).toEqual({ alert, silent: true });
    }
  });
});

describe('the Grafana dashboard file', () => {
  test('uses the provisioned datasource by uid, has unique panel ids and the lane variable', () => {
    const uid = readFileSync(DATASOURCE_FILE, 'utf8').match(/^\s*uid:\s*(\S+)\s*$/m)?.[1];
    expect(uid).toBeTruthy();
    const panels: Json[] = dashboard.panels.flatMap((p: Json) => [p, ...(p.panels ?? [])]);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect({ panel: panel.title, uid: panel.datasource?.uid }).toEqual({ panel: panel.title, uid });
      for (const t of panel.targets) expect({ panel: panel.title, uid: t.datasource?.uid }).toEqual({ panel: panel.title, uid });
      expect(panel.gridPos).toEqual(expect.objectContaining({ w: expect.any(Number), h: expect.any(Number) }));
    }
    const lane = dashboard.templating.list.find((v: Json) => v.name === 'lane');
    expect(lane).toMatchObject({ type: 'query', datasource: { uid }, includeAll: true, allValue: '.*' });
    for (const title of CORE_PANELS) expect(panels.map((p) => p.title)).toContain(title);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
  });
});

describe('a real Prometheus scraping a running daemon', () => {
  const ns = randomNamespace('prom');
  let daemon: Daemon | undefined;
  let scheduler: Scheduler | undefined;
  let prometheus: PrometheusServer | undefined;
  /** Counter series Prometheus saw before any message ran. */
  let beforeWorkload: Array<{ metric: Record<string, string> }> = [];

  /** Body `{ k }`: done, again (rescheduled once, 200 s out: it waits in the delay levels for the whole test), dead. */
  const handler: Handler = (message) => {
    const { k } = message.json<{ k: string }>();
    if (k === 'dead') throw new UnrecoverableError('test: dead on purpose');
    if (k === 'again' && message.runs === 0) return { reschedule: { delay: '200s' } };
    return undefined;
  };

  const query = async (expr: string): Promise<QueryResponse> => prometheus!.query(expr);
  const series = async (expr: string) => {
    const r = await query(expr);
    if (r.status !== 'success') throw new Error(`${expr}: ${r.errorType}: ${r.error}`);
    return r.data!.result;
  };
  const scalar = async (expr: string): Promise<number> => Number((await series(expr))[0]?.value?.[1] ?? NaN);

  beforeAll(async () => {
    requirePrometheus();
    const [httpPort, promPort, deadPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const config = testConfig(ns, {
      lanes: [
        { name: 'fast', concurrency: 4 },
        { name: 'slow', concurrency: 2 },
      ],
      http: { host: '127.0.0.1', port: httpPort },
    });
    daemon = new Daemon({ config, handlers: { fast: handler, slow: handler }, queueSampleIntervalMs: 250 });
    await daemon.start();
    scheduler = new Scheduler({ config });
    await scheduler.connect();

    // The broker's prometheus plugin may not be enabled here: point that job at a closed
    // port, so it is down (as it would be) and must not trip any orbit alert.
    const dir = localPrometheusDir(`127.0.0.1:${daemon.httpPort ?? httpPort}`, `127.0.0.1:${deadPort}`);
    prometheus = await PrometheusServer.start(dir, promPort);
    // A first scrape before the workload, so counters and the dead queue are seen growing.
    await waitFor(async () => (await scalar('up{job="orbit"}')) === 1, 15_000, 'first scrape of the daemon');
    beforeWorkload = await series('{__name__=~"orbit_messages_total|orbit_published_total|orbit_amqp_reconnects_total"}');

    // The workload: 20 done, 5 rescheduled (into the delay levels), 3 dead, in two waves
    // scraped apart, so that every outcome's counter is seen increasing (rate() > 0) even
    // where it only appears with its first increment.
    const wave = async (done: number, again: number, dead: number): Promise<void> => {
      const publishes: Array<Promise<unknown>> = [];
      for (let i = 0; i < done; i++) publishes.push(scheduler!.publish(i % 2 ? 'fast' : 'slow', { k: 'done' }));
      for (let i = 0; i < again; i++) publishes.push(scheduler!.publish('fast', { k: 'again' }));
      for (let i = 0; i < dead; i++) publishes.push(scheduler!.publish('slow', { k: 'dead' }));
      await Promise.all(publishes);
    };
    await wave(2, 1, 1);
    await waitFor(async () => (await scalar('sum(orbit_messages_total)')) === 4, 20_000, 'first wave scraped');
    await wave(18, 4, 2);

    // Scraped after the workload settled, with enough samples for rate() over 1m, and the
    // dead queue depth sampled.
    await waitFor(async () => (await scalar('sum(orbit_messages_total)')) === 28, 20_000, 'all 28 outcomes scraped');
    await waitFor(async () => (await scalar('sum(orbit_queue_messages{role="dead"})')) === 3, 10_000, 'dead queue depth 3');
    await waitFor(async () => (await scalar('sum(orbit_queue_messages{role="delay"})')) === 5, 10_000, '5 messages delayed');
    await waitFor(async () => (await series('sum(rate(orbit_messages_total[1m])) > 0')).length === 1, 10_000, 'a rate');
    // Every rule evaluated at least once after that.
    const since = Date.now();
    await waitFor(
      async () => (await prometheus!.rules()).every((r) => Date.parse(r.lastEvaluation) > since),
      10_000,
      'rules evaluated',
    );
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await scheduler?.close().catch(() => undefined);
    await daemon?.stop().catch(() => undefined);
    await deleteNamespace(ns);
  });

  test('every dashboard expression evaluates without error', async () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    const failures: string[] = [];
    for (const q of queries) {
      const r = await query(interpolate(q.expr, ALL));
      if (r.status !== 'success') failures.push(`${q.panel} ${q.refId}: ${r.errorType}: ${r.error}`);
    }
    expect(failures).toEqual([]);
  });

  test('the core panels show data', async () => {
    const empty: string[] = [];
    for (const q of dashboardQueries(dashboard).filter((d) => CORE_PANELS.includes(d.panel))) {
      if ((await series(interpolate(q.expr, ALL))).length === 0) empty.push(`${q.panel} ${q.refId}: ${q.expr}`);
    }
    expect(empty).toEqual([]);
  });

  test('the panels show the workload: outcomes, lanes, queues', async () => {
    const expr = (title: string, refId = 'A'): string =>
      dashboardQueries(dashboard).find((q) => q.panel === title && q.refId === refId)!.expr;

    const outcomes = (await series(interpolate(expr('Throughput by outcome'), ALL)))
      .filter((s) => Number(s.value![1]) > 0)
      .map((s) => s.metric['outcome']);
    expect(outcomes.sort()).toEqual(['dead', 'done', 'rescheduled']);

    const laneQueues = (await series(interpolate(expr('Lane queue depth'), ALL))).map((s) => s.metric['queue']);
    expect(laneQueues.sort()).toEqual([`${ns}.lane.fast`, `${ns}.lane.slow`]);

    const delayed = await series(interpolate(expr('Delay level depth'), ALL));
    expect(delayed.every((s) => /\.(delay\.\d+|wait(-high)?:\w+)$/.test(s.metric['queue']!))).toBe(true);
    expect(delayed.reduce((n, s) => n + Number(s.value![1]), 0)).toBe(5);

    const deadAndUnroutable = await series(interpolate(expr('Dead and unroutable'), ALL));
    expect(Object.fromEntries(deadAndUnroutable.map((s) => [s.metric['queue'], Number(s.value![1])]))).toEqual({
      [`${ns}.dead`]: 3,
      [`${ns}.unroutable`]: 0,
    });

    const concurrency = await series(interpolate(expr('In-flight vs concurrency', 'B'), ALL));
    expect(Object.fromEntries(concurrency.map((s) => [s.metric['lane'], Number(s.value![1])]))).toEqual({ fast: 4, slow: 2 });
  });

  test('the lane variable lists the lanes and narrows the panels', async () => {
    const variable = dashboard.templating.list.find((v: Json) => v.name === 'lane');
    const definition: string = variable.definition;
    const [, metric, label] = definition.match(/^label_values\((\w+),\s*(\w+)\)$/)!;
    const lanes = (await series(metric!)).map((s) => s.metric[label!]);
    expect(lanes.sort()).toEqual(['fast', 'slow']);

    // Grafana sends one selected value as is, several as (a|b).
    const only = { ...ALL, lane: 'fast' };
    for (const q of dashboardQueries(dashboard).filter((d) => /\$\{?lane\b/.test(d.expr))) {
      const result = await series(interpolate(q.expr, only));
      for (const s of result) {
        if (s.metric['lane'] !== undefined) expect({ q: q.expr, lane: s.metric['lane'] }).toEqual({ q: q.expr, lane: 'fast' });
        if (s.metric['queue'] !== undefined) expect({ q: q.expr, queue: s.metric['queue'] }).toEqual({ q: q.expr, queue: `${ns}.lane.fast` });
      }
    }
    const both = await series(interpolate(dashboardQueries(dashboard).find((q) => q.panel === 'Lane queue depth')!.expr, { ...ALL, lane: '(fast|slow)' }));
    expect(both).toHaveLength(2);
  });

  test('counters exist at 0 from the start, so rate() and increase() see the first messages', () => {
    // A labelled prom-client counter appears only with its first inc(): without being set to
    // 0 at start-up, a burst settled between two scrapes shows no rate at all, and the first
    // dead letters never make increase() > 0. Every lane × outcome, kind and connection is
    // expected before the first message.
    const seen = beforeWorkload.map((s) => JSON.stringify([s.metric['__name__'], s.metric['lane'] ?? s.metric['kind'] ?? s.metric['connection'], s.metric['outcome']]));
    const expected = [
      ...['fast', 'slow'].flatMap((lane) => ['done', 'rescheduled', 'retried', 'dead'].map((o) => ['orbit_messages_total', lane, o])),
      ...['publish', 'reschedule', 'retry', 'dead', 'waypoint', 'forward'].map((kind) => ['orbit_published_total', kind, undefined]),
      ...['consume', 'publish'].map((connection) => ['orbit_amqp_reconnects_total', connection, undefined]),
    ].map((e) => JSON.stringify(e));
    expect(seen.sort()).toEqual(expected.sort());
  });

  test('every alert rule loads, evaluates healthily and its expression runs', async () => {
    const rules = await prometheus!.rules();
    expect(rules.map((r) => r.name).sort()).toEqual([...ALERTS].sort());
    for (const rule of rules) {
      expect({ rule: rule.name, health: rule.health, lastError: rule.lastError ?? '' }).toEqual({ rule: rule.name, health: 'ok', lastError: '' });
      const r = await query(rule.query);
      expect({ rule: rule.name, status: r.status, error: r.error }).toEqual({ rule: rule.name, status: 'success', error: undefined });
    }
  });

  test('on this healthy daemon only the dead-letter alert is active', async () => {
    const states = Object.fromEntries((await prometheus!.rules()).map((r) => [r.name, r.state]));
    expect(states).toEqual({
      OrbitDown: 'inactive',
      OrbitNotReady: 'inactive',
      // The broker's job points at a closed port here: no series, nothing to fire on.
      OrbitBrokerFileHandlesLow: 'inactive',
      // 3 dead letters just now: pending, firing after its `for: 5m`.
      OrbitDeadLettersGrowing: 'pending',
      OrbitLatenessHigh: 'inactive',
      OrbitRunsPastBound: 'inactive',
      OrbitBrokerBlocked: 'inactive',
      OrbitUnroutable: 'inactive',
      OrbitQueueNeedsMigration: 'inactive',
      OrbitStrandedMessages: 'inactive',
      OrbitPublishStalledQueue: 'inactive',
      OrbitConsumerRestarts: 'inactive',
    });
    // The closed rabbitmq target is down, and is no orbit outage.
    const targets = await prometheus!.targets();
    expect(targets.find((t) => t.job === 'orbit')).toMatchObject({ health: 'up' });
    expect(targets.find((t) => t.job === 'rabbitmq')).toMatchObject({ health: 'down' });
  });
});
