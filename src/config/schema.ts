// The one typed config (docs/operations.md, "Configuration"): every port, limit, pool size,
// timeout, rule and queue size. Units are in the names. Each leaf has the shipped default so a
// partial file still works, and unknown keys are refused so a typo fails at start instead of being
// silently ignored.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const ms = z.number().int().min(0);
const positiveInt = z.number().int().min(1);
const frameBytes = z.number().int().min(64).max(64 * 1024 * 1024);

/**
 * A URL whose scheme is one of `schemes`, checked at load: a bad DATABASE_URL used to fail only
 * at the first connection ("getaddrinfo ENOTFOUND base"), and a bad REDIS_URL not at all. The
 * message never repeats the value, which may hold a password.
 */
function urlWithScheme(schemes: string[]) {
  const expected = schemes.map((s) => `${s}//`).join(' or ');
  return z.string().superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a ${expected} URL; this is not a URL` });
      return;
    }
    if (!schemes.includes(url.protocol)) {
      ctx.addIssue({ code: 'custom', message: `must be a ${expected} URL, not ${url.protocol}//` });
    }
  });
}

/** A web page's origin, as a browser sends it in `Origin`: http(s)://host[:port], nothing after. */
const pageOrigin = z.string().max(200).superRefine((text, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    // reported below
  }
  const bare = url && url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  if (!url || !bare || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    ctx.addIssue({ code: 'custom', message: `must be an origin such as "https://signage.example.edu" or "http://10.0.0.5:8080" (scheme, host, optional port; no path), not ${JSON.stringify(text)}` });
  }
});

const portKeys = ['rpc', 'sensor', 'pubsub', 'http'] as const;

/** A token bucket over some methods, per connection, per authenticated user or per source address. */
const rateLimitRule = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]{1,40}$/),
  per: z.enum(['connection', 'user', 'address']),
  /** `anonymous`: only requests without a token (public reads); default everyone. */
  callers: z.enum(['all', 'anonymous']).default('all'),
  /** Exact names, `namespace.*` prefixes, or `*` for every method. */
  methods: z.array(z.string().min(1).max(128)).min(1).max(64),
  ratePerSec: z.number().positive(),
  burst: z.number().min(1),
});

/** The shipped rate limits (docs/fairness.md). */
const DEFAULT_RATE_LIMITS: ReadonlyArray<z.output<typeof rateLimitRule>> = [
  { name: 'auth', per: 'connection', callers: 'all', methods: ['auth.login', 'auth.register'], ratePerSec: 20, burst: 100 },
  // A taken or new id alike: registrations from one address, whatever its connections.
  { name: 'register', per: 'address', callers: 'all', methods: ['auth.register'], ratePerSec: 2, burst: 20 },
  // Reads anyone may make without an account: per connection, and per address so that opening
  // more connections buys nothing.
  { name: 'anonymousReads', per: 'connection', callers: 'anonymous', methods: ['seats.*', 'branches.*', 'server.*'], ratePerSec: 20, burst: 40 },
  { name: 'anonymousReadsByAddress', per: 'address', callers: 'anonymous', methods: ['seats.*', 'branches.*', 'server.*'], ratePerSec: 100, burst: 200 },
  {
    name: 'writes',
    per: 'user',
    callers: 'all',
    methods: [
      'reservations.create',
      'reservations.walkIn',
      'reservations.cancel',
      'reservations.checkIn',
      'reservations.checkOut',
      'waitlist.join',
      'waitlist.leave',
      'waitlist.claim',
      'admin.*',
    ],
    ratePerSec: 100,
    burst: 100,
  },
  { name: 'user', per: 'user', callers: 'all', methods: ['*'], ratePerSec: 1_000, burst: 5_000 },
];

/**
 * After freeFailures failures, each further one locks the key for baseDelayMs · 2^(extra-1),
 * capped. The default number of free failures is per key kind, so a file that sets only a delay
 * keeps that kind's own default.
 */
const throttleKey = (freeFailures: number) =>
  z
    .strictObject({
      freeFailures: z.number().int().min(1).default(freeFailures),
      baseDelayMs: positiveInt.default(1_000),
      maxDelayMs: positiveInt.default(15 * 60_000),
    })
    .prefault({});

export const configSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  ports: z
    .strictObject({
      rpc: port.default(9000),
      sensor: port.default(9001),
      pubsub: port.default(9002),
      http: port.default(9090),
    })
    // Two equal ports used to pass here and fail at listen, after the embedded PostgreSQL had
    // started. 0 (pick a free port) may repeat.
    .superRefine((ports, ctx) => {
      for (let i = 0; i < portKeys.length; i++) {
        for (let j = 0; j < i; j++) {
          const [a, b] = [portKeys[j]!, portKeys[i]!];
          if (ports[a] !== 0 && ports[a] === ports[b]) {
            ctx.addIssue({ code: 'custom', path: [b], message: `is ${ports[b]}, the same port as ports.${a}; every port needs its own number` });
          }
        }
      }
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxFrameBytes: frameBytes.default(1024 * 1024),
      maxJsonDepth: z.number().int().min(2).max(512).default(32),
      maxConnections: positiveInt.default(4096),
      maxInFlightPerConnection: positiveInt.default(128),
      idleTimeoutMs: ms.default(300_000),
      partialFrameTimeoutMs: ms.default(10_000),
      writeHighWaterBytes: positiveInt.default(256 * 1024),
      requestTimeoutMs: positiveInt.default(5_000),
      /** Bytes a port may hold in unfinished frames, all its connections together (src/net/frameBudget.ts). */
      maxPartialFrameBytesPerPort: z.number().int().min(1024).default(32 * 1024 * 1024),
    })
    .prefault({}),
  db: z
    .strictObject({
      url: urlWithScheme(['postgres:', 'postgresql:']).nullable().default(null),
      poolSize: positiveInt.max(200).default(10),
      connectTimeoutMs: positiveInt.default(5_000),
      statementTimeoutMs: positiveInt.default(5_000),
      migrateOnStart: z.boolean().default(true),
      embedded: z
        .strictObject({
          dataDir: z.string().min(1).default('.carrel/pgdata'),
          port: port.default(54329),
          seedOnFirstStart: z.boolean().default(true),
        })
        .prefault({}),
    })
    .prefault({}),
  /**
   * Fair admission to the database pool (docs/fairness.md): a request's database work waits in
   * its client's queue (the user, or the source address without a token), and free connections
   * go round-robin between clients, at most dbPerClient to one client at a time.
   */
  admission: z
    .strictObject({
      /** Pooled connections requests may hold at once; null: db.poolSize. */
      dbSlots: positiveInt.max(200).nullable().default(null),
      dbPerClient: positiveInt.default(2),
      /** A client's requests waiting for a connection; past it RESOURCE_EXHAUSTED at once. */
      dbQueuePerClient: positiveInt.default(16),
      /** Requests waiting in all; past it the longest queue gives up its newest request. */
      dbMaxQueued: positiveInt.default(1024),
      /** A connection refused RESOURCE_EXHAUSTED is not read again for retryAfterMs, at most this. */
      quietOnRefusalMaxMs: ms.max(60_000).default(1_000),
    })
    .prefault({}),
  redis: z
    .strictObject({
      url: urlWithScheme(['redis:', 'rediss:']).nullable().default(null),
      /** Prefix of every key carrel writes, so deployments (and test runs) can share a server. */
      keyPrefix: z.string().min(1).max(64).default('carrel'),
      /** Events kept for other instances while Redis is unreachable; past it the oldest go (counted). */
      offlineQueueMax: positiveInt.default(10_000),
      connectTimeoutMs: positiveInt.default(5_000),
    })
    .prefault({}),
  // Occupancy sensors (docs/sensors.md).
  sensors: z
    .strictObject({
      /** Accepted sensor keys besides the sensor_keys table (stored there as SHA-256 digests). */
      keys: z.array(z.string().min(8).max(256)).max(1000).default(['dev-sensor-key']),
      /**
       * Keys never accepted, wherever found (sensors.keys or the sensor_keys table). With
       * NODE_ENV=production the loader adds the development key, which `carrel db seed` stores.
       */
      refuseKeys: z.array(z.string().min(1).max(256)).max(1000).default([]),
      offlineAfterMs: positiveInt.default(120_000),
      autoCheckIn: z.boolean().default(true),
      /** Away holds: a checked-in seat left empty is held, then released (docs/rules.md, presence). */
      autoRelease: z.boolean().default(true),
      flushEveryMs: positiveInt.default(1_000),
      maxReadingsPerFrame: positiveInt.max(10_000).default(500),
      /**
       * A reading's `at` must lie in [now - maxAgeMs, now + maxClockSkewMs] by the server's clock,
       * else that reading is refused (docs/sensors.md). `at` only gates; order and timers run on
       * the server's receipt time. The skew is a few seconds: a future `at` can hold back only
       * its own gateway's later readings of that seat, and by no more than this.
       */
      maxAgeMs: positiveInt.max(24 * 3_600_000).default(5 * 60_000),
      maxClockSkewMs: ms.max(60_000).default(5_000),
      /**
       * How often every instance re-reads whether the table keys of its open sensor connections
       * were revoked (a revoke on this instance closes them at once).
       */
      keyRecheckMs: positiveInt.default(60_000),
      /**
       * Wrong-key hellos per peer address: past freeFailures each locks the address for
       * baseDelayMs doubling up to maxDelayMs; forgotten forgetAfterMs after the last one (also
       * the window of the once-per-address refusal log line); at most maxEntries addresses.
       */
      helloThrottle: z
        .strictObject({
          freeFailures: z.number().int().min(1).default(10),
          baseDelayMs: positiveInt.default(1_000),
          maxDelayMs: positiveInt.default(60_000),
          forgetAfterMs: positiveInt.default(10 * 60_000),
          maxEntries: positiveInt.default(10_000),
        })
        .prefault({}),
      /** Largest frame on the sensor port: 500 readings are ~40 KB, pretty-printed twice that. */
      maxFrameBytes: frameBytes.default(128 * 1024),
    })
    .prefault({}),
  // The occupancy history (docs/reports.md): sensor intervals per seat, written by the sensor
  // coalescer on each flush, read by the utilization report.
  history: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** History older than this goes, a whole month at a time once all of it is older. */
      retentionDays: z.number().int().min(31).max(3660).default(400),
    })
    .prefault({}),
  // Live seat subscribers (docs/protocol.md, "Subscriber port").
  pubsub: z
    .strictObject({
      /** Frames a subscriber may have queued behind a congested socket before the oldest is dropped. */
      queueCapacity: positiveInt.max(1_000_000).default(1_024),
      /** Unsent bytes in a subscriber's socket above which events queue instead of being written. */
      highWaterBytes: positiveInt.default(256 * 1024),
      /** Drops within dropWindowMs that mark a subscriber as a slow consumer and cut it off. */
      maxDrops: positiveInt.default(1_000),
      dropWindowMs: positiveInt.default(10_000),
      /** How long a subscriber cut off as SLOW_CONSUMER may take to read up to that last frame. */
      slowConsumerLingerMs: positiveInt.default(30_000),
      summaryEveryMs: positiveInt.default(5_000),
      /** Seat events kept per branch so `since` can resume. */
      retainEvents: positiveInt.max(1_000_000).default(1_000),
      /** Largest frame a subscriber may send: a subscribe with a token and `since` is a few KB. */
      maxFrameBytes: frameBytes.default(32 * 1024),
    })
    .prefault({}),
  // The live seat model (src/core/liveSeats.ts) is loaded at start; it picks up branches and
  // seats added later (e.g. `carrel db seed` on a running server) on demand and now and then.
  live: z
    .strictObject({
      /** How often to look for branches and seats added since start; 0 turns the timer off. */
      refreshEveryMs: ms.default(60_000),
      /** On-demand looks (unknown branch subscribed, unknown seat read) at most this often. */
      refreshMinIntervalMs: ms.default(5_000),
    })
    .prefault({}),
  auth: z
    .strictObject({
      jwtSecret: z.string().min(16).default('carrel-development-secret-change-me'),
      tokenTtlSec: positiveInt.default(12 * 3600),
      bcryptCost: z.number().int().min(4).max(15).default(10),
      /** Worker threads that hash and compare passwords; 0: availableParallelism() − 1, at least 1. */
      hashWorkers: z.number().int().min(0).max(64).default(0),
      /**
       * Password jobs that may wait for a worker (global); past it auth.login and auth.register
       * answer RESOURCE_EXHAUSTED. Must exceed the logins an honest crowd makes at once
       * (the load generator's set-up: one per connection, ~users/40 connections).
       */
      maxQueuedHashJobs: positiveInt.max(100_000).default(64),
      /**
       * Registration hashes that may wait for a worker, apart from the logins' queue (docs/accounts.md):
       * past it — or when the ones ahead would not let a new one start before its request
       * deadline — auth.register answers RESOURCE_EXHAUSTED with a retry hint.
       */
      maxQueuedRegisterJobs: z.number().int().min(0).max(100_000).default(16),
      /**
       * Share of the hash workers registrations may use: of them at once (rounded down, at
       * least one), of their time, and of the jobs started while logins wait too. At most
       * half: logins come first.
       */
      registerWorkerShare: z.number().gt(0).max(0.5).default(0.25),
    })
    .prefault({}),
  // The lifecycle worker and the waitlist (docs/protocol.md, "Reservation and waitlist statuses").
  // The no-show grace is rules.checkInGraceMinutes: a booking whose check-in window has closed is a
  // no-show.
  lifecycle: z
    .strictObject({
      enabled: z.boolean().default(true),
      tickMs: positiveInt.default(5_000),
      batchSize: positiveInt.max(10_000).default(500),
    })
    .prefault({}),
  waitlist: z
    .strictObject({
      offerMs: positiveInt.default(600_000),
      maxEntriesPerUser: positiveInt.max(1_000).default(5),
      // A waitlist window must be one a booking could have (rules.*); these can only narrow
      // rules.maxDurationMinutes / rules.maxDaysAhead for waitlist windows. null: the booking rule.
      maxWindowMinutes: positiveInt.max(7 * 24 * 60).nullable().default(null),
      maxAheadDays: positiveInt.max(366).nullable().default(null),
    })
    .prefault({}),
  http: z
    .strictObject({
      /** /readyz reports a dependency down when it does not answer within this. */
      readyTimeoutMs: positiveInt.default(1_000),
      /** A connection that has not sent a whole request head within this is dropped (slowloris). */
      headersTimeoutMs: z.number().int().min(100).max(60_000).default(3_000),
      /** /readyz fails while the event loop has run this late within the last second (docs/http.md). */
      readyMaxEventLoopLagMs: z.number().int().min(10).max(60_000).default(1_000),
      /**
       * Connections the port keeps at once. A newcomer is always taken: past this, the connection
       * that has been idle longest is closed to make room (docs/http.md).
       */
      maxConnections: z.number().int().min(2).max(10_000).default(64),
      /** Connections one address (an IPv6 /64) keeps; its newcomer closes its own longest-idle one. */
      maxConnectionsPerAddress: positiveInt.max(10_000).default(16),
      /**
       * Origins of pages allowed to open /ws/rpc and /ws/live besides the host the request was made
       * to (a page carrel serves itself); a request without an Origin (not a browser) is let in
       * (docs/http.md, "WebSockets").
       */
      allowedOrigins: z.array(pageOrigin).max(100).default([]),
      /**
       * The bearer token GET /metrics requires (`Authorization: Bearer …`); null leaves /metrics
       * open. METRICS_TOKEN sets it from the environment. /healthz and /readyz stay open.
       */
      metricsToken: z
        .string()
        .regex(/^[\x21-\x7e]{16,256}$/, 'must be 16 to 256 printable ASCII characters without spaces')
        .nullable()
        .default(null),
    })
    .superRefine((h, ctx) => {
      if (h.maxConnectionsPerAddress > h.maxConnections) {
        ctx.addIssue({ code: 'custom', path: ['maxConnectionsPerAddress'], message: `must not exceed http.maxConnections (${h.maxConnections})` });
      }
    })
    .prefault({}),
  sla: z
    .strictObject({
      /** How often the SLA line is logged; 0 turns it off. */
      reportEveryMs: ms.default(60_000),
      targets: z
        .strictObject({
          /** Share of requests not answered INTERNAL, UNAVAILABLE or DEADLINE_EXCEEDED. */
          availability: z.number().min(0).max(1).default(0.999),
          /** p95 latency target per method; `default` covers every method not named. */
          p95Ms: z
            .record(z.string().min(1), z.number().positive())
            .refine((r) => typeof r.default === 'number', { message: 'needs a "default" entry' })
            .default({ default: 250, 'auth.login': 1_000, 'auth.register': 1_000 }),
        })
        .prefault({}),
    })
    .prefault({}),
  rateLimit: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Per-user and per-address buckets kept per rule; the least recently used go first past this. */
      maxTrackedKeys: positiveInt.default(50_000),
      rules: z
        .array(rateLimitRule)
        .max(32)
        .default(() => DEFAULT_RATE_LIMITS.map((r) => ({ ...r, methods: [...r.methods] }))),
    })
    .prefault({}),
  // Failed logins (docs/accounts.md, "Failed logins"): counted per (account, address), per
  // address, and per account across addresses; the last never locks an address the account
  // has logged in from.
  loginThrottle: z
    .strictObject({
      /** One account guessed from one address. */
      accountFromAddress: throttleKey(5),
      /** One existing account, every address together; each address adds at most accountFromAddress.freeFailures. */
      account: throttleKey(20),
      /** One address, whatever the account (a campus NAT puts many students behind one). */
      address: throttleKey(50),
      /** A key's failures are forgotten this long after its last failure. */
      forgetAfterMs: positiveInt.default(15 * 60_000),
      /** Keys tracked per kind, and accounts with known addresses; the least recently used go first past this. */
      maxEntries: positiveInt.default(100_000),
      /** Addresses an account is known to log in from, kept per account (most recent). */
      knownAddressesPerAccount: positiveInt.max(64).default(4),
      /** A known address is forgotten this long after the account's last login from it. */
      knownAddressForgetAfterMs: positiveInt.default(30 * 24 * 3600_000),
    })
    // If one address's share of the account-wide count could reach the account's threshold,
    // one address could lock the account for everyone else.
    .superRefine((t, ctx) => {
      if (t.account.freeFailures <= t.accountFromAddress.freeFailures) {
        const message = `must be more than loginThrottle.accountFromAddress.freeFailures (${t.accountFromAddress.freeFailures}), or one address could lock an account for every other address`;
        ctx.addIssue({ code: 'custom', path: ['account', 'freeFailures'], message });
      }
    })
    .prefault({}),
  shutdown: z.strictObject({ graceMs: positiveInt.default(10_000) }).prefault({}),
  // Booking rules (docs/rules.md); per-branch opening hours and padding live in the database.
  rules: z
    .strictObject({
      slotMinutes: z.number().int().min(1).max(240).default(15),
      minDurationMinutes: positiveInt.default(30),
      maxDurationMinutes: positiveInt.max(24 * 60).default(240),
      maxDaysAhead: z.number().int().min(0).max(366).default(14),
      maxActivePerUser: positiveInt.default(3),
      dailyQuotaMinutes: positiveInt.default(240),
      weeklyQuotaMinutes: positiveInt.default(1200),
      checkInOpensBeforeMinutes: z.number().int().min(0).max(240).default(15),
      checkInGraceMinutes: z.number().int().min(0).max(240).default(15),
      /** The longest a walk-in books (docs/rules.md, "Walk-ins"); also cut at the next booking, closing and maxDurationMinutes. */
      walkInMinutes: positiveInt.max(24 * 60).default(120),
      /** No-show strikes (docs/rules.md, "Strikes and suspension"). */
      strikes: z
        .strictObject({
          limit: positiveInt.max(100).default(3),
          windowDays: positiveInt.max(366).default(30),
          suspendDays: positiveInt.max(366).default(7),
        })
        .prefault({}),
      /** A user's CONFIRMED and CHECKED_IN bookings may not overlap in time (one person, one seat). */
      oneSeatAtATime: z.boolean().default(true),
      /**
       * "HH:MM": a local day's bookings open at this time of the branch's day maxDaysAhead days
       * before (docs/rules.md, "When bookings open"); null: a rolling maxDaysAhead window.
       */
      bookingOpensAt: z
        .string()
        .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a local time "HH:MM"')
        .nullable()
        .default(null),
      /** Bookings asked in the first N ms after an opening are served in a random order (0: arrival order). */
      openingLotteryMs: z.number().int().min(0).max(60_000).default(0),
    })
    .prefault({}),
  // Presence (docs/rules.md, "Presence: the state machine"): how long a checked-in seat left
  // empty is held for its owner before it is released.
  presence: z
    .strictObject({
      awayMinutes: positiveInt.max(24 * 60).default(20),
      /** The owner hears `awayEnding` this long before the hold runs out. */
      awayEndingMinutes: z.number().int().min(0).max(60).default(5),
      /**
       * Longer (or shorter) holds at some times of day, e.g. meals: a hold that starts inside
       * [from, to) of the branch's local clock lasts awayMinutes; branchIds limits it to those
       * branches (absent: every branch). The first window that matches wins.
       */
      windows: z
        .array(
          z.strictObject({
            branchIds: z.array(positiveInt).max(1000).optional(),
            from: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/),
            to: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/),
            awayMinutes: positiveInt.max(24 * 60),
          }),
        )
        .max(100)
        .default([])
        .superRefine((ws, ctx) => {
          ws.forEach((w, i) => {
            if (w.from >= w.to) ctx.addIssue({ code: 'custom', path: [i, 'to'], message: `must be after from (${w.from})` });
          });
        }),
    })
    .prefault({}),
  // Booking many at once (docs/architecture.md, "Group commit"; src/core/bookingQueue.ts).
  booking: z
    .strictObject({
      /** Most bookings sent in one round trip (each a subtransaction: at most 60 keeps them in PostgreSQL's cache). */
      maxBatch: z.number().int().min(1).max(60).default(50),
      /** Batches running at once, each on a database connection; the gate still serves them in turn with every other client. */
      maxBatchesInFlight: z.number().int().min(1).max(200).default(4),
      /** Shapes (branch, filters, window) remembered as full or by where their last walk found a seat; and users remembered by their bookings made here. */
      knownFullMaxEntries: positiveInt.max(1_000_000).default(10_000),
      /** A "full" verdict is trusted this long without news from the branch (ms); a user's booking made here is remembered as long. */
      knownFullMs: z.number().int().min(0).max(600_000).default(10_000),
    })
    .prefault({}),
  // Discovery reads: seats.list keeps serialised listings per (filter, slot) until a change in
  // the branch invalidates them (src/core/seatListing.ts).
  discovery: z
    .strictObject({
      seatListCache: z.boolean().default(true),
      seatListCacheMaxEntries: positiveInt.default(2000),
      seatListCacheMaxBytes: positiveInt.default(16 * 1024 * 1024),
      seatContextCacheMs: z.number().int().min(0).max(60_000).default(2000),
      /** branches.list: hours and seat totals kept this long (counts come from the live model). */
      branchListCacheMs: z.number().int().min(0).max(60_000).default(5000),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      /** JSON lines, or short lines for a person; "auto": pretty when stdout is a terminal (src/cli/logging.ts). */
      format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    })
    .prefault({}),
}).superRefine((c, ctx) => {
  // Below one whole frame of the largest kind, an honest frame of that size could never finish.
  const largest = Math.max(c.limits.maxFrameBytes, c.sensors.maxFrameBytes, c.pubsub.maxFrameBytes);
  if (c.limits.maxPartialFrameBytesPerPort < largest + 4) {
    const message = `must be at least the largest frame limit plus its 4-byte header (${largest + 4})`;
    ctx.addIssue({ code: 'custom', path: ['limits', 'maxPartialFrameBytesPerPort'], message });
  }
});

export type Config = z.infer<typeof configSchema>;
