// Package testdb gives each test its own freshly migrated PostgreSQL
// database on a real server.
//
// Tests that touch SQL run against PostgreSQL, never a mock: the ledger's
// correctness rests on constraints, isolation levels and row locks that only
// the real server has. A database per test (rather than a transaction per
// test, or a schema per test) lets a test commit, run concurrent
// transactions, and hand the connection string to a subprocess such as the
// real promoengine binary, while staying isolated from every other test, so
// tests can use t.Parallel().
//
// # Which server
//
// Decided once per test binary, first match wins:
//
//  1. PROMO_TEST_DATABASE_URL, a postgres:// URL of a role allowed to create
//     databases (its database is used for administration only). Nothing
//     else is tried if it is set and fails.
//  2. A server on 127.0.0.1:5432 that lets the role "postgres", or the role
//     named after the current OS user, in without a password (or through
//     ~/.pgpass) and create databases.
//  3. A private cluster started with internal/pgcluster from the local
//     PostgreSQL binaries, with fsync off, in $TMPDIR/promoengine-testpg
//     (normally /tmp/promoengine-testpg): data in data/, the server log in
//     data/postgres.log, pgcluster's own output in pgcluster.log.
//
// The private cluster is shared by all test binaries of a `go test ./...`
// run, which execute as parallel processes: the first one to take the file
// lock (promoengine-testpg/lock) starts it, the others adopt the running
// server. No binary stops it, because none knows whether another still
// needs it; it stays running after the run so that the next run starts in
// milliseconds. Stopping it is always safe between runs:
//
//	pg_ctl -D /tmp/promoengine-testpg/data stop   # as root: runuser -u postgres -- pg_ctl ...
//
// and deleting /tmp/promoengine-testpg (once stopped) starts from scratch.
//
// # Databases
//
// The migrations are applied once per version of the migrations/ directory
// into a template database, promo_template_<hash of the files>, created
// under a PostgreSQL advisory lock so that parallel test binaries create it
// once. The template is then frozen (IS_TEMPLATE, ALLOW_CONNECTIONS false)
// because PostgreSQL copies a template only while nobody is connected to
// it. Each test gets `CREATE DATABASE test_<pid>_<random> TEMPLATE ...`, a
// file copy that takes milliseconds, far cheaper than migrating, and the
// database is dropped WITH (FORCE) in t.Cleanup, which also disconnects any
// subprocess the test left behind. Templates of other migration versions
// are kept: another checkout may be testing them against the same cluster.
//
// A test binary killed before its cleanups ran (Ctrl-C, -timeout) leaves its
// databases behind; on the private cluster the next test binary drops the
// databases whose pid is no longer running.
//
// The server must be PostgreSQL 13 or newer (DROP DATABASE ... WITH (FORCE)).
package testdb
