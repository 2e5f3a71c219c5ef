// The live seat map of one branch, as the pages draw it: areas, their seats, each seat's state and
// flags, and per-area counts kept up to date one event at a time (an event costs O(1), not a pass
// over 2,000 seats). A snapshot replaces it whole, so its size is the branch's, however long the
// page runs. Seat events name only the seat: area and label come from the last snapshot.
import { computed, signal, type ReadonlySignal, type Signal } from '@preact/signals';
import type { LiveFlags, SeatEventFrame, SnapshotSeat } from '../wire.js';

/** The states the pages know, in the order the legend and the counts list them. */
export const STATES = ['free', 'reserved', 'occupied', 'away', 'unavailable'] as const;
export type KnownState = (typeof STATES)[number];

export interface CellValue {
  /** A state this page does not know (a newer server) shows as `unknown`. */
  state: KnownState | 'unknown';
  sensorOffline: boolean;
  unbookedOccupancy: boolean;
  holdUntil: string | undefined;
  /** When the last change arrived (ISO `at` of the event), or undefined for "as of the snapshot". */
  since: string | undefined;
}

export interface Cell {
  readonly id: number;
  readonly label: string;
  readonly area: Area;
  readonly value: Signal<CellValue>;
}

export interface Area {
  readonly name: string;
  readonly cells: Cell[];
  /** Seats in each state, and flag counts. */
  readonly counts: Signal<AreaCounts>;
  /** Its free seats alone: a page binds this to a text node, so an event does not re-render the area. */
  readonly free: ReadonlySignal<number>;
}

export type AreaCounts = Record<KnownState | 'unknown' | 'sensorOffline' | 'unbookedOccupancy', number>;

const zeroCounts = (): AreaCounts => ({ free: 0, reserved: 0, occupied: 0, away: 0, unavailable: 0, unknown: 0, sensorOffline: 0, unbookedOccupancy: 0 });

/** When an away hold ends, for a seat that is away and a server that says so (holdUntil); else undefined. */
function holdUntilOf(seat: object): string | undefined {
  const v = (seat as { holdUntil?: unknown }).holdUntil;
  return typeof v === 'string' ? v : undefined;
}

function toValue(state: string, flags: LiveFlags, holdUntil: string | undefined, since: string | undefined): CellValue {
  return {
    state: (STATES as readonly string[]).includes(state) ? (state as KnownState) : 'unknown',
    sensorOffline: flags.sensorOffline === true,
    unbookedOccupancy: flags.unbookedOccupancy === true,
    holdUntil,
    since,
  };
}

function count(c: AreaCounts, v: CellValue, by: 1 | -1): void {
  c[v.state] += by;
  if (v.sensorOffline) c.sensorOffline += by;
  if (v.unbookedOccupancy) c.unbookedOccupancy += by;
}

/** Natural order of labels: Q-2 before Q-10. */
const labelOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

export class Board {
  readonly branch = signal<{ id: number; name: string } | undefined>(undefined);
  readonly areas = signal<Area[]>([]);
  /** Every seat of the branch, by state and flag. */
  readonly totals: ReadonlySignal<AreaCounts & { total: number }> = computed(() => {
    const t = { ...zeroCounts(), total: 0 };
    for (const a of this.areas.value) {
      const c = a.counts.value;
      for (const k of Object.keys(c) as (keyof AreaCounts)[]) t[k] += c[k];
      t.total += a.cells.length;
    }
    return t;
  });
  /** Free seats of the whole branch (bound to text, as Area.free is). */
  readonly free: ReadonlySignal<number> = computed(() => this.totals.value.free);
  private cells = new Map<number, Cell>();

  /** Replaces the board with a snapshot's seats. */
  load(branch: { id: number; name: string }, seats: readonly (Omit<SnapshotSeat, 'state'> & { state: string })[]): void {
    const byArea = new Map<string, Area>();
    const cells = new Map<number, Cell>();
    for (const s of seats) {
      let area = byArea.get(s.area);
      if (!area) {
        const counts = signal(zeroCounts());
        area = { name: s.area, cells: [], counts, free: computed(() => counts.value.free) };
        byArea.set(s.area, area);
      }
      const cell: Cell = { id: s.seatId, label: s.label, area, value: signal(toValue(s.state, s.flags, holdUntilOf(s), undefined)) };
      area.cells.push(cell);
      cells.set(s.seatId, cell);
    }
    const areas = [...byArea.values()].sort((a, b) => labelOrder.compare(a.name, b.name));
    for (const a of areas) {
      a.cells.sort((x, y) => labelOrder.compare(x.label, y.label));
      const c = zeroCounts();
      for (const cell of a.cells) count(c, cell.value.peek(), 1);
      a.counts.value = c;
    }
    this.cells = cells;
    this.branch.value = branch;
    this.areas.value = areas;
  }

  /** Applies one seat event; false for a seat the last snapshot did not have. */
  apply(e: Pick<SeatEventFrame, 'seatId' | 'flags' | 'at'> & { state: string; holdUntil?: string }): boolean {
    const cell = this.cells.get(e.seatId);
    if (!cell) return false;
    const before = cell.value.peek();
    const after = toValue(e.state, e.flags, holdUntilOf(e), e.at);
    const c = { ...cell.area.counts.peek() };
    count(c, before, -1);
    count(c, after, 1);
    cell.value.value = after;
    cell.area.counts.value = c;
    return true;
  }

  cell(seatId: number): Cell | undefined {
    return this.cells.get(seatId);
  }

  get size(): number {
    return this.cells.size;
  }
}
