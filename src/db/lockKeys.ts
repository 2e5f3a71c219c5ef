// Every PostgreSQL advisory lock carrel takes, and its key (docs/architecture.md, "Advisory locks").
//
// PostgreSQL keeps two key spaces for advisory locks that never overlap: a pair of int4 keys, and
// one int8 key. carrel uses each for one kind of lock:
//
// - A lock on one object — a user, a seat — is the pair (class, id): the class below says what
//   kind of object, the id (the row's integer id) which one. These are transaction locks
//   (pg_advisory_xact_lock), let go at commit or rollback.
// - A lock on something a database has one of — the migrator, the lifecycle worker — is a single
//   int8 key below, held by a session (pg_advisory_lock, pg_try_advisory_lock) until it unlocks
//   or ends.
//
// Advisory locks belong to one database: two carrel databases on one server never contend.
//
// The values never change. While a rolling upgrade runs, instances of the previous release take
// the same locks as the new ones (docs/operations.md, "Upgrades"), and the two must exclude each
// other; two of the values are hashes that earlier releases computed in SQL, written out here.
// Statements pass a key as a parameter. The SQL functions (db/functions/) get the user class as
// their p_lock_class argument and state the seat class as a literal with its name beside it;
// test/unit/lockKeys.test.ts holds every advisory-lock call in src/ and db/functions/ to this list.

/** The int4 classes of the (class, id) locks. */
export const LockClass = {
  /** A user being given a booking, by carrel_book or carrel_claim: 'usbr'. Taken first. */
  userBooking: 0x7573_6272,
  /**
   * A seat being booked, by carrel_book, after userBooking: 'seit'. Meant as 'seat', it shipped
   * with this value (1936025972), which carrel_book states.
   */
  seatBooking: 0x7365_6974,
  /** A user joining a waitlist (Waitlist.join): hashtext('carrel.waitlist.user'). */
  waitlistJoin: 0x7fdf_3ff1,
  /** A branch's finished days being summed up by one instance (rollUpDays, src/reports/rollup.ts): 'roll'. */
  branchRollup: 0x726f_6c6c,
} as const;

/** The int8 keys of the once-per-database session locks. */
export const SessionLock = {
  /** Applying migrations and SQL functions (migrate): 'carr'. */
  migrate: 0x6361_7272n,
  /** One lifecycle tick at a time, across instances (LifecycleWorker.tick): hashtextextended('carrel.lifecycle', 0). */
  lifecycle: 0x2bce_6f8c_c904_8b84n,
  /** One occupancy-history upkeep at a time (carrel_history_maintain's p_lock_key): 'hist'. */
  historyMaintain: 0x6869_7374n,
} as const;
