// docs/protocol.md is what a client is written from, so every name a peer can meet on the wire
// must be in it as a code span: each registered RPC method, each frame type of the sensor and
// subscriber ports, each seat-event cause, personal-event kind, live state and flag, each
// reservation and waitlist status, and each error code. A name added to the code without a line
// in the doc fails here; so does a method the doc describes that the server no longer registers.
// docs/operations.md is held to the same for what an operator configures and scrapes: every
// config key (its full dotted path) and every metric family the server registers.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { personalFrame, type PersonalEvent } from '../../src/core/events.js';
import { FLAG_SENSOR_OFFLINE, FLAG_UNBOOKED_OCCUPANCY, flagsToWire } from '../../src/core/liveSeats.js';
import { Rule } from '../../src/core/rules.js';
import { SLOW_CONSUMER } from '../../src/wire/errors.js';
import { ReadingCode, type ChangeCause, type LiveState, type ReservationStatus, type WaitlistStatus } from '../../src/wire/types.js';
import { ErrorCode } from '../../src/errors.js';
import { projectRoot } from '../../src/paths.js';
import { unstartedServer } from '../support/server.js';

// Union types have no runtime form; these records must name every member (and nothing else), so
// a cause, kind, state or status added to the code fails the typecheck here until it is listed.
const CAUSES = {
  sensor: true,
  'reservation.created': true,
  'reservation.cancelled': true,
  checkIn: true,
  checkOut: true,
  noShow: true,
  completed: true,
  offer: true,
  away: true,
  back: true,
  admin: true,
} satisfies Record<ChangeCause, true>;
const PERSONAL_KINDS = { offer: true, offerExpired: true, noShow: true, released: true, away: true, awayEnding: true } satisfies Record<PersonalEvent['kind'], true>;
const LIVE_STATES = { free: true, reserved: true, occupied: true, away: true, unavailable: true } satisfies Record<LiveState, true>;
const RESERVATION_STATUSES = {
  CONFIRMED: true,
  CHECKED_IN: true,
  COMPLETED: true,
  CANCELLED: true,
  NO_SHOW: true,
  OFFERED: true,
} satisfies Record<ReservationStatus, true>;
const WAITLIST_STATUSES = { WAITING: true, OFFERED: true, CLAIMED: true, LEFT: true, EXPIRED: true } satisfies Record<WaitlistStatus, true>;

/** The modules that write and read the sensor and subscriber ports' frames, and the wire module that types them. */
const PORT_SOURCES = ['src/pubsub', 'src/sensors', 'src/wire'];

function sourcesOf(dirs: string[]): string {
  return dirs
    .flatMap((dir) => readdirSync(join(projectRoot, dir)).filter((f) => f.endsWith('.ts')).map((f) => join(projectRoot, dir, f)))
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
}

function matchesOf(text: string, patterns: RegExp[]): Set<string> {
  const out = new Set<string>();
  for (const re of patterns) for (const m of text.matchAll(re)) out.add(m[1]!);
  return out;
}

/**
 * The `type` of every frame the port modules send or accept. Frames are object literals handed
 * to encodeFrame and messages are told apart by `m.type`, so the literals are the vocabulary;
 * the personal frame is built in core (events.ts) and asked for its type.
 */
function frameTypes(): Set<string> {
  const types = matchesOf(sourcesOf(PORT_SOURCES), [/\btype: '([A-Za-z][\w.]*)'/g, /\.type [!=]== '([A-Za-z][\w.]*)'/g, /\bcase '([A-Za-z][\w.]*)'/g]);
  const personal = personalFrame({ type: 'personal', userId: 1, kind: 'offer', reservation: {} as never, at: '' });
  types.add(String(personal.type));
  return types;
}

/** ErrorCode, and the codes the port modules send that only exist there (SLOW_CONSUMER). */
function errorCodes(): Set<string> {
  const codes = new Set<string>([...Object.values(ErrorCode), SLOW_CONSUMER]);
  for (const code of matchesOf(sourcesOf(PORT_SOURCES), [/\bcode: '([A-Z][A-Z_]+)'/g])) codes.add(code);
  return codes;
}

/** Inline code spans of a Markdown text, fenced blocks left out. */
function codeSpans(markdown: string): Set<string> {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return matchesOf(prose, [/`([^`\n]+)`/g]);
}

/** The names of the `### \`name\`` headings between `## <title>` and the next `## `. */
function headedNames(markdown: string, title: string): string[] {
  const start = markdown.indexOf(`\n## ${title}\n`);
  if (start < 0) return [];
  const rest = markdown.slice(start + title.length + 5);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^### `([^`]+)`/gm)].map((m) => m[1]!);
}

function missingFrom(spans: Set<string>, names: Iterable<string>): string[] {
  return [...names].filter((n) => !spans.has(n)).sort();
}

/**
 * Every leaf of the parsed default config by dotted path. Arrays are leaves (rule lists, key
 * lists); so is sla.targets.p95Ms, a record keyed by method name rather than a config section.
 */
function configKeys(value: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(value).flatMap(([key, v]) => {
    const path = prefix + key;
    const section = v !== null && typeof v === 'object' && !Array.isArray(v) && path !== 'sla.targets.p95Ms';
    return section ? configKeys(v as Record<string, unknown>, `${path}.`) : [path];
  });
}

const doc = readFileSync(join(projectRoot, 'docs', 'protocol.md'), 'utf8');
const spans = codeSpans(doc);
const opsSpans = codeSpans(readFileSync(join(projectRoot, 'docs', 'operations.md'), 'utf8'));

let server: ReturnType<typeof unstartedServer>;
let pool: pg.Pool;

beforeAll(() => {
  // The methods and metrics the server registers itself (src/server.ts wires every method
  // factory), from parts assembled but never started: nothing listens, no worker starts, and the
  // pool never connects, so no database is needed.
  pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:9/unused', max: 1 });
  server = unstartedServer(parseConfig({}), pool);
});

afterAll(async () => {
  await server.close();
  await pool.end();
});

describe('docs/protocol.md', () => {
  it('describes exactly the RPC methods the server registers, one `### \\`name\\`` heading each', () => {
    const names = server.methodNames();
    expect(names.length).toBeGreaterThan(20);
    expect(missingFrom(spans, names), 'registered methods missing from docs/protocol.md').toEqual([]);
    expect([...headedNames(doc, 'RPC methods')].sort(), 'the method headings of "## RPC methods"').toEqual(names);
  });

  it('names every frame type of the sensor and subscriber ports', () => {
    const types = frameTypes();
    // The scan must see what is known to be there, or it would pass by finding nothing.
    for (const known of ['hello', 'welcome', 'occupancy', 'ack', 'heartbeat', 'subscribe', 'subscribed', 'snapshot', 'seat', 'branch', 'personal', 'ping', 'pong', 'error']) {
      expect(types, `frame type ${known} found in the port sources`).toContain(known);
    }
    expect(missingFrom(spans, types), 'frame types missing from docs/protocol.md').toEqual([]);
  });

  it('names every seat-event cause, personal-event kind, live state and flag', () => {
    expect(missingFrom(spans, Object.keys(CAUSES)), 'causes').toEqual([]);
    expect(missingFrom(spans, Object.keys(PERSONAL_KINDS)), 'personal kinds').toEqual([]);
    expect(missingFrom(spans, Object.keys(LIVE_STATES)), 'live states').toEqual([]);
    const flags = Object.keys(flagsToWire(FLAG_UNBOOKED_OCCUPANCY | FLAG_SENSOR_OFFLINE));
    expect(flags).toHaveLength(2);
    expect(missingFrom(spans, flags), 'flags').toEqual([]);
  });

  it('names every reservation and waitlist status', () => {
    expect(missingFrom(spans, Object.keys(RESERVATION_STATUSES)), 'reservation statuses').toEqual([]);
    expect(missingFrom(spans, Object.keys(WAITLIST_STATUSES)), 'waitlist statuses').toEqual([]);
  });

  it('names every rule of details.rule, the waitlist\'s included, in the table of rule names', () => {
    const table = doc.slice(doc.indexOf('\n## Rule names\n'), doc.indexOf('\n## Error codes\n'));
    const names = Object.values(Rule);
    expect(names).toContain('seatAvailable');
    expect(missingFrom(codeSpans(table), names), 'rules missing from "## Rule names"').toEqual([]);
  });

  it('names every code a sensor reading can be refused with', () => {
    expect(missingFrom(spans, Object.values(ReadingCode)), 'reading codes').toEqual([]);
  });

  it('names every error code, the subscriber port\'s own SLOW_CONSUMER included', () => {
    const codes = errorCodes();
    expect(codes).toContain('SLOW_CONSUMER');
    expect(codes.size).toBeGreaterThan(Object.keys(ErrorCode).length);
    expect(missingFrom(spans, codes), 'error codes missing from docs/protocol.md').toEqual([]);
  });
});

describe('docs/operations.md', () => {
  it('names every config key by its full path', () => {
    const keys = configKeys(parseConfig({}) as unknown as Record<string, unknown>);
    expect(keys).toContain('sensors.helloThrottle.freeFailures');
    expect(missingFrom(opsSpans, keys), 'config keys missing from docs/operations.md').toEqual([]);
  });

  it('names every metric family the server registers', () => {
    const metrics = server.metricNames();
    expect(metrics).toContain('carrel_rpc_requests_total');
    expect(metrics).toContain('carrel_pubsub_dropped_total');
    expect(missingFrom(opsSpans, metrics), 'metrics missing from docs/operations.md').toEqual([]);
  });
});
