// Where the commands of `carrel` (serve, db migrate, db seed) send their log, and in what form:
// JSON lines for log pipelines and service managers, short readable lines for a person watching
// a terminal (docs/operations.md, "Logs"). `log.format` "auto" decides by whether stdout is a
// terminal, so `npm start` in a terminal reads well while a journal, a container's log or a pipe
// still gets one JSON object per line.
import type { pino } from 'pino';
import pretty from 'pino-pretty';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../obs/log.js';
import type { SlaReport } from '../obs/sla.js';

export type LogFormat = Config['log']['format'];

/** The form the log takes: `auto` is pretty on a terminal and JSON anywhere else. */
export function resolveLogFormat(format: LogFormat, stdoutIsTTY: boolean): 'json' | 'pretty' {
  if (format === 'auto') return stdoutIsTTY ? 'pretty' : 'json';
  return format;
}

/** The logger of a `carrel` command, on stdout. */
export function commandLogger(config: Readonly<Config>, stdout: NodeJS.WriteStream = process.stdout): Logger {
  if (resolveLogFormat(config.log.format, stdout.isTTY === true) === 'json') return createLogger(config.log.level);
  return createLogger(config.log.level, prettyStream({ colorize: stdout.isTTY === true && stdout.hasColors?.() !== false }));
}

/** pino-pretty set up for short lines: "[12:00:01] INFO: carrel is up  db=embedded  …". */
export function prettyStream(opts: { colorize: boolean; destination?: NodeJS.WritableStream }): pino.DestinationStream {
  return pretty({
    // Synchronous like pino's own stdout: the lines written just before process.exit are kept.
    destination: opts.destination ?? 1,
    sync: true,
    colorize: opts.colorize,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname',
    // The fields are written by messageFormat, on the message's line.
    hideObject: true,
    messageFormat: (log: Record<string, unknown>) => prettyMessage(log),
  });
}

/** Fields every line has, or that the prefix shows already. */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg']);
/** A field's value past this many characters is cut: the JSON form has it whole. */
const MAX_VALUE_CHARS = 100;

/**
 * The text after "[12:00:01] INFO:": the message, then the fields as key=value on the same line,
 * the SLA report as one sentence, an error as its message (and its stack at level error and
 * above, where someone will want it).
 */
export function prettyMessage(log: Record<string, unknown>): string {
  const msg = typeof log.msg === 'string' ? log.msg : '';
  if (isSlaReport(log.sla)) return `${msg}: ${slaSummary(log.sla)}`;
  const parts = [msg];
  let stack = '';
  for (const [key, value] of Object.entries(log)) {
    if (HIDDEN.has(key) || value === undefined) continue;
    if (key === 'err' && value !== null && typeof value === 'object') {
      const err = value as { type?: string; message?: string; stack?: string };
      parts.push(`err=${fieldValue(err.message ?? err.type ?? '')}`);
      if (typeof log.level === 'string' && ['error', 'fatal'].includes(log.level) && typeof err.stack === 'string') {
        stack = `\n${err.stack.split('\n').slice(1).join('\n')}`;
      }
      continue;
    }
    parts.push(`${key}=${fieldValue(value)}`);
  }
  return parts.filter((p) => p !== '').join('  ') + stack;
}

function fieldValue(value: unknown): string {
  const text = typeof value === 'string' ? (/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)) : (JSON.stringify(value) ?? String(value));
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

function isSlaReport(v: unknown): v is SlaReport {
  return v !== null && typeof v === 'object' && typeof (v as SlaReport).requests === 'number' && typeof (v as SlaReport).windowMs === 'number';
}

const percent = (share: number): string => `${Number((share * 100).toFixed(3))} %`;

/**
 * The SLA report in one sentence: "1200 requests in 60 s, availability 99.9 % (target 99.9 %),
 * every p95 within its target", or the misses with their figures.
 */
export function slaSummary(r: SlaReport): string {
  const window = r.windowMs < 1000 ? `${r.windowMs} ms` : `${Math.round(r.windowMs / 1000)} s`;
  if (r.requests === 0) return `no requests in ${window}`;
  const parts = [`${r.requests} requests in ${window}`];
  if (r.availability !== null) parts.push(`availability ${percent(r.availability)} (target ${percent(r.availabilityTarget)})`);
  const slow = Object.entries(r.methods).filter(([, m]) => !m.met);
  if (slow.length === 0) parts.push('every p95 within its target');
  else parts.push(...slow.map(([name, m]) => `${name} p95 ${m.p95Ms} ms (target ${m.targetP95Ms} ms)`));
  return parts.join(', ');
}
