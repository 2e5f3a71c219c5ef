// Loads config.json (or CARREL_CONFIG), applies the environment overrides, validates and
// freezes it. The only module that reads process.env: everything else is handed its slice.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_JWT_SECRET = 'carrel-development-secret-change-me';
/** The shipped config's sensor key, which the simulator uses by default (docs/operations.md). */
export const DEV_SENSOR_KEY = 'dev-sensor-key';

export interface LoadOptions {
  /** Path of the config file; defaults to CARREL_CONFIG, then ./config.json. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra values merged over the file before the environment (tests, CLI flags). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.CARREL_CONFIG ?? 'config.json';
  let raw: unknown = {};
  try {
    raw = JSON.parse(readFileSync(resolve(file), 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // A missing default file means "all defaults"; a named file that is missing is an error.
    if (!(e.code === 'ENOENT' && opts.file === undefined && env.CARREL_CONFIG === undefined)) {
      throw new ConfigError(`config: cannot read ${file}: ${e.message}`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config: ${file} must hold a JSON object`);
  }
  const merged = deepMerge(raw as Record<string, unknown>, opts.overrides ?? {});
  const fromEnv = applyEnv(merged, env);
  return parseConfig(merged, env, fromEnv);
}

/**
 * Validates and freezes. `fromEnv` maps key paths to the environment variable that set them,
 * so an error names what the operator actually typed: `LOG_LEVEL (log.level): …`.
 */
export function parseConfig(input: unknown, env: NodeJS.ProcessEnv = {}, fromEnv: ReadonlyMap<string, string> = new Map()): Readonly<Config> {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const path = issue.path.join('.');
      const key = issue.path.length === 0 ? '(root)' : fromEnv.has(path) ? `${fromEnv.get(path)} (${path})` : path;
      const unknown = issue.code === 'unrecognized_keys' ? `: unknown key ${issue.keys.join(', ')}` : '';
      return `  ${key}: ${issue.message}${unknown}`;
    });
    throw new ConfigError(`config is invalid:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (env.NODE_ENV === 'production' && config.auth.jwtSecret === DEFAULT_JWT_SECRET) {
    throw new ConfigError(
      'config: auth.jwtSecret is the shipped development secret; set JWT_SECRET for production',
    );
  }
  const devKey = config.sensors.keys.indexOf(DEV_SENSOR_KEY);
  if (env.NODE_ENV === 'production' && devKey >= 0) {
    // Everyone who has read the README knows this key: a sensor port accepting it in
    // production accepts readings from anyone.
    throw new ConfigError(
      `config: sensors.keys[${devKey}] is the shipped development sensor key "${DEV_SENSOR_KEY}"; replace it for production`,
    );
  }
  // The copy `carrel db seed` puts in sensor_keys is refused too (SensorKeyring).
  if (env.NODE_ENV === 'production' && !config.sensors.refuseKeys.includes(DEV_SENSOR_KEY)) {
    config.sensors.refuseKeys = [...config.sensors.refuseKeys, DEV_SENSOR_KEY];
  }
  return deepFreeze(config);
}

/** The keys the environment overrides (docs/operations.md, "Configuration"), by variable. */
const ENV_KEYS: ReadonlyArray<readonly [string, string[]]> = [
  ['DATABASE_URL', ['db', 'url']],
  ['REDIS_URL', ['redis', 'url']],
  ['JWT_SECRET', ['auth', 'jwtSecret']],
  ['LOG_LEVEL', ['log', 'level']],
  ['LOG_FORMAT', ['log', 'format']],
  ['METRICS_TOKEN', ['http', 'metricsToken']],
];

/** Sets the overridden keys; returns which key path each variable set ("log.level" → "LOG_LEVEL"). */
function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv): Map<string, string> {
  const fromEnv = new Map<string, string>();
  for (const [name, path] of ENV_KEYS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let node = target;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (child === null || typeof child !== 'object' || Array.isArray(child)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
    fromEnv.set(path.join('.'), name);
  }
  return fromEnv;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : value;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
