-- carrel_book_batch: every booking waiting when a database connection became free, in one round
-- trip (docs/architecture.md, "Group commit"; called by BookingQueue, src/core/bookingQueue.ts).
-- One statement, so one transaction and one commit for all of them; each booking gets its own
-- outcome row, and what fails for one is undone for that one alone.
--
-- p_items is a JSON array, in the order the bookings are served (arrival, or the opening lottery's
-- draw). Each item:
--   i        its index, echoed as `item`;
--   u        the user;
--   s        the seat, for a booking of one seat; or
--   b        the branch, for best-available, with the filters a (area), pw (has_power), mo
--            (has_monitor), n (near: a seat of the branch), sh (its shape: items of one batch with
--            the same branch, filters and window share a number) and fa, fl, fs (where the walk
--            starts: area, label, seat id; NULL to start at the beginning);
--   st, en   the booking's time [st, en);
--   k        the idempotency key, or NULL;
--   ps, pe, pq  the quota periods and their quotas (src/core/userRules.ts);
--   ms       how many milliseconds the item may still wait for a lock (NULL: no limit).
--
-- Each item, in order:
--   1. Its time left (ms, less the time this statement has run); none left → 'deadline'.
--   2. The per-user lock (p_lock_class = LockClass.userBooking, src/db/lockKeys.ts), TRIED: held by
--      another transaction means the same user's other booking or waitlist claim is in flight
--      (on another instance: this one sends at most one of a user's bookings at a time) →
--      'userBusy'. The checks below run under it and see whatever an earlier holder committed
--      (every statement of a VOLATILE PL/pgSQL function takes a fresh snapshot).
--   3. The idempotency key: a booking this user made with it → 'existing', that booking.
--   4. carrel_user_rules: one seat at a time, the active limit, the quotas → its outcome.
--   5. A seat — carrel_book_seat (db/functions/carrel_book_seat.sql): its lock
--      (LockClass.seatBooking) TRIED too, then the INSERT in a subtransaction of its own, which
--      the exclusion constraint reservations_no_overlap accepts or refuses:
--      - one seat: its lock held elsewhere → 'busy' (the caller sends the item again in its next
--        batch: by then the holder has committed, and this one meets its row, or has failed);
--        a clash → 'clash', detail = PostgreSQL's detail naming the clashing hold;
--        out of service or gone → 'outOfService';
--      - best-available: the branch's IN_SERVICE seats that match, in a stable order — area, label,
--        id, read a page of 32 at a time through seats_branch_order, from the item's start
--        position to the end and then from the beginning up to it (the caller keeps where the last
--        walk found a seat, so a walk does not re-read every seat booked before); with n, n's area
--        first, nearest label first, then the other areas in the stable order. A seat with an active hold overlapping [st, en + the branch's padding) is
--        skipped (reservations_seat_active_start), so is one whose lock another transaction
--        holds (noted: 'busy' if nothing else is free). The first seat locked and inserted is
--        the booking. None → 'noSeatFree', and the rest of the batch's items of that shape are
--        answered so without walking again.
--   A lock wait inside the INSERT (for another transaction's row being written or changed) ends
--   at the item's ms → 'deadline', or earlier at the batch's earliest ms (its commit must not
--   come after any of its callers was told DEADLINE_EXCEEDED) → 'busy'; a deadlock there →
--   'busy'; a user the users table no longer holds (the user_id foreign key) → 'accountGone'.
--
-- Why batches cannot deadlock each other, or anything else: a batch never waits for an advisory
-- lock — both of its locks are tried — so it waits only inside an INSERT, and only for a
-- transaction that is writing a row of the same seat without holding the seat's lock, or changing
-- a committed one (a cancel, the lifecycle): those take no advisory lock, never wait for a batch,
-- and every other writer of new holds (carrel_book, Waitlist.tryOffer) takes the seat's lock first.
-- docs/architecture.md, "Lock order", has the whole argument.
--
-- Outcome rows (src/core/bookingQueue.ts turns them into answers): item, outcome ('created',
-- 'existing', 'suspended', 'overlapsOwnBooking', 'maxActive', 'quota', 'outOfService', 'clash', 'busy',
-- 'userBusy', 'noSeatFree', 'deadline', 'accountGone'), period, used and other_id as
-- carrel_user_rules says, detail (a clash), resume_* (best-available: where the next walk of this
-- shape starts), and the reservation when there is one.
CREATE OR REPLACE FUNCTION carrel_book_batch(
  p_items jsonb,
  p_now timestamptz,
  p_lock_class integer,
  p_max_active integer,
  p_one_seat boolean
) RETURNS TABLE (
  item integer, outcome text, period integer, used integer, other_id bigint, detail text,
  resume_area text, resume_label text, resume_seat integer,
  id bigint, seat_id integer, user_id integer, branch_id integer, start_at timestamptz, end_at timestamptz,
  status text, created_at timestamptz, checked_in_at timestamptz, offer_expires_at timestamptz, waitlist_id bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  -- Walks read the branch's seats a page at a time, in index order (seats_branch_order).
  c_page constant integer := 32;
  v_t0 timestamptz := clock_timestamp();
  -- The earliest deadline among the items (ms from the start of this statement).
  v_commit_ms integer := (SELECT min((e ->> 'ms')::integer) FROM jsonb_array_elements(p_items) e);
  it record;
  v_rules record;
  v_try record;
  v_cur refcursor;
  -- The last seat's outcome in a walk: 'taken' and 'busy' go on to the next seat.
  v_res text;
  c record;
  v_left integer;
  v_elapsed integer;
  v_wait integer;
  v_outcome text;
  v_detail text;
  v_id bigint;
  v_seat integer;
  v_during tstzrange;
  v_created timestamptz;
  v_padding integer;
  v_hold_end timestamptz;
  v_phase integer;
  v_near_area text;
  v_near_label text;
  v_near_rank bigint;
  -- The walk's start (fa, fl, fs) and where its page reading has got to (ka, kl, ks).
  v_fa text;
  v_fl text;
  v_fs integer;
  v_ka text;
  v_kl text;
  v_ks integer;
  v_read integer;
  v_busy_area text;
  v_busy_label text;
  v_busy_seat integer;
  -- Per shape (index sh): where its next walk starts, whether the batch found it full.
  v_seen boolean[] := '{}';
  v_full boolean[] := '{}';
  v_from_area text[] := '{}';
  v_from_label text[] := '{}';
  v_from_seat integer[] := '{}';
BEGIN
  FOR it IN
    SELECT * FROM jsonb_to_recordset(p_items) AS x(
      i integer, u integer, s integer, b integer, a text, pw boolean, mo boolean, n integer, sh integer,
      fa text, fl text, fs integer, st timestamptz, en timestamptz, k text,
      ps timestamptz[], pe timestamptz[], pq integer[], ms integer)
    ORDER BY x.i
  LOOP
    v_outcome := NULL;
    v_detail := NULL;
    v_id := NULL;
    v_res := NULL;
    v_busy_seat := NULL;

    -- 1. Its time left, and how long its INSERT may wait for a lock: no longer than the batch's
    --    earliest deadline, so that the batch commits before any of its bookings' callers is told
    --    DEADLINE_EXCEEDED (a wait cut short for that reason is 'busy', retried in the next batch).
    v_left := NULL;
    v_elapsed := floor(extract(epoch FROM clock_timestamp() - v_t0) * 1000)::integer;
    IF it.ms IS NOT NULL THEN
      v_left := it.ms - v_elapsed;
      IF v_left < 1 THEN
        RETURN QUERY SELECT it.i, 'deadline'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::integer,
          NULL::bigint, NULL::integer, NULL::integer, NULL::integer, NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz,
          NULL::timestamptz, NULL::timestamptz, NULL::bigint;
        CONTINUE;
      END IF;
    END IF;
    v_wait := CASE WHEN v_commit_ms IS NULL THEN 0 ELSE greatest(1, least(coalesce(v_left, v_commit_ms), v_commit_ms - v_elapsed)) END;

    -- 2. The user's lock, tried.
    IF NOT pg_try_advisory_xact_lock(p_lock_class, it.u) THEN
      RETURN QUERY SELECT it.i, 'userBusy'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::integer,
        NULL::bigint, NULL::integer, NULL::integer, NULL::integer, NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::timestamptz,
        NULL::timestamptz, NULL::timestamptz, NULL::bigint;
      CONTINUE;
    END IF;

    -- 3. A retry with the key gets the booking it made.
    IF it.k IS NOT NULL THEN
      RETURN QUERY
        SELECT it.i, 'existing'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::integer,
               r.id, r.seat_id, r.user_id, s.branch_id, lower(r.during), upper(r.during), r.status, r.created_at, r.checked_in_at,
               r.offer_expires_at, r.waitlist_id
        FROM reservations r JOIN seats s ON s.id = r.seat_id
        WHERE r.user_id = it.u AND r.idempotency_key = it.k;
      IF FOUND THEN CONTINUE; END IF;
    END IF;

    -- 4. One seat at a time, the active limit, the quotas.
    SELECT * INTO v_rules FROM carrel_user_rules(it.u, it.st, it.en, p_now, p_max_active, p_one_seat, it.ps, it.pe, it.pq);
    IF v_rules.outcome IS NOT NULL THEN
      RETURN QUERY SELECT it.i, v_rules.outcome, v_rules.period, v_rules.used, v_rules.reservation_id, NULL::text, NULL::text, NULL::text,
        NULL::integer, NULL::bigint, NULL::integer, NULL::integer, NULL::integer, NULL::timestamptz, NULL::timestamptz, NULL::text,
        NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::bigint;
      CONTINUE;
    END IF;

    IF it.s IS NOT NULL THEN
      -- 5a. One seat.
      SELECT * INTO v_try FROM carrel_book_seat(it.s, it.u, it.st, it.en, it.k, p_now, false, v_wait, v_left);
      v_outcome := v_try.outcome;
      v_detail := v_try.detail;
      v_id := v_try.id;
      v_seat := v_try.seat_id;
      v_during := v_try.during;
      v_created := v_try.created_at;
    ELSIF it.sh IS NULL THEN
      RAISE EXCEPTION 'carrel_book_batch: item % names neither a seat nor a shape', it.i;
    ELSIF v_full[it.sh] THEN
      v_outcome := 'noSeatFree';
    ELSE
      -- 5b. Best-available: the walk.
      IF v_seen[it.sh] IS NULL THEN
        v_seen[it.sh] := true;
        v_from_area[it.sh] := it.fa;
        v_from_label[it.sh] := it.fl;
        v_from_seat[it.sh] := it.fs;
      END IF;
      -- Near: that seat's area first, nearest in label order (its rank there) first; the other
      -- areas after, from the beginning. Else: from where the last walk of this shape left off.
      v_near_area := NULL;
      IF it.n IS NOT NULL THEN
        SELECT s.area, s.label INTO v_near_area, v_near_label FROM seats s WHERE s.id = it.n AND s.branch_id = it.b;
        SELECT count(*) + 1 INTO v_near_rank FROM seats s
        WHERE s.branch_id = it.b AND s.area = v_near_area AND (s.label, s.id) < (v_near_label, it.n);
        v_fa := '';
        v_fl := '';
        v_fs := 0;
      ELSE
        v_fa := coalesce(v_from_area[it.sh], '');
        v_fl := coalesce(v_from_label[it.sh], '');
        v_fs := coalesce(v_from_seat[it.sh], 0);
      END IF;
      SELECT b.padding_minutes INTO v_padding FROM branches b WHERE b.id = it.b;
      v_hold_end := it.en + make_interval(mins => coalesce(v_padding, 0));
      FOR v_phase IN 1..3 LOOP
        IF v_phase = 1 THEN
          CONTINUE WHEN v_near_area IS NULL;
          FOR c IN
            SELECT q.id, q.area, q.label
            FROM (SELECT s.id, s.area, s.label, s.status, s.has_power, s.has_monitor,
                         row_number() OVER (ORDER BY s.label, s.id) AS rank
                  FROM seats s WHERE s.branch_id = it.b AND s.area = v_near_area) q
            WHERE q.status = 'IN_SERVICE' AND (it.a IS NULL OR q.area = it.a)
              AND (it.pw IS NULL OR q.has_power = it.pw) AND (it.mo IS NULL OR q.has_monitor = it.mo)
            ORDER BY abs(q.rank - v_near_rank), q.rank
          LOOP
            CONTINUE WHEN EXISTS (
              SELECT 1 FROM reservations r
              WHERE r.seat_id = c.id AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED')
                AND lower(r.hold) < v_hold_end AND lower(r.hold) > it.st - interval '28 hours' AND upper(r.hold) > it.st);
            SELECT * INTO v_try FROM carrel_book_seat(c.id, it.u, it.st, it.en, it.k, p_now, true, v_wait, v_left);
            v_res := v_try.outcome;
            EXIT WHEN v_res NOT IN ('taken', 'busy');
            IF v_res = 'busy' AND v_busy_seat IS NULL THEN
              v_busy_seat := c.id;
            END IF;
          END LOOP;
        ELSE
          -- Phase 2: from the start position to the end; phase 3: from the beginning up to it.
          -- Pages in index order, keyset by (area, label, id): a label is unique in its branch, so
          -- "after (fa, fl, fs - 1)" is "from (fa, fl, fs)", and "after ('', '', 0)" is everything.
          CONTINUE WHEN v_phase = 3 AND (it.n IS NOT NULL OR v_from_area[it.sh] IS NULL);
          IF v_phase = 2 THEN
            v_ka := v_fa;
            v_kl := v_fl;
            v_ks := v_fs - 1;
          ELSE
            v_ka := '';
            v_kl := '';
            v_ks := 0;
          END IF;
          LOOP
            -- The filters are checked on each row, not in the query: with them there PostgreSQL's
            -- generic plan guessed a handful of rows and sorted the whole branch instead of reading
            -- its index in order (test/integration/queryPlans.test.ts).
            IF it.a IS NULL THEN
              OPEN v_cur FOR
                SELECT s.id, s.area, s.label, s.has_power, s.has_monitor FROM seats s
                WHERE s.branch_id = it.b AND (s.area, s.label, s.id) > (v_ka, v_kl, v_ks) AND s.status = 'IN_SERVICE'
                ORDER BY s.branch_id, s.area, s.label, s.id
                LIMIT c_page;
            ELSE
              OPEN v_cur FOR
                SELECT s.id, s.area, s.label, s.has_power, s.has_monitor FROM seats s
                WHERE s.branch_id = it.b AND s.area = it.a AND (s.area, s.label, s.id) > (v_ka, v_kl, v_ks) AND s.status = 'IN_SERVICE'
                ORDER BY s.branch_id, s.area, s.label, s.id
                LIMIT c_page;
            END IF;
            v_read := 0;
            LOOP
              FETCH v_cur INTO c;
              EXIT WHEN NOT FOUND;
              v_read := v_read + 1;
              v_ka := c.area;
              v_kl := c.label;
              v_ks := c.id;
              -- Phase 3 ends where phase 2 began.
              IF v_phase = 3 AND (c.area, c.label, c.id) >= (v_fa, v_fl, v_fs) THEN
                v_read := 0;
                EXIT;
              END IF;
              CONTINUE WHEN (it.pw IS NOT NULL AND c.has_power <> it.pw) OR (it.mo IS NOT NULL AND c.has_monitor <> it.mo)
                OR c.area = v_near_area;
              -- Taken for the window (this batch's own bookings included)? Then the next seat.
              CONTINUE WHEN EXISTS (
                SELECT 1 FROM reservations r
                WHERE r.seat_id = c.id AND r.status IN ('CONFIRMED', 'CHECKED_IN', 'OFFERED')
                  AND lower(r.hold) < v_hold_end AND lower(r.hold) > it.st - interval '28 hours' AND upper(r.hold) > it.st);
              SELECT * INTO v_try FROM carrel_book_seat(c.id, it.u, it.st, it.en, it.k, p_now, true, v_wait, v_left);
              v_res := v_try.outcome;
              EXIT WHEN v_res NOT IN ('taken', 'busy');
              IF v_res = 'busy' AND v_busy_seat IS NULL THEN
                v_busy_area := c.area;
                v_busy_label := c.label;
                v_busy_seat := c.id;
              END IF;
            END LOOP;
            CLOSE v_cur;
            EXIT WHEN v_read < c_page OR v_res NOT IN ('taken', 'busy');
          END LOOP;
        END IF;
        EXIT WHEN v_res NOT IN ('taken', 'busy');
      END LOOP;
      IF v_res NOT IN ('taken', 'busy') THEN
        v_outcome := v_try.outcome;
        v_id := v_try.id;
        v_seat := v_try.seat_id;
        v_during := v_try.during;
        v_created := v_try.created_at;
      ELSIF v_busy_seat IS NOT NULL THEN
        v_outcome := 'busy';
      ELSE
        v_outcome := 'noSeatFree';
        v_full[it.sh] := true;
      END IF;
      -- Where the next walk of this shape starts: at the seat booked (the seats before it are
      -- taken, or locked by another batch that is booking them); with nothing booked, at the first
      -- seat found locked, which that other batch may yet give up.
      IF it.n IS NULL AND v_outcome = 'created' THEN
        v_from_area[it.sh] := c.area;
        v_from_label[it.sh] := c.label;
        v_from_seat[it.sh] := c.id;
      ELSIF it.n IS NULL AND v_busy_seat IS NOT NULL THEN
        v_from_area[it.sh] := v_busy_area;
        v_from_label[it.sh] := v_busy_label;
        v_from_seat[it.sh] := v_busy_seat;
      END IF;
    END IF;

    IF v_outcome = 'existing' THEN
      RETURN QUERY
        SELECT it.i, 'existing'::text, NULL::integer, NULL::integer, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::integer,
               r.id, r.seat_id, r.user_id, s.branch_id, lower(r.during), upper(r.during), r.status, r.created_at, r.checked_in_at,
               r.offer_expires_at, r.waitlist_id
        FROM reservations r JOIN seats s ON s.id = r.seat_id
        WHERE r.user_id = it.u AND r.idempotency_key = it.k;
      CONTINUE;
    END IF;
    RETURN QUERY SELECT it.i, v_outcome, NULL::integer, NULL::integer, NULL::bigint, v_detail,
      CASE WHEN it.sh IS NULL THEN NULL ELSE v_from_area[it.sh] END,
      CASE WHEN it.sh IS NULL THEN NULL ELSE v_from_label[it.sh] END,
      CASE WHEN it.sh IS NULL THEN NULL ELSE v_from_seat[it.sh] END,
      v_id, v_seat, CASE WHEN v_id IS NULL THEN NULL ELSE it.u END,
      CASE WHEN v_id IS NULL THEN NULL ELSE coalesce(it.b, (SELECT s.branch_id FROM seats s WHERE s.id = v_seat)) END,
      lower(v_during), upper(v_during), CASE WHEN v_id IS NULL THEN NULL ELSE 'CONFIRMED' END, v_created,
      NULL::timestamptz, NULL::timestamptz, NULL::bigint;
  END LOOP;
END
$$;
