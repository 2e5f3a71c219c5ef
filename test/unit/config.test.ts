import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { projectRoot } from '../../src/paths.js';

function writeConfig(obj: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'carrel-config-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return file;
}

describe('config', () => {
  it('the shipped config.json is valid and spells out every default', () => {
    const shipped = loadConfig({ file: join(projectRoot, 'config.json'), env: {} });
    expect(shipped).toEqual(configSchema.parse({}));
    expect(shipped.ports).toEqual({ rpc: 9000, sensor: 9001, pubsub: 9002, http: 9090 });
  });

  it('environment variables override the file', () => {
    const file = writeConfig({ log: { level: 'warn' } });
    const config = loadConfig({
      file,
      env: {
        DATABASE_URL: 'postgres://db.example/carrel',
        REDIS_URL: 'redis://cache.example:6379',
        JWT_SECRET: 'a-very-long-production-secret',
        LOG_LEVEL: 'debug',
      },
    });
    expect(config.db.url).toBe('postgres://db.example/carrel');
    expect(config.redis.url).toBe('redis://cache.example:6379');
    expect(config.auth.jwtSecret).toBe('a-very-long-production-secret');
    expect(config.log.level).toBe('debug');
  });

  it('CARREL_CONFIG names another file', () => {
    const file = writeConfig({ ports: { rpc: 9100 } });
    expect(loadConfig({ env: { CARREL_CONFIG: file } }).ports.rpc).toBe(9100);
  });

  it.each([
    [{ limits: { maxFrameBytes: 'big' } }, 'limits.maxFrameBytes'],
    [{ ports: { rpc: 70000 } }, 'ports.rpc'],
    [{ db: { poolSize: 0 } }, 'db.poolSize'],
    [{ limits: { maxFrameByte: 10 } }, 'maxFrameByte'],
    [{ log: { level: 'chatty' } }, 'log.level'],
    [{ log: { format: 'yaml' } }, 'log.format'],
    [{ sensors: { maxFrameBytes: 10 } }, 'sensors.maxFrameBytes'],
    // The future skew is seconds, at most a minute: a further future `at` could hold back its own gateway longer (docs/sensors.md).
    [{ sensors: { maxClockSkewMs: 120_000 } }, 'sensors.maxClockSkewMs'],
    [{ sensors: { maxAgeMs: 0 } }, 'sensors.maxAgeMs'],
    [{ sensors: { maxAgeMs: 7 * 86_400_000 } }, 'sensors.maxAgeMs'],
    [{ pubsub: { maxFrameBytes: '32k' } }, 'pubsub.maxFrameBytes'],
    [{ limits: { maxPartialFrameBytesPerPort: -1 } }, 'limits.maxPartialFrameBytesPerPort'],
    // Smaller than one whole frame of the largest kind: such a frame could never finish.
    [{ limits: { maxPartialFrameBytesPerPort: 1024 * 1024 } }, 'limits.maxPartialFrameBytesPerPort'],
    [{ sensors: { maxFrameBytes: 8 * 1024 * 1024 }, limits: { maxPartialFrameBytesPerPort: 4 * 1024 * 1024 } }, 'limits.maxPartialFrameBytesPerPort'],
    // One address's share cannot be more than the whole health port.
    [{ http: { maxConnections: 8, maxConnectionsPerAddress: 9 } }, 'http.maxConnectionsPerAddress: must not exceed http.maxConnections (8)'],
    [{ http: { metricsToken: 'too-short' } }, 'http.metricsToken'],
    [{ http: { metricsToken: 'a token with spaces in it' } }, 'http.metricsToken'],
    // An origin is what a browser sends in Origin: a scheme, a host and maybe a port, nothing more.
    [{ http: { allowedOrigins: ['https://signage.example.edu/screen'] } }, 'http.allowedOrigins.0: must be an origin such as'],
    [{ http: { allowedOrigins: ['*'] } }, 'http.allowedOrigins.0'],
    [{ http: { allowedOrigins: ['null'] } }, 'http.allowedOrigins.0'],
    [{ http: { allowedOrigins: ['https://ok.example', 'ftp://files.example'] } }, 'http.allowedOrigins.1'],
  ])('a bad value fails with a message naming the key: %j', (bad, key) => {
    const file = writeConfig(bad);
    expect(() => loadConfig({ file, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file, env: {} })).toThrow(key);
  });

  it.each([
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL (log.level): '],
    [{ LOG_FORMAT: 'fancy' }, 'LOG_FORMAT (log.format): '],
    [{ DATABASE_URL: 'notaurl' }, 'DATABASE_URL (db.url): must be a postgres:// or postgresql:// URL'],
    [{ DATABASE_URL: 'mysql://db.example/carrel' }, 'DATABASE_URL (db.url): must be a postgres:// or postgresql:// URL, not mysql://'],
    [{ REDIS_URL: 'bogus' }, 'REDIS_URL (redis.url): must be a redis:// or rediss:// URL'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET (auth.jwtSecret): '],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN (http.metricsToken): must be 16 to 256 printable ASCII characters'],
  ])('a bad value from the environment names the variable and the key: %j', (env, message) => {
    const file = writeConfig({});
    expect(() => loadConfig({ file, env })).toThrow(ConfigError);
    expect(() => loadConfig({ file, env })).toThrow(message);
  });

  it('METRICS_TOKEN sets http.metricsToken (null by default: /metrics open); a bad one is never echoed', () => {
    const file = writeConfig({});
    expect(loadConfig({ file, env: {} }).http.metricsToken).toBeNull();
    expect(loadConfig({ file, env: { METRICS_TOKEN: 'scrape-7f3a9c1e5b2d4f60' } }).http.metricsToken).toBe('scrape-7f3a9c1e5b2d4f60');
    expect(() => loadConfig({ file, env: { METRICS_TOKEN: 'secret pass' } })).toThrow(ConfigError);
    expect(() => loadConfig({ file, env: { METRICS_TOKEN: 'secret pass' } })).not.toThrow(/secret pass/);
  });

  it('a bad URL in the file names the key, not a variable, and never echoes the value', () => {
    const file = writeConfig({ db: { url: 'postgres//admin:hunter2@db' } });
    let message = '';
    try {
      loadConfig({ file, env: {} });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^ {2}db\.url: must be a postgres:\/\/ or postgresql:\/\/ URL/m);
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('DATABASE_URL');
  });

  it('accepts the URL forms the drivers take', () => {
    for (const url of ['postgres://u:p@db:5432/carrel', 'postgresql://db/carrel', 'postgres:///carrel?host=/var/run/postgresql']) {
      expect(parseConfig({ db: { url } }).db.url).toBe(url);
    }
    for (const url of ['redis://cache:6379', 'rediss://user:pw@cache:6380/2']) {
      expect(parseConfig({ redis: { url } }).redis.url).toBe(url);
    }
  });

  it('http.allowedOrigins takes origins with or without a port (none by default)', () => {
    expect(parseConfig({}).http.allowedOrigins).toEqual([]);
    const origins = ['https://signage.example.edu', 'http://10.0.0.5:8080', 'http://kiosk.local/'];
    expect(parseConfig({ http: { allowedOrigins: origins } }).http.allowedOrigins).toEqual(origins);
  });

  it('refuses two equal ports, naming both keys; 0 (any free port) may repeat', () => {
    expect(() => parseConfig({ ports: { rpc: 9000, pubsub: 9000 } })).toThrow('ports.pubsub: is 9000, the same port as ports.rpc');
    expect(() => parseConfig({ ports: { http: 9001 } })).toThrow('ports.http: is 9001, the same port as ports.sensor');
    expect(parseConfig({ ports: { rpc: 0, sensor: 0, pubsub: 0, http: 0 } }).ports.rpc).toBe(0);
  });

  it('a sensor reading\'s `at` window defaults to [now - 5 min, now + 5 s]', () => {
    const c = parseConfig({});
    expect([c.sensors.maxAgeMs, c.sensors.maxClockSkewMs, c.sensors.keyRecheckMs]).toEqual([300_000, 5_000, 60_000]);
    expect(loadConfig({ env: {} }).sensors).toMatchObject({ maxAgeMs: 300_000, maxClockSkewMs: 5_000 });
  });

  it('the sensor and subscriber ports have their own, smaller frame limits, and one budget of unfinished-frame bytes per port', () => {
    const c = parseConfig({});
    expect(c.limits.maxFrameBytes).toBe(1024 * 1024);
    expect(c.sensors.maxFrameBytes).toBe(128 * 1024);
    expect(c.pubsub.maxFrameBytes).toBe(32 * 1024);
    expect(c.limits.maxPartialFrameBytesPerPort).toBe(32 * 1024 * 1024);
    // The budget must hold one whole frame of the largest kind (here the sensor port's) and its header.
    const small = { maxFrameBytes: 4096 };
    expect(parseConfig({ limits: { ...small, maxPartialFrameBytesPerPort: 128 * 1024 + 4 } }).limits.maxPartialFrameBytesPerPort).toBe(128 * 1024 + 4);
    expect(() => parseConfig({ limits: { ...small, maxPartialFrameBytesPerPort: 128 * 1024 + 3 } })).toThrow(/limits\.maxPartialFrameBytesPerPort: must be at least/);
  });

  it('login throttle: one address can never reach the account-wide threshold, and each kind keeps its own defaults', () => {
    const c = parseConfig({});
    expect([c.loginThrottle.accountFromAddress.freeFailures, c.loginThrottle.account.freeFailures, c.loginThrottle.address.freeFailures]).toEqual([5, 20, 50]);
    // A file that sets only a delay keeps the kind's own free failures.
    expect(parseConfig({ loginThrottle: { address: { baseDelayMs: 500 } } }).loginThrottle.address.freeFailures).toBe(50);
    expect(() => parseConfig({ loginThrottle: { account: { freeFailures: 5 } } })).toThrow(
      /loginThrottle\.account\.freeFailures: must be more than loginThrottle\.accountFromAddress\.freeFailures \(5\)/,
    );
    expect(() => parseConfig({ loginThrottle: { accountFromAddress: { freeFailures: 25 } } })).toThrow(/loginThrottle\.account\.freeFailures/);
  });

  it('hash lanes: registrations get their own queue and at most half the workers', () => {
    const c = parseConfig({});
    expect([c.auth.maxQueuedHashJobs, c.auth.maxQueuedRegisterJobs, c.auth.registerWorkerShare]).toEqual([64, 16, 0.25]);
    expect(() => parseConfig({ auth: { registerWorkerShare: 0.75 } })).toThrow(/auth\.registerWorkerShare/);
    expect(() => parseConfig({ auth: { registerWorkerShare: 0 } })).toThrow(/auth\.registerWorkerShare/);
  });

  it('a file that is not JSON fails clearly', () => {
    const file = writeConfig('{ nope');
    expect(() => loadConfig({ file, env: {} })).toThrow(/cannot read/);
  });

  it('a named file that is missing fails instead of falling back to defaults', () => {
    expect(() => loadConfig({ file: '/nonexistent/carrel.json', env: {} })).toThrow(/cannot read/);
  });

  it('refuses the development JWT secret in production', () => {
    expect(() => parseConfig({}, { NODE_ENV: 'production' })).toThrow(/auth.jwtSecret/);
    const ready = { auth: { jwtSecret: 'x'.repeat(32) }, sensors: { keys: ['a-real-gateway-key'] } };
    expect(parseConfig(ready, { NODE_ENV: 'production' }).auth.jwtSecret).toHaveLength(32);
  });

  it('refuses the development sensor key in production, naming where it is', () => {
    const secret = { auth: { jwtSecret: 'x'.repeat(32) } };
    // The shipped config.json (and the defaults) carry it: a production start stops.
    expect(() => loadConfig({ file: join(projectRoot, 'config.json'), env: { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) } })).toThrow(
      /sensors\.keys\[0\] is the shipped development sensor key "dev-sensor-key"/,
    );
    expect(() => parseConfig(secret, { NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => parseConfig({ ...secret, sensors: { keys: ['gateway-key-1', 'dev-sensor-key'] } }, { NODE_ENV: 'production' })).toThrow(
      /sensors\.keys\[1\]/,
    );
    expect(parseConfig({ ...secret, sensors: { keys: ['gateway-key-1'] } }, { NODE_ENV: 'production' }).sensors.keys).toEqual(['gateway-key-1']);
    // Outside production the development key is what the simulator uses.
    expect(parseConfig({}, {}).sensors.keys).toEqual(['dev-sensor-key']);
  });

  it('is frozen', () => {
    const config = parseConfig({});
    expect(Object.isFrozen(config.limits)).toBe(true);
  });
});
