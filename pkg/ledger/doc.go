// Package ledger is promoengine's state: catalog versions, points lots and
// their journal, membership levels, program limits and the processed orders
// that returns and cancellations refer to. All SQL of state lives here; the
// workers only open transactions and call in, and pkg/rules only asks the
// narrow questions of rules.LimitsReader.
//
// # One event, one transaction, few round trips
//
// Store.Process applies one input event inside the caller's transaction:
// the inbox insert that makes it effectively-once, the ledger changes, the
// stored order with its result, and the result's outbox row. A redelivered
// event finds its inbox row and changes nothing. A paid order costs two
// round trips: one pgx.Batch reads everything the evaluation needs (inbox
// insert, the order id check, the customer's account created and locked
// FOR UPDATE, levels, live lots, window spend per path), and one batch
// writes every effect (uses, lots, journal, consumptions, spend, levels,
// the processed order, the outbox row). Each applied program that has
// limits adds one round trip while rules.Evaluate runs, to lock its counter
// row. A return or cancellation costs three: the original order and the
// account locked, then the customer's lots and the redemption's lots, then
// the writes. The worker can put many events in one transaction; it calls
// LockCustomers first so that concurrent batches take customer locks in one
// global order, and CustomersOfOrders to route returns to their customer.
//
// # Many events, one transaction, a few round trips
//
// A Batch (Store.NewBatch) applies a whole batch of events with the results,
// errors and ledger contents of Process called on each in turn, but in a
// few bulk round trips instead of two per event. The first takes the
// batch's customer locks (reading their accounts), inserts every inbox row
// and checks every order id (one INSERT … RETURNING), and reads the rest of
// every customer's state in one statement: live lots, levels, per-customer
// uses, and spend as one sum per path for the part all the batch's windows
// share plus the entries around it. The events are then evaluated in
// stream order in memory with the same planning code, each one changing
// the cached customer state exactly as its writes change the database; the
// last round trip writes everything in one statement (a data-modifying CTE
// per table, rows of serial tables in stream order, one pg_notify) and the
// deferred program counters. The transaction uses cached generic plans
// with sequential scans ruled out: re-planning every statement would cost
// more than the work for small batches, and a generic plan chosen while a
// table was small would scan it whole. The order worker uses Batch;
// Process stays the reference (tests, replays) and the fallback the worker
// uses to tell which event a failed bulk statement belongs to.
// TestBatchEqualsOneByOne compares the two byte for byte over random
// scenarios.
//
// Returns and cancellations in a batch flush what is pending and run
// through the per-event code; their customer's cached state is dropped. A
// cancellation gives its global uses back through the batch's deferred
// counters, since the uses it releases may be deferred themselves.
//
// # Locks
//
// The account row is the customer's lock. Everything that changes a
// customer's lots, debt, spend or levels — paid orders, returns, the jobs —
// holds it, which serialises a customer's events (SPEC §1.5) and makes
// redemptions unable to overdraw. A program's counter rows — one per scope
// (store) and calendar period — are locked while an order is evaluated
// against them and until commit (in a Batch, only from the deferred
// conditional update to commit), which makes total_uses, budget and the
// per_period counters exact however many workers race; per-customer uses
// ride on the account lock, and so does every change of a coupon, which is
// always made by an event of its owner. A return locks the original order row too, so that two
// returns of an anonymous order cannot both return the last unit. Deadlocks
// and serialisation failures come back as ErrConflict: roll back and retry.
//
// # Points
//
// A lot is the points one order earned, with the earning event's id as its
// id so that a replay reproduces it. Lots are spent FEFO: earliest
// expires_at first, never-expiring last, then earliest earned, then lot id
// compared bytewise (never by the database collation). A lot whose
// expires_at is at or before the event's time, or whose available_at
// (pending_days) is after it, is not spendable whether or not the expiry job
// has run: expiry is a fact of time, the job only writes it down.
//
// The journal (ledger_entries) is append-only and every amount in it is
// positive; its kinds are earn (points into a new lot, after debt),
// debt_payment (earned points that paid debt instead), redeem, expire,
// clawback, debt (a clawback the lots could not cover) and restore. For
// every lot, remaining = earn − redeem − expire − clawback + restore of its
// entries, and the account's debt = debt − debt_payment; Reconcile checks
// both. A result's points.earned is the whole amount earned, debt payment
// included.
//
// # Returns and cancellations
//
// They are computed from the stored result of the original order, never
// re-evaluated. Each returned line gives back its share of the original
// line's gross and net, rounded half up, always cumulatively: the share of
// a return is share(returned before + now) − share(returned before), so
// returns that add up to the whole line give back exactly the whole line.
// The discount given back (gross − net) is split over the original line's
// discount entries by largest remainder (rules.Allocate). Earned points are
// clawed back and redeemed points restored in proportion to the net given
// back so far (by quantity when the order's net was zero), rounded down,
// minus what earlier returns already moved. Restoring comes first, into the
// lots the redemption came from, last consumed first, each keeping its
// expiry (a lot already expired takes the points and expires them at once);
// then the clawback takes from the order's own lot (pending is fine,
// expired is not), then FEFO, and any shortfall becomes debt, which the
// customer's next earnings pay first. Spend is reduced by a negative entry
// dated at the original order's time, so the rolling window sees the
// order as if it had been smaller all along; levels are never lowered by a
// return, only by the job. A cancellation is the return of everything not
// yet returned, and it gives the order's program uses and budget back.
//
// # Counters per scope and period
//
// program_usage and program_customer_usage are keyed by (program, scope,
// period): the scope is the company or pos config limits.scope keeps apart
// ("" for the chain), the period a calendar day, ISO week or month of
// occurred_at in the catalog timezone ("" for all time). Every use of a
// limited program counts in the all-time rows of its scope and, with
// per_period, in the period rows; order_program_uses records the scope and
// period of each use, and a cancellation gives back to those rows whatever
// the catalog says by then. A use must be allowed by every row; the reader
// tells rules which counter stopped it and which budget had the smallest
// remainder. Every row asked about is created, used or not, on both paths.
//
// # Coupons
//
// An issue_coupon program's code is CouponCode(secret, event id, issuing
// program id): 12 characters of Crockford base32 from HMAC-SHA256, so a
// replay issues the same codes; a Store without a secret refuses to issue
// (ErrNoCouponSecret) and CheckCouponSecret refuses to apply or run such a
// catalog. The coupons table is keyed by (customer, code): a paid order
// reads the coupons its presented codes name for its customer (after the
// account lock), marks the one it uses, inserts the ones it issues (a Batch
// keeps them in the customer's cache, so a later order of the batch can use
// a code an earlier one issued). A reversal reads the coupons the original
// order issued or used: any return or cancellation voids the issuing
// order's codes (a used one stays used, but comes back void if its use is
// cancelled), a cancellation clears the uses of the redeeming order.
//
// # Membership
//
// A customer starts on the catalog's default path at its entry level, from
// the time of their first applied order. After each paid order the level
// rises at once to the highest level whose min is at most the net spend over
// the path's window (occurred_at − window_days, occurred_at], several levels
// at once if need be; the level's since moves only when the level changes.
// The job drops a level held for retention_days whose window spend ending at
// the job's as-of time is below its min, one level or to the qualified
// level, from the as-of time on. Window and retention days are counted on
// the catalog timezone's calendar in Go, never with the session TimeZone.
//
// # Jobs
//
// RunJobs expires lots and reviews levels as of a time, JobChunk customers
// per transaction in customer id order, locking their accounts. Its events
// (promo.points_expired, promo.level_changed) have ids derived from the
// customer, the kind and the as-of time and are enqueued with their
// changes: a second run at the same time finds nothing to do. After its
// downgrades it warns (promo.level_warning) of the levels that would drop at
// a daily job instant within their path's warn_days if the customer spent
// nothing more; each warning is recorded in level_warnings with its
// customer, path, level and instant, and only a new one is enqueued, so
// later runs that find the same instant publish nothing (warnings.go).
//
// # Where SPEC is silent
//
//   - A rejected paid order is stored (so its id cannot be reused and a
//     return of it is rejected as unknown_original_order) but changes
//     nothing else; its result still shows the customer's balance, debt and
//     level. Locking a new customer creates an empty account row (opened_at
//     NULL), which Customer reports as ErrUnknownCustomer.
//   - A return order id is used once: the same return id under another
//     event_id is ErrDuplicateOrder, like a paid order id.
//   - A returned line the original order does not have is rejected as
//     return_exceeds_sold (nothing of it was sold).
//   - promo.level_changed events come from the job only; an upgrade is
//     reported in the order result's membership.
//   - A quote that would be rejected answers status rejected with the error.
//   - The order's currency must equal the catalog's: ErrCurrencyMismatch,
//     which the worker treats as an invalid event.
//   - Results of returns carry the current catalog version and its money and
//     points decimals; the shares come from the stored original result.
//   - Periods, scopes, coupons and warnings: see docs/DESIGN.md (Periodic
//     and per-store limits, coupons, warnings) for every decision, among
//     them: all-time counters are kept for every limited program, period
//     rows forever; presented codes are normalised Crockford-style; a quote
//     issues no code; a voided code whose use is cancelled comes back void;
//     warnings count spend already recorded after the as-of time.
//   - A Batch hands the next event of a customer the debt PostgreSQL would
//     read back: a paid-off 0.00 reads as 0 (numeric zero loses its scale),
//     which the next event's write must reproduce.
//
// # Search path
//
// No statement schema-qualifies a table, so a dry-run replay can run this
// package against a scratch schema by setting search_path.
package ledger
