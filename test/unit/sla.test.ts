import { describe, expect, it } from 'vitest';
import { RpcMetrics } from '../../src/obs/rpcMetrics.js';
import { SlaReporter } from '../../src/obs/sla.js';
import { createLogger } from '../../src/obs/log.js';
import { FakeClock } from '../../src/core/clock.js';

function capture() {
  const lines: Array<Record<string, any>> = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { lines, log };
}

describe('SLA line', () => {
  it('logs availability and p95 per method for the window just ended, warning on misses', () => {
    const clock = new FakeClock(0);
    const metrics = new RpcMetrics(() => true);
    const { lines, log } = capture();
    const sla = new SlaReporter({
      metrics,
      targets: { availability: 0.99, p95Ms: { default: 50, 'auth.login': 500 } },
      everyMs: 60_000,
      log,
      now: () => clock.now(),
    });
    for (let i = 0; i < 100; i++) metrics.observe('seats.list', null, 5);
    for (let i = 0; i < 10; i++) metrics.observe('auth.login', null, 300);
    clock.advance(60_000);
    const good = sla.report();
    expect(good).toMatchObject({ windowMs: 60_000, requests: 110, availability: 1, met: true, misses: [] });
    expect(good.methods['auth.login']).toMatchObject({ targetP95Ms: 500, met: true });
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'sla', sla: { met: true } });

    // Next window: 2 of 100 requests UNAVAILABLE, and seats.list slow.
    for (let i = 0; i < 98; i++) metrics.observe('seats.list', null, 120);
    metrics.observe('seats.list', 'UNAVAILABLE', 1);
    metrics.observe('seats.list', 'INVALID_ARGUMENT', 1); // the caller's fault: not counted against us
    metrics.observe('seats.list', 'DEADLINE_EXCEEDED', 5000);
    clock.advance(60_000);
    const bad = sla.report();
    expect(bad.requests).toBe(101);
    expect(bad.availability).toBeCloseTo(0.9802, 4);
    expect(bad.misses).toEqual(['availability', 'p95 seats.list']);
    expect(bad.methods['auth.login']).toBeUndefined();
    expect(lines.at(-1)).toMatchObject({ level: 'warn', msg: 'sla missed: availability, p95 seats.list' });

    clock.advance(60_000);
    expect(sla.report()).toMatchObject({ requests: 0, availability: null, met: true });
  });
});
