// A request's deadline, and its client's place at the fair gate in front of the database pool:
// what the RPC layer hands down with a request and the database layer honours. It lives here,
// beside errors.ts, because both ends need it and neither may import the other (rpc imports no
// db; docs/architecture.md, "Import rules"). src/db/deadline.ts makes database waits end at the
// deadline; src/db/admission.ts is the gate (docs/fairness.md).

/** Gives a gate's slot back; idempotent. */
export type ReleaseSlot = () => void;

/** The fair gate in front of the database pool (DbAdmission in src/db/admission.ts). */
export interface AdmissionGate {
  /**
   * A slot for `client`: at once when one is free and nobody waits, else after its turn, or
   * DEADLINE_EXCEEDED after waitMs; RESOURCE_EXHAUSTED at once past the gate's queues.
   */
  acquire(client: string, waitMs: number, share?: number): Promise<ReleaseSlot>;
  /** The place `client`'s requests take at this gate; `share`: see AdmissionTicket. */
  ticket(client: string, share?: number): AdmissionTicket;
}

/** What a request carries to the database layer: its client's place at the gate. */
export interface AdmissionTicket {
  readonly gate: AdmissionGate;
  readonly client: string;
  /**
   * Connections this client may hold at once, when not the gate's per-client bound: a client
   * that stands for many people (the booking queue's batches, docs/fairness.md). It still takes
   * its turn in the round robin like any other.
   */
  readonly share?: number;
}

export interface Deadline {
  /** Milliseconds left until the caller is told DEADLINE_EXCEEDED; ≤ 0 once that has happened. */
  remainingMs(): number;
  /** The request's client at the database gate; absent for work that is not a request. */
  readonly admission?: AdmissionTicket;
}

/** The deadline at atMs on the wall clock the RPC session measures deadlines by. */
export function deadlineAt(atMs: number, now: () => number = Date.now, admission?: AdmissionTicket): Deadline {
  return { remainingMs: () => atMs - now(), admission };
}
