// A seat as a person names it on the command line: its id (digits, as `carrel seats` lists it)
// or its label ("G-13", printed on the desk), which is unique within a branch. A label found in
// one branch only needs no --branch; one found in several asks for it, naming them.
import type { SeatWire } from '../src/wire/types.js';
import { ClientError, UsageError, type Session } from './cliIo.js';

/** Longest label accepted (labels are short codes; this bounds what goes into a request). */
const MAX_LABEL_CHARS = 64;

export async function resolveSeat(s: Session, ref: string, branch?: string): Promise<SeatWire> {
  const text = ref.trim();
  if (/^\d+$/.test(text)) {
    const id = Number(text);
    if (!Number.isSafeInteger(id) || id < 1) throw new UsageError(`the seat must be an id or a label, got ${JSON.stringify(ref)}`);
    const seat = await s.zones.seat(id);
    if (!seat) throw new ClientError('NOT_FOUND', `no seat ${id}; \`carrel seats${branch === undefined ? '' : ` --branch '${branch}'`}\` lists them`, { seatId: id });
    if (branch !== undefined && !(await sameBranch(s, seat.branch, branch))) {
      throw new ClientError('NOT_FOUND', `seat ${id} is ${seat.label} in ${seat.branch}, not in ${branch}`, { seatId: id, branch });
    }
    return seat;
  }
  if (text === '' || text.length > MAX_LABEL_CHARS) throw new UsageError(`the seat must be an id or a label of at most ${MAX_LABEL_CHARS} characters`);
  const seats = await s.call('seats.list', branch === undefined ? {} : { branch });
  s.zones.know(seats);
  if (seats.length === 0 && branch !== undefined) throw await unknownBranch(s, branch);
  // Labels are typed as printed; upper or lower case finds the same desk.
  const matches = seats.filter((x) => x.label.toLowerCase() === text.toLowerCase());
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(`seat ${text} is in ${matches.map((m) => m.branch).join(' and ')}: add --branch, e.g. --branch '${matches[0]!.branch}'`);
  }
  const where = branch === undefined ? 'in any branch' : `in ${seats[0]!.branch}`;
  const sample = [...new Set(seats.map((x) => x.label.replace(/\d+$/, '')))].slice(0, 8);
  throw new ClientError('NOT_FOUND', `no seat labelled ${JSON.stringify(text)} ${where}${sample.length ? ` (labels start ${sample.join(', ')}…)` : ''}; \`carrel seats\` lists them`, {
    label: text,
  });
}

async function sameBranch(s: Session, name: string, ref: string): Promise<boolean> {
  const b = await s.zones.branch(ref).catch(() => undefined);
  return b === undefined ? name === ref : b.name === name;
}

/** NOT_FOUND naming the branches there are (a typo should not read as "no seat"). */
export async function unknownBranch(s: Session, ref: string): Promise<ClientError> {
  const list = await s.zones.branches();
  return new ClientError('NOT_FOUND', `no branch ${JSON.stringify(ref)}; branches: ${list.map((b) => b.name).join(', ')}`, { branch: ref });
}
