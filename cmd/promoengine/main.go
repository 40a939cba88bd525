// Command promoengine is the one binary of promoengine: the engine itself
// (`run`, `dev`) and every operator command. Configuration comes from the
// environment (PROMO_*, see `promoengine help config`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/logging"
)

func main() {
	format := os.Getenv("PROMO_LOG_FORMAT")
	if format == "" && isTerminal(os.Stderr) {
		format = "console"
	}
	log := logging.New(os.Stderr, format, os.Getenv("PROMO_LOG_LEVEL"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, log)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// cli carries what every subcommand gets.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    zerolog.Logger
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "run the whole engine on the embedded default (in-process NATS, private PostgreSQL, example catalog)", runDev},
		{"run", "run the engine against PROMO_NATS_URL and PROMO_DATABASE_URL", runRun},
		{"migrate", "apply database migrations", runMigrate},
		{"catalog", "apply or show catalog versions", runCatalog},
		{"publish", "backfill: publish input events from a JSON Lines file", runPublish},
		{"replay", "reprocess a range of POS_ORDERS (or dry-run it against the current catalog)", runReplay},
		{"dlq", "list, show, redrive or purge dead letters", runDLQ},
		{"jobs", "run the expiry and downgrade job as of a time", runJobs},
		{"customer", "show a customer's points, lots, levels and history", runCustomer},
		{"results", "print the latest result events (or follow them)", runResults},
		{"status", "streams, consumer lag, outbox backlog, dead letters", runStatus},
		{"partitions", "change the number of partitions of POS_ORDERS (every engine stopped)", runPartitions},
		{"audit", "list the audit trail of admin actions", runAudit},
		{"shadow", "shadow report: how the engine's results compare with Odoo's own loyalty (shadow mode)", runShadow},
		{"odoo", "odoo sync: find the Odoo orders the engine never received; odoo import-catalog, import-balances: carry Odoo's loyalty over", runOdoo},
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries an explicit exit status (replay --dry-run).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "promoengine:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "promoengine:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, log zerolog.Logger) error {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, log: log}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 && args[1] == "config" {
			fmt.Fprint(stdout, configHelp)
			return nil
		}
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, stdin, stdout, stderr, log)
		}
		printUsage(stdout)
		if len(args) == 0 {
			return usagef("no command given")
		}
		return nil
	}
	for _, cmd := range commands() {
		if cmd.name == args[0] {
			return cmd.run(ctx, c, args[1:])
		}
	}
	printUsage(stderr)
	return usagef("unknown command %q", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "promoengine — promotions, points and membership for Odoo Point of Sale")
	fmt.Fprintln(w, "\nUsage: promoengine <command> [flags]\n\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w, "\n`promoengine <command> --help` shows a command's flags and examples;")
	fmt.Fprintln(w, "`promoengine help config` lists the PROMO_* environment variables.")
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

const configHelp = `Configuration is environment only (prefix PROMO_):

  PROMO_NATS_URL          NATS server (default nats://127.0.0.1:4222)
  PROMO_NATS_CREDS        NATS credentials file
  PROMO_DATABASE_URL      PostgreSQL URL (required for run and most commands)
  PROMO_HTTP_ADDR         HTTP API, health and metrics (default :8080, dev 127.0.0.1:8080; "off" disables)
  PROMO_ODOO_URL          Odoo base URL; unset: no Odoo pusher
  PROMO_ODOO_DB, PROMO_ODOO_LOGIN, PROMO_ODOO_API_KEY (or PROMO_ODOO_API_KEY_FILE)
  PROMO_ODOO_MODEL        default pos.order
  PROMO_ODOO_METHOD       default promo_engine_apply
  PROMO_ODOO_TIMEOUT      default 10s
  PROMO_ODOO_CONCURRENCY  pushes in flight (default 4)
  PROMO_ODOO_RECONCILE_INTERVAL  how often to ask Odoo for orders the engine never got (default 1m; 0: off)
  PROMO_ODOO_RECONCILE_OVERLAP   how far back each pass looks again (default 5m)
  PROMO_ODOO_READBACK_MAX_WAIT   how long a recorded order Odoo does not show is waited for (default 1h)
  PROMO_MODE              live (default): results pushed to Odoo; shadow: nothing pushed, compared with Odoo's loyalty
  PROMO_MODE_COMPANIES, PROMO_MODE_POS_CONFIGS  per Odoo company / POS config: "3:shadow,4:live"
  PROMO_SHADOW_SETTLE     how long after a result it is compared with Odoo (default 1m)
  PROMO_SHADOW_POINTS_PROGRAM  Odoo loyalty program of the catalog's points (default: the one an order shows)
  PROMO_API_KEYS          bearer keys, "key:role,…" with role pos, admin or webhook
  PROMO_WORKERS           workers of run (default orders,outbox,odoo,jobs,api)
  PROMO_BATCH_SIZE        most events per transaction (default 256)
  PROMO_LANES             per-customer serial lanes (default: as many as transactions)
  PROMO_TRANSACTIONS      order transactions running at once (default: CPUs, at least 2)
  PROMO_MAX_DELIVER       deliveries before an event is dead-lettered (default 10)
  PROMO_DATABASE_MAX_CONNS  pool size (default: the larger of lanes and transactions, + 8)
  PROMO_SUBJECT_PREFIX    prefix of every subject and stream (default none)
  PROMO_DUPLICATE_WINDOW  JetStream de-duplication window (default 10m)
  PROMO_PARTITIONS        partitions of POS_ORDERS, chosen once (default 16)
  PROMO_ACK_WAIT          how soon a dead process's events move (default 5s)
  PROMO_NODE_ID           this process's name among the engine's (default host-pid-random)
  PROMO_STREAM_REPLICAS   replicas of streams and buckets: 1, 3 or 5 (default 1)
  PROMO_DATABASE_REPLICA_URL  read replica for customer views, quotes and status
  PROMO_LOG_LEVEL         trace|debug|info|warn|error (default info)
  PROMO_LOG_FORMAT        json|console (default json; console on a terminal)
  PROMO_PPROF             true: Go's profiler under /debug/pprof/ on PROMO_PPROF_ADDR (default false)
  PROMO_PPROF_ADDR        the profiler's own listener (default 127.0.0.1:6060; never the API's)
  PROMO_OIDC_ISSUER       OpenID Connect issuer whose tokens are accepted beside the API keys
  PROMO_OIDC_AUDIENCE     audience the tokens must carry (required with the issuer)
  PROMO_OIDC_ROLES_CLAIM  claim holding promo.pos / promo.admin (default roles)
  PROMO_TLS_CERT_FILE, PROMO_TLS_KEY_FILE  serve HTTPS (reloaded when the files change)
  PROMO_NATS_CA_FILE      CA of the NATS server's certificate
  PROMO_NATS_CERT_FILE, PROMO_NATS_KEY_FILE  client certificate for NATS
  PROMO_NATS_NKEY_FILE    NKey seed file for NATS
  API keys may be scoped to stores: "key:pos@company=1;pos_config=3|4".
  PostgreSQL TLS: sslmode=verify-full&sslrootcert=/path/ca.pem in PROMO_DATABASE_URL.
  PROMO_COUPON_SECRET     key issued coupon codes are derived with, at least 16 characters;
                          required once a catalog issues coupons, the same in every process

When PROMO_DATABASE_URL and PROMO_NATS_URL are unset and a ` + "`promoengine dev`" + `
is running in this directory, commands use its embedded servers (.data/dev.env).
`
