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
    [{ sensors: { maxFrameBytes: 10 } }, 'sensors.maxFrameBytes'],
    [{ pubsub: { maxFrameBytes: '32k' } }, 'pubsub.maxFrameBytes'],
    [{ limits: { maxPartialFrameBytesPerPort: -1 } }, 'limits.maxPartialFrameBytesPerPort'],
    // Smaller than one whole frame of the largest kind: such a frame could never finish.
    [{ limits: { maxPartialFrameBytesPerPort: 1024 * 1024 } }, 'limits.maxPartialFrameBytesPerPort'],
    [{ sensors: { maxFrameBytes: 8 * 1024 * 1024 }, limits: { maxPartialFrameBytesPerPort: 4 * 1024 * 1024 } }, 'limits.maxPartialFrameBytesPerPort'],
  ])('a bad value fails with a message naming the key: %j', (bad, key) => {
    const file = writeConfig(bad);
    expect(() => loadConfig({ file, env: {} })).toThrow(ConfigError);
    expect(() => loadConfig({ file, env: {} })).toThrow(key);
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

  it('a file that is not JSON fails clearly', () => {
    const file = writeConfig('{ nope');
    expect(() => loadConfig({ file, env: {} })).toThrow(/cannot read/);
  });

  it('a named file that is missing fails instead of falling back to defaults', () => {
    expect(() => loadConfig({ file: '/nonexistent/carrel.json', env: {} })).toThrow(/cannot read/);
  });

  it('refuses the development JWT secret in production', () => {
    expect(() => parseConfig({}, { NODE_ENV: 'production' })).toThrow(/auth.jwtSecret/);
    expect(parseConfig({ auth: { jwtSecret: 'x'.repeat(32) } }, { NODE_ENV: 'production' }).auth.jwtSecret).toHaveLength(32);
  });

  it('is frozen', () => {
    const config = parseConfig({});
    expect(Object.isFrozen(config.limits)).toBe(true);
  });
});
