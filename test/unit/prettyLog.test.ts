// The log a person reads in a terminal (src/cli/logging.ts): short lines, the SLA report as one
// sentence, JSON wherever stdout is not a terminal.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { prettyMessage, prettyStream, resolveLogFormat, slaSummary } from '../../src/cli/logging.js';
import { FakeClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/obs/log.js';
import { RpcMetrics } from '../../src/obs/rpcMetrics.js';
import { SlaReporter } from '../../src/obs/sla.js';

/** A logger writing pretty lines (no colour) into `lines`. */
function prettyCapture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { lines, log: createLogger('info', prettyStream({ colorize: false, destination })) };
}

/** An SLA report over `methods` methods, as the server logs it every minute. */
function slaReport(methods: number, slowOne: boolean) {
  const clock = new FakeClock(0);
  const metrics = new RpcMetrics(() => true);
  const json: Array<Record<string, unknown>> = [];
  const reporter = new SlaReporter({
    metrics,
    targets: { availability: 0.999, p95Ms: { default: 250 } },
    everyMs: 60_000,
    log: createLogger('info', { write: (s: string) => void json.push(JSON.parse(s)) }),
    now: () => clock.now(),
  });
  for (let m = 0; m < methods; m++) for (let i = 0; i < 20; i++) metrics.observe(`namespace${m}.method`, null, slowOne && m === 0 ? 900 : 3);
  clock.advance(60_000);
  reporter.report();
  return json[0]!;
}

describe('the log in a terminal', () => {
  it('auto is pretty on a terminal and JSON anywhere else; json and pretty are what they say', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });

  it('the SLA line, over 1 KB as JSON, is one short sentence', () => {
    const line = slaReport(12, false);
    expect(JSON.stringify(line).length).toBeGreaterThan(1000);
    const { lines, log } = prettyCapture();
    log.info({ sla: line.sla }, 'sla');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[\d{2}:\d{2}:\d{2}\] INFO: sla: 240 requests in 60 s, availability 100 % \(target 99\.9 %\), every p95 within its target$/);
    expect(lines[0]!.length).toBeLessThan(120);
  });

  it('a missed SLA names the slow methods with their figures, and nothing else', () => {
    const line = slaReport(30, true);
    const text = prettyMessage(line);
    expect(text).toMatch(/^sla missed: p95 namespace0\.method: 600 requests in 60 s, availability 100 % \(target 99\.9 %\), namespace0\.method p95 \d+(\.\d+)? ms \(target 250 ms\)$/);
    expect(text).not.toContain('namespace1.');
    expect(slaSummary({ windowMs: 500, requests: 0, availability: null, availabilityTarget: 0.999, met: true, methods: {}, misses: [] })).toBe('no requests in 500 ms');
  });

  it('fields follow the message on its line; a huge field is cut; an error shows its message, and its stack at level error', () => {
    const { lines, log } = prettyCapture();
    log.info({ ports: { rpc: 9000, http: 9090 }, db: 'embedded', startupMs: 412 }, 'carrel is up');
    log.warn({ note: 'x'.repeat(5_000) }, 'big');
    log.warn({ err: new Error('connection reset') }, 'database connection failed');
    log.error({ err: new Error('boom'), correlationId: 'c-1' }, 'internal error');
    expect(lines[0]).toMatch(/^\[\d{2}:\d{2}:\d{2}\] INFO: carrel is up {2}ports=\{"rpc":9000,"http":9090\} {2}db=embedded {2}startupMs=412$/);
    expect(lines[1]!.length).toBeLessThan(140);
    expect(lines[1]).toMatch(/note=x+…$/);
    expect(lines[2]).toMatch(/WARN: database connection failed {2}err="connection reset"$/);
    expect(lines[3]).toMatch(/ERROR: internal error {2}err=boom {2}correlationId=c-1$/);
    // The stack follows the error line (and only the error line).
    expect(lines[4]).toMatch(/^\s+at /);
    expect(lines.slice(0, 3).join('\n')).not.toMatch(/\bat .*\.ts:\d+/);
    // No line carries the pid or a JSON object of the whole record.
    expect(lines.join('\n')).not.toMatch(/"level"|pid/);
  });
});
