import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from '../../src/obs/metrics.js';
import { RpcMetrics, quantile } from '../../src/obs/rpcMetrics.js';

describe('metrics registry', () => {
  it('renders counters, sampled gauges and histograms in Prometheus text format', () => {
    const r = new MetricsRegistry();
    const drops = r.counter('carrel_test_drops_total', 'Dropped events.');
    drops.inc();
    drops.inc(2);
    const byBranch = r.counter('carrel_test_events_total', 'Events by branch.', ['branch']);
    byBranch.labels('Main "Library"\n').inc(5);
    let depth = 7;
    r.gauge('carrel_test_queue_depth', 'Queued events.', () => depth);
    const lag = r.histogram('carrel_test_lag_seconds', 'Bus lag.', [0.1, 1]);
    lag.observe(0.05);
    lag.observe(0.5);
    lag.observe(3);
    depth = 9;
    const text = r.render();
    expect(text).toContain('# HELP carrel_test_drops_total Dropped events.\n# TYPE carrel_test_drops_total counter\ncarrel_test_drops_total 3\n');
    expect(text).toContain('carrel_test_events_total{branch="Main \\"Library\\"\\n"} 5\n');
    expect(text).toContain('# TYPE carrel_test_queue_depth gauge\ncarrel_test_queue_depth 9\n');
    expect(text).toContain('carrel_test_lag_seconds_bucket{le="0.1"} 1\n');
    expect(text).toContain('carrel_test_lag_seconds_bucket{le="1"} 2\n');
    expect(text).toContain('carrel_test_lag_seconds_bucket{le="+Inf"} 3\n');
    expect(text).toContain('carrel_test_lag_seconds_sum 3.55\n');
    expect(text).toContain('carrel_test_lag_seconds_count 3\n');
    // Every non-comment line is `name{labels} value`.
    for (const line of text.trim().split('\n').filter((l) => !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eInfa]+$/);
    }
  });

  it('refuses a second family with the same name and invalid names', () => {
    const r = new MetricsRegistry();
    r.gauge('carrel_x', 'x', () => 1);
    expect(() => r.gauge('carrel_x', 'again', () => 2)).toThrow(/twice/);
    expect(() => r.counter('carrel-bad', 'dash')).toThrow(/invalid metric name/);
    expect(() => r.counter('carrel_ok_total', 'label', ['__reserved'])).toThrow(/invalid label/);
  });

  it('a collector that throws drops only its own family from the scrape', () => {
    const r = new MetricsRegistry();
    r.gauge('carrel_broken', 'broken', () => {
      throw new Error('boom');
    });
    r.gauge('carrel_fine', 'fine', () => 1);
    const failed: string[] = [];
    const text = r.render((name) => failed.push(name));
    expect(failed).toEqual(['carrel_broken']);
    expect(text).not.toContain('carrel_broken');
    expect(text).toContain('carrel_fine 1\n');
  });
});

describe('RPC metrics', () => {
  it('counts outcomes per registered method and lumps unknown names under (other)', () => {
    const m = new RpcMetrics((name) => name === 'PING' || name === 'seats.list');
    m.observe('PING', null, 0.01);
    m.observe('PING', null, 0.02);
    m.observe('seats.list', 'UNAVAILABLE', 3);
    for (let i = 0; i < 1000; i++) m.observe(`evil.${i}`, 'UNKNOWN_METHOD', 0.01);
    m.recordFrameError();
    const methods = m.methods();
    expect(Object.keys(methods)).toEqual(['(other)', 'PING', 'seats.list']);
    expect(methods.PING).toMatchObject({ count: 2, errors: 0, codes: { OK: 2 } });
    expect(methods['seats.list']).toMatchObject({ count: 1, errors: 1, codes: { UNAVAILABLE: 1 } });
    expect(methods['(other)']!.count).toBe(1000);
    expect(m.errors()).toEqual({ BAD_FRAME: 1, UNAVAILABLE: 1, UNKNOWN_METHOD: 1000 });
    const r = new MetricsRegistry();
    m.register(r);
    const text = r.render();
    expect(text).toContain('carrel_rpc_requests_total{method="PING",code="OK"} 2\n');
    expect(text).toContain('carrel_rpc_requests_total{method="(other)",code="UNKNOWN_METHOD"} 1000\n');
    expect(text).toContain('carrel_rpc_request_duration_seconds_count{method="seats.list"} 1\n');
    expect(text).toContain('carrel_rpc_errors_total{code="BAD_FRAME"} 1\n');
    expect(text.split('\n').filter((l) => l.includes('evil'))).toEqual([]);
  });

  it('reports percentiles within the bucket resolution (at most ~9% high, never low)', () => {
    const m = new RpcMetrics(() => true);
    // 1..1000 ms uniformly: p50 = 500, p95 = 950, p99 = 990.
    for (let i = 1; i <= 1000; i++) m.observe('x', null, i);
    const s = m.methods().x!;
    for (const [got, want] of [[s.p50Ms, 500], [s.p95Ms, 950], [s.p99Ms, 990]] as const) {
      expect(got).toBeGreaterThanOrEqual(want);
      expect(got).toBeLessThanOrEqual(want * 1.095);
    }
    expect(s.maxMs).toBe(1000);
    expect(s.meanMs).toBe(500.5);
    expect(quantile([], 0, 0.5)).toBe(0);
  });

  it('reports a window between two marks without the requests before it', () => {
    const m = new RpcMetrics(() => true);
    for (let i = 0; i < 100; i++) m.observe('slow', null, 800);
    const mark = m.mark(1000);
    for (let i = 0; i < 100; i++) m.observe('slow', null, 2);
    m.observe('slow', 'INTERNAL', 2);
    const w = m.window(mark, 61_000);
    expect(w).toMatchObject({ fromMs: 1000, toMs: 61_000, requests: 101, faults: 1 });
    expect(w.methods.slow!.p95Ms).toBeLessThan(3);
  });
});
