// A fuzz harness for any port speaking carrel's framing (docs/protocol.md, "Framing"). A
// port is described by a FrameProtocol: how to generate cases (each a short list of frames sent on
// a fresh connection, some deliberately broken), what every reply must look like, and a probe frame
// whose reply proves the connection still works after the case. The RPC port
// (test/integration/badInput.test.ts), the sensor port (sensorFuzz.test.ts) and the subscriber
// port (subscriberBadInput.test.ts) each bring their own FrameProtocol to the same runner.
//
// A frame may end what can be known of its connection (`effect`):
// - 'closes': the server answers it and closes the connection (an oversized length, a sensor's
//   first frame that is not a good hello). Exactly the replies up to it must come, then the
//   close; frames after it, and the probe, earn nothing.
// - 'garbles': the frame boundary is lost (a length that lies, a truncated frame). The replies
//   to the frames before it must come; whatever else arrives must still pass checkReply; the
//   peer then hangs up and the server must close its side too.
// After such a case, protocol.alive() proves on a fresh connection that the server still serves.
import fc from 'fast-check';
import { expect } from 'vitest';
import { RawPeer, rawFrame } from './peer.js';

export type Reply = Record<string, unknown>;

export interface FuzzFrame {
  /**
   * The bytes on the wire, length prefix included (it may lie). Empty for an entry that only
   * stands for one more reply to the frame before it (a subscribe earns several, each checked apart).
   */
  bytes: Buffer;
  /** How many replies this frame earns (0 for fire-and-forget frames such as heartbeats). */
  replies: number;
  /** Checks one reply this frame may have earned; replies may come back in any order. */
  accepts(reply: Reply): boolean;
  /** For failure messages. */
  label: string;
  /** What this frame does to the connection's framing (see above); absent: it lives on. */
  effect?: 'closes' | 'garbles';
}

export interface FrameProtocol {
  name: string;
  cases: fc.Arbitrary<FuzzFrame[]>;
  /** Sent after each case; its reply must arrive, proving the connection is still served. */
  probe: { bytes: Buffer; isReply(reply: Reply): boolean };
  /** Invariants every reply on this port must satisfy (shape, closed code set, no leaks). */
  checkReply(reply: Reply): void;
  /** Proves on a fresh connection that the port still serves (after cases that close or garble). */
  alive?: () => Promise<void>;
}

export interface FuzzResult {
  cases: number;
  frames: number;
  replies: number;
  /** Cases that ended with a close ('closes') or a lost frame boundary ('garbles'). */
  closed: number;
  garbled: number;
}

/** Runs numRuns generated cases against port, each on its own connection; throws on the first violation. */
export async function fuzzPort(port: number, protocol: FrameProtocol, opts: { seed: number; numRuns: number }): Promise<FuzzResult> {
  const result: FuzzResult = { cases: 0, frames: 0, replies: 0, closed: 0, garbled: 0 };
  await fc.assert(
    fc.asyncProperty(protocol.cases, async (frames) => {
      const end = frames.findIndex((f) => f.effect !== undefined);
      if (end >= 0) {
        await endingCase(port, protocol, frames, end, result);
        await protocol.alive?.();
        return;
      }
      const peer = await RawPeer.connect(port);
      try {
        const expected = frames.reduce((n, f) => n + f.replies, 0);
        peer.write(Buffer.concat([...frames.map((f) => f.bytes), protocol.probe.bytes]));
        const replies = await peer.waitFrames(expected + 1, 5000);
        expect(replies).toHaveLength(expected + 1);
        for (const r of replies) protocol.checkReply(r);
        const probeAt = replies.findIndex((r) => protocol.probe.isReply(r));
        expect(probeAt, `${protocol.name}: probe answered`).toBeGreaterThanOrEqual(0);
        const rest = replies.filter((_, i) => i !== probeAt);
        // Match each reply to a frame that accepts it (a bipartite matching by backtracking;
        // cases are a handful of frames, so this stays tiny).
        const slots = frames.flatMap((f) => Array.from({ length: f.replies }, () => f));
        if (!matchAll(rest, slots)) {
          throw new Error(`${protocol.name}: replies ${JSON.stringify(rest).slice(0, 2000)} do not fit frames ${slots.map((s) => s.label).join(' | ')}`);
        }
        result.cases++;
        result.frames += countFrames(frames);
        result.replies += replies.length;
      } finally {
        peer.destroy();
        await peer.closed;
      }
    }),
    { seed: opts.seed, numRuns: opts.numRuns, endOnFailure: true },
  );
  await protocol.alive?.();
  return result;
}

/** A case whose frame `end` closes the connection or loses the frame boundary (see the top). */
async function endingCase(port: number, protocol: FrameProtocol, frames: FuzzFrame[], end: number, result: FuzzResult): Promise<void> {
  const last = frames[end]!;
  const before = frames.slice(0, last.effect === 'closes' ? end + 1 : end);
  const slots = before.flatMap((f) => Array.from({ length: f.replies }, () => f));
  const peer = await RawPeer.connect(port);
  try {
    peer.write(Buffer.concat([...frames.map((f) => f.bytes), protocol.probe.bytes]));
    if (last.effect === 'garbles') {
      // What follows the lost boundary is the server's to make sense of; we are done sending.
      await peer.waitFrames(slots.length, 5000).catch(() => undefined);
      peer.socket.end();
    }
    const closed = await Promise.race([peer.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    expect(closed, `${protocol.name}: the server closes after ${last.label}`).toBe(true);
    const replies = peer.frames;
    for (const r of replies) protocol.checkReply(r);
    const fits = last.effect === 'closes' ? matchAll(replies, slots) : matchSome(replies, slots);
    if (!fits) {
      throw new Error(`${protocol.name}: replies ${JSON.stringify(replies).slice(0, 2000)} do not fit frames ${slots.map((s) => s.label).join(' | ')} (ended by ${last.label})`);
    }
    result.cases++;
    result.frames += countFrames(frames);
    result.replies += replies.length;
    if (last.effect === 'closes') result.closed++;
    else result.garbled++;
  } finally {
    peer.destroy();
    await peer.closed;
  }
}

function countFrames(frames: FuzzFrame[]): number {
  return frames.filter((f) => f.bytes.length > 0).length;
}

/** Every slot gets a distinct reply it accepts; replies left over are allowed. */
function matchSome(replies: Reply[], slots: FuzzFrame[]): boolean {
  if (replies.length < slots.length) return false;
  const used = new Array<boolean>(replies.length).fill(false);
  const go = (i: number): boolean => {
    if (i === slots.length) return true;
    for (let j = 0; j < replies.length; j++) {
      if (!used[j] && slots[i]!.accepts(replies[j]!)) {
        used[j] = true;
        if (go(i + 1)) return true;
        used[j] = false;
      }
    }
    return false;
  };
  return go(0);
}

function matchAll(replies: Reply[], slots: FuzzFrame[]): boolean {
  if (replies.length !== slots.length) return false;
  const used = new Array<boolean>(slots.length).fill(false);
  const go = (i: number): boolean => {
    if (i === replies.length) return true;
    for (let j = 0; j < slots.length; j++) {
      if (!used[j] && slots[j]!.accepts(replies[i]!)) {
        used[j] = true;
        if (go(i + 1)) return true;
        used[j] = false;
      }
    }
    return false;
  };
  return go(0);
}

/** A frame whose length prefix tells the truth. */
export function framed(payload: string | Buffer): Buffer {
  return rawFrame(payload);
}

/** Heap in use after a full collection, when the runtime lets us ask for one. */
export async function settledHeapBytes(): Promise<number> {
  const v8 = await import('node:v8');
  const vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

/** Resolves when cond() holds, checking on each timer turn; rejects after timeoutMs. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
