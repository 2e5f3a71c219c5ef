// A branch's opening hours as they travel (docs/protocol.md, "Shapes used by many methods"):
// `sun` … `sat`, each `{open: "HH:MM", close: "HH:MM"}` on the branch's clock or null (closed).
// branches.list answers them, admin.branches.setHours takes them, and core reads them for the
// openingHours rule (src/core/rules.ts).

export const DAY_KEYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type DayKey = (typeof DAY_KEYS)[number];

export interface DayHours {
  open: string;
  close: string;
}

/** Opening hours per local weekday; a missing (or null) day is closed. */
export type BranchHours = Partial<Record<DayKey, DayHours | null>>;

/** "HH:MM" → minutes since midnight; "24:00" is allowed (end of day). Null when malformed. */
export function parseClock(text: string): number | null {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(text);
  if (!m) return null;
  const minutes = Number(m[1]) * 60 + Number(m[2]);
  return minutes <= 24 * 60 ? minutes : null;
}

/**
 * Checks an hours object for admin.branches.setHours; returns a message naming the bad day, or
 * null when it is valid. Each day is {open, close} with 00:00 <= open < close <= 24:00.
 */
export function validateHours(hours: Record<string, unknown>): string | null {
  for (const [day, value] of Object.entries(hours)) {
    if (!(DAY_KEYS as readonly string[]).includes(day)) return `${day}: not a day (use ${DAY_KEYS.join(', ')})`;
    if (value === null) continue;
    const v = value as { open?: unknown; close?: unknown };
    const open = typeof v.open === 'string' ? parseClock(v.open) : null;
    const close = typeof v.close === 'string' ? parseClock(v.close) : null;
    if (open === null || close === null) return `${day}: open and close must be "HH:MM" (close may be "24:00")`;
    if (open >= close) return `${day}: open must be before close`;
  }
  return null;
}
