// One port's budget of bytes held in unfinished frames (limits.maxPartialFrameBytesPerPort).
//
// Each connection may legitimately hold up to one frame it has not finished sending, so without
// a shared budget a port's worst case is maxConnections × maxFrameBytes (4096 × 1 MiB), and an
// attacker who keeps reconnecting holds it for good: 1,500 silent connections with 1 MiB partial
// frames took a server from 480 to 1,590 MiB RSS. With it, the bytes a port holds for unfinished
// frames stay under maxBytes once each read has been taken in.
//
// When a read takes the total over the budget, the holder of the most bytes is evicted (its bytes
// dropped at once, the connection closed with RESOURCE_EXHAUSTED), then the next largest, until
// the total is under. The largest rather than the one receiving: honest frames are mostly small
// and finish within a read or two, so a flood of large partial frames costs the flooder, and an
// honest client sending the next small frame is not the one cut off. Each eviction frees at
// least the average holding, so the scan over holders (only connections with a partial frame)
// is paid rarely.

export class FrameBudget<H> {
  private readonly held = new Map<H, number>();
  /** Bytes held in unfinished frames by every holder now. */
  total = 0;
  /** The highest total seen once a read has been taken in (the budget's own check). */
  peak = 0;
  /** Holders closed to get back under the budget. */
  evictions = 0;

  constructor(
    readonly maxBytes: number,
    /** Drops the holder's bytes and closes it; must call set(holder, 0). */
    private readonly evict: (holder: H) => void,
  ) {}

  get holders(): number {
    return this.held.size;
  }

  /** The holder now holds `bytes`; evicts the largest holders while the total is over the budget. */
  set(holder: H, bytes: number): void {
    const before = this.held.get(holder) ?? 0;
    if (bytes === before) return;
    if (bytes === 0) this.held.delete(holder);
    else this.held.set(holder, bytes);
    this.total += bytes - before;
    while (this.total > this.maxBytes) {
      const victim = this.largest();
      if (victim === undefined) break;
      this.evictions++;
      this.evict(victim);
      // An evict that forgot to release must not spin this loop.
      if (this.held.has(victim)) this.set(victim, 0);
    }
    if (this.total > this.peak) this.peak = this.total;
  }

  private largest(): H | undefined {
    let best: H | undefined;
    let most = 0;
    // Map order is insertion order: on a tie the one holding its bytes longest goes first.
    for (const [h, n] of this.held) {
      if (n > most) {
        most = n;
        best = h;
      }
    }
    return best;
  }
}
