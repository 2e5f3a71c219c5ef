// The one typed config (DESIGN §7): every port, limit, pool size, timeout, rule and queue size.
// Units are in the names. Each leaf has the shipped default so a partial file still works, and
// unknown keys are refused so a typo fails at start instead of being silently ignored.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const ms = z.number().int().min(0);
const positiveInt = z.number().int().min(1);

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
  // The lifecycle worker and the waitlist (DESIGN §3). Grace lives here, not under rules, so
  // the lifecycle's no-show clock is configured next to the worker that applies it.
  lifecycle: z
    .strictObject({
      enabled: z.boolean().default(true),
      tickMs: positiveInt.default(5_000),
      noShowGraceMinutes: z.number().int().min(0).max(24 * 60).default(15),
      batchSize: positiveInt.max(10_000).default(500),
    })
    .prefault({}),
  waitlist: z
    .strictObject({
      offerMs: positiveInt.default(600_000),
      maxEntriesPerUser: positiveInt.max(1_000).default(5),
      maxWindowMinutes: positiveInt.max(7 * 24 * 60).default(720),
      maxAheadDays: positiveInt.max(366).default(30),
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
