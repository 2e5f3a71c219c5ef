// A fixed-capacity FIFO of encoded frames that drops its oldest entry when full (docs/protocol.md,
// "Slow consumers"). Each slot also remembers the event's branch and
// per-branch seq, so a subscriber finishing a resume can skip what it has already sent. The
// arrays are allocated once at the capacity: pushing never allocates.

export class FrameRing {
  private readonly frames: Array<Buffer | undefined>;
  private readonly seqs: Float64Array;
  private readonly branches: Int32Array;
  private head = 0;
  private count = 0;
  private byteCount = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
    this.frames = new Array<Buffer | undefined>(capacity);
    this.seqs = new Float64Array(capacity);
    this.branches = new Int32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes of the frames held (shared buffers are counted once per ring that holds them). */
  get bytes(): number {
    return this.byteCount;
  }

  /** Appends a frame; returns true when the oldest one was dropped to make room. */
  push(frame: Buffer, seq = 0, branchId = 0): boolean {
    let dropped = false;
    if (this.count === this.capacity) {
      this.byteCount -= this.frames[this.head]!.length;
      this.frames[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      dropped = true;
    }
    const tail = (this.head + this.count) % this.capacity;
    this.frames[tail] = frame;
    this.seqs[tail] = seq;
    this.branches[tail] = branchId;
    this.count++;
    this.byteCount += frame.length;
    return dropped;
  }

  /** The oldest frame, or undefined when empty. */
  peek(): Buffer | undefined {
    return this.count === 0 ? undefined : this.frames[this.head];
  }

  peekSeq(): number {
    return this.seqs[this.head]!;
  }

  peekBranch(): number {
    return this.branches[this.head]!;
  }

  /** The i-th oldest frame (0 = oldest), for replaying retained events. */
  at(i: number): Buffer | undefined {
    return i < 0 || i >= this.count ? undefined : this.frames[(this.head + i) % this.capacity];
  }

  seqAt(i: number): number {
    return this.seqs[(this.head + i) % this.capacity]!;
  }

  /** Removes and returns the oldest frame. */
  shift(): Buffer | undefined {
    if (this.count === 0) return undefined;
    const frame = this.frames[this.head]!;
    this.frames[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    this.byteCount -= frame.length;
    return frame;
  }

  clear(): void {
    this.frames.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.byteCount = 0;
  }
}
