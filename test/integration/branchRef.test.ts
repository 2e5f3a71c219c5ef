// One rule names a branch (docs/protocol.md, "Branch references"), applied in two places: in
// memory by findBranch (src/wire/branchRef.ts: the subscriber hub, the CLI) and in SQL by
// branchIdSql (src/core/branchRef.ts: seats.list, waitlist.join, admin.*). This holds the two to
// each other on names that only differ in case, a name of digits and a name outside ASCII, in
// PostgreSQL itself and through the server's methods and its subscriber port.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { branchIdSql } from '../../src/core/branchRef.js';
import { findBranch, parseBranchRef } from '../../src/wire/branchRef.js';
import { connect } from '../support/core.js';
import { subscribe } from '../support/live.js';
import { startTestServer, type TestServer } from '../support/server.js';

const TRICKY = ['Case Hall', 'case hall', 'CASE HALL', '4242', 'Ünïcode Hall', 'ünïcode hall x'];
let t: TestServer;
let branches: Array<{ id: number; name: string }>;

beforeAll(async () => {
  t = await startTestServer({ lifecycle: { enabled: false } });
  const hours = JSON.stringify({ mon: { open: '00:00', close: '24:00' } });
  for (const name of TRICKY) {
    const b = await t.db.pool.query<{ id: number }>(`INSERT INTO branches (name, timezone, hours) VALUES ($1, 'UTC', $2) RETURNING id`, [name, hours]);
    // One seat each, labelled with its branch's id, so a listing shows which branch it found.
    await t.db.pool.query(`INSERT INTO seats (branch_id, area, label) VALUES ($1, 'Hall', $2)`, [b.rows[0]!.id, `B${b.rows[0]!.id}`]);
  }
  branches = (await t.db.pool.query<{ id: number; name: string }>('SELECT id, name FROM branches ORDER BY id')).rows;
  await t.live.refresh();
});
afterAll(async () => t?.close());

/** The references worth trying: every name in three cases, and ids as numbers and digits. */
function references(): Array<string | number> {
  const out: Array<string | number> = ['No Such Hall', 'case  hall', 'Case Hall ', '00', '007'];
  for (const b of branches) out.push(b.name, b.name.toLowerCase(), b.name.toUpperCase(), b.id, String(b.id), `0${b.id}`);
  return out;
}

const inMemory = (value: string | number): number | null => {
  const ref = parseBranchRef(value);
  return typeof ref === 'string' ? null : (findBranch(ref, branches)?.id ?? null);
};

describe('a branch reference', () => {
  it('names the same branch in PostgreSQL as in memory', async () => {
    for (const value of references()) {
      const ref = parseBranchRef(value);
      if (typeof ref === 'string') continue;
      const sql = branchIdSql(ref, '$1');
      const res = await t.db.pool.query<{ id: number }>(`SELECT id FROM branches WHERE id = ${sql.sql}`, [sql.value]);
      expect(res.rows[0]?.id ?? null, JSON.stringify(value)).toBe(inMemory(value));
    }
  });

  it('resolves the tricky names as the rule says', () => {
    const id = (name: string) => branches.find((b) => b.name === name)!.id;
    expect(inMemory('case hall')).toBe(id('case hall'));
    expect(inMemory('CASE HALL')).toBe(id('CASE HALL'));
    expect(inMemory('cAsE hAlL')).toBe(id('Case Hall'));
    expect(inMemory('ÜNÏCODE HALL')).toBe(id('Ünïcode Hall'));
    expect(inMemory('4242')).toBeNull();
    expect(inMemory(id('4242'))).toBe(id('4242'));
  });

  it('lists the same branch through seats.list, and subscribes the same one on the subscriber port', async () => {
    const c = await connect(t);
    try {
      for (const value of references()) {
        const expected = inMemory(value);
        let reply = await c.request('seats.list', [{ branch: value }]);
        // Anonymous reads are rate-limited per connection: wait as told, then ask again.
        while (reply.error?.code === 'RESOURCE_EXHAUSTED') {
          await new Promise((r) => setTimeout(r, Number(reply.error!.details?.retryAfterMs ?? 50)));
          reply = await c.request('seats.list', [{ branch: value }]);
        }
        if (typeof parseBranchRef(value) === 'string') {
          expect(reply.error?.code, JSON.stringify(value)).toBe('INVALID_ARGUMENT');
          continue;
        }
        const seats = reply.result as Array<{ label: string }> | null;
        if (!seats) throw new Error(`${JSON.stringify(value)}: ${JSON.stringify(reply.error)}`);
        const branchOf = (s: { label: string }) => Number(s.label.slice(1));
        if (expected === null) expect(seats, JSON.stringify(value)).toEqual([]);
        else if (TRICKY.includes(branches.find((b) => b.id === expected)!.name)) expect(seats!.map(branchOf), JSON.stringify(value)).toEqual([expected]);
        else expect(seats!.length, JSON.stringify(value)).toBeGreaterThan(1);

        const peer = await subscribe(t.server.ports.pubsub, { branch: value });
        const first = peer.frames[0]!;
        if (expected === null) expect(first, JSON.stringify(value)).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
        else expect((first.branches as Array<{ id: number }>)[0]!.id, JSON.stringify(value)).toBe(expected);
        peer.destroy();
      }
    } finally {
      c.close();
    }
  });
});
