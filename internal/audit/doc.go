// Package audit keeps the audit trail: one row in audit_log
// (migrations/00005_audit.sql) per admin action — a catalog applied
// through the CLI or PUT /v1/catalog, dead letters redriven or purged, a
// replay, a jobs run — saying who (an API key's fingerprint, a token's
// issuer and subject, or the operator at a terminal, plus the database role
// that wrote the row), when (the database's clock), what (for a catalog its
// version and a summary of the change against the version before: programs
// added, removed and changed, other sections changed, the document's
// SHA-256) and from where (the client's address, or the host and pid of a
// command). Failed attempts are recorded too (outcome failed), once they
// reached the database.
//
// A catalog and its entry are written in one transaction (ApplyCatalog): a
// catalog is never in force without its entry. The other actions act on
// NATS, which takes part in no transaction: their entry is written right
// after the action with its outcome, and the command opens the database
// before it acts, so an unreachable database stops it before anything
// changed.
//
// The table is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE),
// and every entry is also logged (Log), so a copy leaves the machine with
// the logs. `promoengine audit list` reads it; Collector exports
// promo_audit_entries_total{action, outcome} counted in the database, so an
// alert sees a purge made from a laptop as well as one made through the API.
package audit
