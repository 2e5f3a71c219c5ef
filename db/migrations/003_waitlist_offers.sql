-- Indexes for the waitlist and the lifecycle worker (docs/protocol.md, "Reservation and waitlist
-- statuses"). The lifecycle finds lapsed offers by offer_expires_at, waitlist.mine finds an entry's
-- offer by waitlist_id, and the freed-slot matcher walks one seat's or one branch's waiters in FIFO
-- order.
CREATE INDEX reservations_offer_expiry ON reservations (offer_expires_at) WHERE status = 'OFFERED';
CREATE INDEX reservations_waitlist ON reservations (waitlist_id) WHERE waitlist_id IS NOT NULL;
CREATE INDEX waitlist_seat_waiting ON waitlist (seat_id, created_at, id) WHERE status = 'WAITING' AND seat_id IS NOT NULL;
CREATE INDEX waitlist_branch_waiting ON waitlist (branch_id, created_at, id) WHERE status = 'WAITING' AND branch_id IS NOT NULL;
