// The one typed config (DESIGN §7): every port, limit, pool size, timeout, rule and queue size.
// Units are in the names. Each leaf has the shipped default so a partial file still works, and
// unknown keys are refused so a typo fails at start instead of being silently ignored.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const ms = z.number().int().min(0);
const positiveInt = z.number().int().min(1);

/** A token bucket over some methods, per connection or per authenticated user. */
const rateLimitRule = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]{1,40}$/),
  per: z.enum(['connection', 'user']),
  /** Exact names, `namespace.*` prefixes, or `*` for every method that needs a token. */
  methods: z.array(z.string().min(1).max(128)).min(1).max(64),
  ratePerSec: z.number().positive(),
  burst: z.number().min(1),
});

/** After freeFailures failures, each further one locks the key for baseDelayMs · 2^(extra-1), capped. */
const throttleKey = z.strictObject({
  freeFailures: z.number().int().min(1).default(5),
  baseDelayMs: positiveInt.default(1_000),
  maxDelayMs: positiveInt.default(15 * 60_000),
});

export const configSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  ports: z
    .strictObject({
      rpc: port.default(9000),
      sensor: port.default(9001),
      pubsub: port.default(9002),
      http: port.default(9090),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxFrameBytes: z.number().int().min(64).max(64 * 1024 * 1024).default(1024 * 1024),
      maxJsonDepth: z.number().int().min(2).max(512).default(32),
      maxConnections: positiveInt.default(4096),
      maxInFlightPerConnection: positiveInt.default(128),
      idleTimeoutMs: ms.default(300_000),
      partialFrameTimeoutMs: ms.default(10_000),
      writeHighWaterBytes: positiveInt.default(256 * 1024),
      requestTimeoutMs: positiveInt.default(5_000),
    })
    .prefault({}),
  db: z
    .strictObject({
      url: z.string().min(1).nullable().default(null),
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
  redis: z
    .strictObject({
      url: z.string().min(1).nullable().default(null),
    })
    .prefault({}),
  auth: z
    .strictObject({
      jwtSecret: z.string().min(16).default('carrel-development-secret-change-me'),
      tokenTtlSec: positiveInt.default(12 * 3600),
      bcryptCost: z.number().int().min(4).max(15).default(10),
    })
    .prefault({}),
  http: z
    .strictObject({
      /** /readyz reports a dependency down when it does not answer within this. */
      readyTimeoutMs: positiveInt.default(1_000),
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
      /** Per-user buckets kept per rule; the least recently used go first past this. */
      maxTrackedUsers: positiveInt.default(50_000),
      rules: z
        .array(rateLimitRule)
        .max(32)
        .default([
          { name: 'auth', per: 'connection', methods: ['auth.login', 'auth.register'], ratePerSec: 20, burst: 100 },
          {
            name: 'writes',
            per: 'user',
            methods: [
              'reservations.create',
              'reservations.cancel',
              'reservations.checkIn',
              'reservations.checkOut',
              'waitlist.join',
              'waitlist.leave',
              'waitlist.claim',
              'admin.*',
            ],
            ratePerSec: 100,
            burst: 500,
          },
          { name: 'user', per: 'user', methods: ['*'], ratePerSec: 1_000, burst: 5_000 },
        ]),
    })
    .prefault({}),
  loginThrottle: z
    .strictObject({
      account: throttleKey.prefault({ freeFailures: 5 }),
      address: throttleKey.prefault({ freeFailures: 50 }),
      /** A key's failures are forgotten this long after its last failure. */
      forgetAfterMs: positiveInt.default(15 * 60_000),
      /** Keys tracked per kind; the least recently failed go first past this. */
      maxEntries: positiveInt.default(100_000),
    })
    .prefault({}),
  shutdown: z.strictObject({ graceMs: positiveInt.default(10_000) }).prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
