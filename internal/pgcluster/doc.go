// Package pgcluster runs a private PostgreSQL cluster from the PostgreSQL
// binaries installed on the machine.
//
// It exists so that `promoengine dev` and the test suite need nothing but a
// local PostgreSQL installation: no Docker, no shared server, no password.
// It drives the stock tools (initdb, pg_ctl) rather than reimplementing them,
// so that the server is exactly the one production runs, only smaller.
//
// # Layout
//
// Options.Dir is the data directory (PGDATA). Start runs initdb when the
// directory holds no PG_VERSION and reuses it otherwise, so data survives
// restarts of `promoengine dev`. Settings that may change between runs (the
// port, fsync) live in promoengine.conf, rewritten at every Start and
// included from postgresql.conf; everything else is initdb's default. The
// server listens on 127.0.0.1 only, with trust authentication for the
// superuser "postgres": it is a development server and must never be
// reachable from the network. Its own log goes to postgres.log inside Dir
// because pg_ctl detaches the server from the caller's pipes.
//
// # Reuse and crashes
//
// When the server of Dir is already running (a previous process was killed
// before it could stop it, or another test binary started it), Start adopts
// it instead of failing, and reports the port it listens on. A
// postmaster.pid left by a server that no longer exists is removed, because
// PostgreSQL refuses to start when the pid in it was reused by an unrelated
// live process, which is common in containers where pids are small.
//
// # Lifetime
//
// pg_ctl detaches the server in a session of its own, so it outlives the
// process that started it, and a Ctrl-C meant for that process does not
// reach it: the owner calls Stop (`promoengine dev` does on shutdown). If the
// owner dies first, the next Start on the same Dir adopts the server.
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the caller is root, pgcluster runs
// initdb and pg_ctl as the system user "postgres" (created with useradd when
// missing) by setting the child's credentials directly, which needs neither
// runuser nor su nor a login shell. The data directory is owned by that user
// and every parent directory gets the "others may traverse" bit (o+x, never
// o+r) when it lacks it, because the server must be able to reach its data
// directory; Start reports each change on Options.Log.
package pgcluster
