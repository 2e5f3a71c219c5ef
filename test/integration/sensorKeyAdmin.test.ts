// Sensor keys carry a branch scope and an admin manages them (docs/sensors.md). Audit: any key
// could write any seat of any branch, and keys could only be made by hand in SQL. Now a key made
// with `admin.sensors.addKey` / `carrel admin sensor-keys add --branch …` may write only that
// branch's seats (others are refused per reading, OUT_OF_SCOPE); the key is shown once and only its
// digest is stored; a list never shows a secret; a revoked key is refused at its next hello and its
// open connections close; only an admin may do any of it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenStore, tokenFilePath } from '../../clients/tokenStore.js';
import { RpcClient } from '../../clients/rpcClient.js';
import { sha256Hex } from '../../src/sensors/sensorKeys.js';
import { RawPeer } from '../support/peer.js';
import type { SensorKeyWire } from '../../src/wire/types.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { connect, makeUsers, type TestUser } from '../support/core.js';
import { runCli } from '../support/cli.js';
import { branchSeats, connectSensor, seatEvents, sendReadings, subscribe, waitFor } from '../support/live.js';

type KeyRecord = SensorKeyWire & { key?: string };

let t: TestServer;
let admin: TestUser;
let student: TestUser;
let asAdmin: RpcClient;
let mainId: number;
let medicalId: number;

beforeAll(async () => {
  // A quick recheck, so a revoke made elsewhere (another instance, by hand) is seen within the test.
  t = await startTestServer({ lifecycle: { enabled: false }, sensors: { keyRecheckMs: 100 } });
  admin = (await makeUsers(t, 1, 'keys-admin', 'admin'))[0]!;
  student = (await makeUsers(t, 1, 'keys-student'))[0]!;
  asAdmin = await connect(t, admin);
  const branches = await t.db.pool.query<{ id: number; name: string }>('SELECT id, name FROM branches');
  mainId = branches.rows.find((b) => b.name === 'Main Library')!.id;
  medicalId = branches.rows.find((b) => b.name === 'Medical Library')!.id;
});
afterAll(async () => {
  asAdmin?.close();
  await t.close();
});

/** Says hello; the first frame back (welcome, or the error before the close). */
async function hello(key: string, sensorId = 'gw-scope'): Promise<{ peer: RawPeer; first: Record<string, unknown> }> {
  const peer = await RawPeer.connect(t.server.ports.sensor);
  peer.send({ type: 'hello', sensorId, key });
  return { peer, first: (await peer.waitFrames(1))[0]! };
}

const keyCount = async () => (await t.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_keys')).rows[0]!.n;

describe('a key scoped to a branch', () => {
  it('writes its own branch\'s seats; another branch\'s seat is refused per reading (OUT_OF_SCOPE) and unchanged', async () => {
    const made = await asAdmin.call<KeyRecord>('admin.sensors.addKey', { name: 'main-gw-1', branch: 'Main Library' });
    const [main1, main2] = await branchSeats(t.db.pool, 'Main Library', 2);
    const [medical] = await branchSeats(t.db.pool, 'Medical Library', 1);
    const watch = await subscribe(t.server.ports.pubsub, { branch: '*' });
    await waitFor(watch, (f) => f.type === 'snapshot' && f.branchId === medicalId);
    const { peer, first } = await hello(made.key!);
    expect(first).toMatchObject({ type: 'welcome', branchId: mainId });
    const now = Date.now();
    const ack = await sendReadings(peer, [
      { seatId: main1!, occupied: true, at: now },
      { seatId: medical!, occupied: true, at: now },
      { seatId: main2!, occupied: true, at: now },
    ]);
    expect(ack).toEqual({ type: 'ack', ref: ack.ref, applied: 2, stale: 0, refused: { OUT_OF_SCOPE: [1] }, unknownSeats: [] });
    await waitFor(watch, () => seatEvents(watch).length === 2);
    expect(seatEvents(watch).map((e) => e.seatId)).toEqual([main1, main2]);
    expect(t.live.model.seat(medical!)!.state).toBe('free');
    // The development key (from config, unscoped) may write every branch.
    const dev = await connectSensor(t.server.ports.sensor, { sensorId: 'gw-dev' });
    expect(dev.frames[0]).toMatchObject({ type: 'welcome', branchId: null });
    expect(await sendReadings(dev, [{ seatId: medical!, occupied: true, at: Date.now() }])).toMatchObject({ applied: 1, refused: {} });
    for (const p of [peer, dev, watch]) p.destroy();
  });
});

describe('admin.sensors.* over RPC', () => {
  it('add shows the key once and stores only its digest; list never shows a secret; names are unique', async () => {
    const made = await asAdmin.call<KeyRecord>('admin.sensors.addKey', { name: 'medical-gw-1', branch: medicalId });
    expect(made).toMatchObject({ name: 'medical-gw-1', branchId: medicalId, branch: 'Medical Library', revokedAt: null });
    expect(made.key).toMatch(/^csk_[A-Za-z0-9_-]{43}$/);
    const digest = sha256Hex(made.key!);
    expect(made.fingerprint).toBe(digest.slice(0, 12));
    // Nothing in the table is the key; its digest is.
    const row = await t.db.pool.query('SELECT row_to_json(k)::text AS json, key_sha256 FROM sensor_keys k WHERE id = $1', [made.id]);
    expect(row.rows[0].key_sha256).toBe(digest);
    expect(row.rows[0].json).not.toContain(made.key!.slice(4));

    const all = await asAdmin.call<KeyRecord[]>('admin.sensors.listKeys');
    const text = JSON.stringify(all);
    expect(text).not.toContain(made.key!.slice(4));
    expect(text).not.toContain(digest);
    for (const k of all) expect(Object.keys(k).sort()).toEqual(['branch', 'branchId', 'createdAt', 'fingerprint', 'id', 'name', 'revokedAt']);
    const { key: _shownOnce, ...record } = made;
    expect(all).toContainEqual(record);
    // The seeded development key: every branch.
    expect(all).toContainEqual(expect.objectContaining({ name: 'development', branchId: null, branch: null }));
    const medical = await asAdmin.call<KeyRecord[]>('admin.sensors.listKeys', { branch: 'Medical Library' });
    expect(medical.map((k) => k.name)).toEqual(['medical-gw-1']);

    expect((await asAdmin.request('admin.sensors.addKey', [{ name: 'medical-gw-1', branch: 'Main Library' }])).error).toMatchObject({ code: 'CONFLICT' });
    expect((await asAdmin.request('admin.sensors.addKey', [{ name: 'nowhere-gw', branch: 'Atlantis' }])).error).toMatchObject({ code: 'NOT_FOUND' });
    expect((await asAdmin.request('admin.sensors.listKeys', [{ branch: 'Atlantis' }])).error).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a revoked key is refused at its next hello, and its open connection is closed at once', async () => {
    const made = await asAdmin.call<KeyRecord>('admin.sensors.addKey', { name: 'main-gw-revoked', branch: 'Main Library' });
    const open = await hello(made.key!, 'gw-open');
    expect(open.first).toMatchObject({ type: 'welcome' });
    // The wrong branch as a check: nothing is revoked.
    expect((await asAdmin.request('admin.sensors.revokeKey', [{ name: 'main-gw-revoked', branch: 'Medical Library' }])).error).toMatchObject({ code: 'NOT_FOUND' });
    const revoked = await asAdmin.call<KeyRecord>('admin.sensors.revokeKey', { name: 'main-gw-revoked', branch: 'Main Library' });
    expect(revoked).toMatchObject({ id: made.id, revokedAt: expect.any(String) });
    await open.peer.closed;
    expect(open.peer.frames.at(-1)).toMatchObject({ type: 'error', code: 'PERMISSION_DENIED', message: 'this sensor key was revoked' });
    const again = await hello(made.key!);
    expect(again.first).toMatchObject({ type: 'error', code: 'PERMISSION_DENIED' });
    await again.peer.closed;
    // Revoking again changes nothing; the list shows it only when asked.
    expect(await asAdmin.call('admin.sensors.revokeKey', { id: made.id })).toEqual(revoked);
    expect((await asAdmin.call<KeyRecord[]>('admin.sensors.listKeys')).map((k) => k.id)).not.toContain(made.id);
    expect(await asAdmin.call<KeyRecord[]>('admin.sensors.listKeys', { includeRevoked: true })).toContainEqual(revoked);
    expect((await asAdmin.request('admin.sensors.revokeKey', [{ id: 999_999 }])).error).toMatchObject({ code: 'NOT_FOUND' });
    expect(t.live.revokedKeys.closed).toBeGreaterThanOrEqual(1);
  });

  it('a key revoked behind this instance\'s back (another instance, by hand) is cut off within sensors.keyRecheckMs', async () => {
    const made = await asAdmin.call<KeyRecord>('admin.sensors.addKey', { name: 'main-gw-elsewhere', branch: mainId });
    const open = await hello(made.key!, 'gw-elsewhere');
    expect(open.first).toMatchObject({ type: 'welcome' });
    await t.db.pool.query('UPDATE sensor_keys SET revoked_at = now() WHERE id = $1', [made.id]);
    await open.peer.closed;
    expect(open.peer.frames.at(-1)).toMatchObject({ type: 'error', code: 'PERMISSION_DENIED' });
  });

  it('a student cannot add, list or revoke keys, nor can anyone without a token; bad arguments are INVALID_ARGUMENT', async () => {
    const before = await keyCount();
    const calls: Array<[string, unknown]> = [
      ['admin.sensors.addKey', { name: 'sneaky-gw', branch: 'Main Library' }],
      ['admin.sensors.listKeys', {}],
      ['admin.sensors.revokeKey', { name: 'development' }],
    ];
    const asStudent = await connect(t, student);
    const anonymous = await connect(t);
    try {
      for (const [method, args] of calls) {
        expect((await asStudent.request(method, [args])).error?.code, method).toBe('PERMISSION_DENIED');
        expect((await anonymous.request(method, [args])).error?.code, method).toBe('UNAUTHENTICATED');
      }
    } finally {
      asStudent.close();
      anonymous.close();
    }
    expect(await keyCount()).toBe(before);
    expect((await t.db.pool.query("SELECT revoked_at FROM sensor_keys WHERE name = 'development'")).rows[0].revoked_at).toBeNull();
    for (const args of [
      { name: 'x'.repeat(5000), branch: 'Main Library' },
      { name: '12345', branch: 'Main Library' },
      { name: 'has space', branch: 'Main Library' },
      { name: 'ok-name', branch: 'b'.repeat(5000) },
      { name: 'ok-name' },
      { name: 'ok-name', branch: 'Main Library', key: 'chosen-by-caller' },
    ]) {
      expect((await asAdmin.request('admin.sensors.addKey', [args])).error?.code, JSON.stringify(args).slice(0, 60)).toBe('INVALID_ARGUMENT');
    }
    expect((await asAdmin.request('admin.sensors.revokeKey', [{ id: 1, name: 'development' }])).error?.code).toBe('INVALID_ARGUMENT');
    expect(await keyCount()).toBe(before);
  });
});

describe('carrel admin sensor-keys', () => {
  const server = () => `127.0.0.1:${t.server.ports.rpc}`;
  function loggedIn(user: TestUser): NodeJS.ProcessEnv {
    const env = { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'carrel-keys-')) };
    new TokenStore(tokenFilePath(env)).set(server(), { token: user.token, expiresAt: '2999-01-01T00:00:00Z', user: { id: user.id, studentId: user.studentId, name: user.studentId, role: 'student' } });
    return env;
  }
  const carrel = (env: NodeJS.ProcessEnv, ...argv: string[]) => runCli(['admin', 'sensor-keys', ...argv, '--server', server()], { env });

  it('add prints the key once; list shows no secret; revoke by id; the key is then refused', async () => {
    const env = loggedIn(admin);
    const added = await carrel(env, 'add', 'cli-medical-gw', '--branch', 'Medical Library');
    expect(added.code).toBe(0);
    const key = /^\s+(csk_\S+)$/m.exec(added.stdout)?.[1];
    expect(key).toMatch(/^csk_/);
    expect(added.stdout).toContain('for Medical Library');
    expect(added.stdout).toMatch(/only time it is shown/);
    const { first, peer } = await hello(key!);
    expect(first).toMatchObject({ type: 'welcome', branchId: medicalId });
    peer.destroy();

    const list = await carrel(env, 'list', '--branch', 'Medical Library');
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+BRANCH\s+FINGERPRINT\s+CREATED\s+REVOKED$/);
    expect(list.stdout).toMatch(/cli-medical-gw\s+Medical Library\s+[0-9a-f]{12}/);
    expect(list.stdout).not.toContain(key!.slice(4));
    const json = await carrel(env, 'list', '--json');
    expect(json.stdout).not.toContain(key!.slice(4));
    expect(json.stdout).not.toContain(sha256Hex(key!));
    const record = (JSON.parse(json.stdout) as KeyRecord[]).find((k) => k.name === 'cli-medical-gw')!;

    const revoked = await carrel(env, 'revoke', String(record.id));
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(/^revoked sensor key "cli-medical-gw" \(id \d+, Medical Library\)/);
    const after = await hello(key!);
    expect(after.first).toMatchObject({ type: 'error', code: 'PERMISSION_DENIED' });
    const withRevoked = await carrel(env, 'list', '--revoked', '--json');
    expect((JSON.parse(withRevoked.stdout) as KeyRecord[]).find((k) => k.id === record.id)?.revokedAt).toEqual(expect.any(String));
  });

  it('a student is refused with PERMISSION_DENIED and exit code 1; a missing --branch is a usage error', async () => {
    const env = loggedIn(student);
    const before = await keyCount();
    for (const argv of [['add', 'student-gw', '--branch', 'Main Library'], ['list'], ['revoke', 'development']]) {
      const run = await carrel(env, ...argv);
      expect(run.code, argv.join(' ')).toBe(1);
      expect(run.stderr).toMatch(/^error PERMISSION_DENIED: /);
    }
    const noBranch = await carrel(loggedIn(admin), 'add', 'branchless-gw');
    expect(noBranch.code).not.toBe(0);
    expect(noBranch.stderr).toMatch(/--branch/);
    expect(await keyCount()).toBe(before);
  });
});
