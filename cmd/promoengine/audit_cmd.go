package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promoengine/promoengine/internal/audit"
)

const auditUsage = `audit list [--since T] [--until T] [--action A] [--actor S] [--limit N] [--json]`

const auditExamples = `  promoengine audit list                           # the last 100 admin actions, oldest first
  promoengine audit list --since 24h --action dlq.purge
  promoengine audit list --actor "oidc https://sso.example.com/realms/shop#" --json

Actions: catalog.apply, dlq.redrive, dlq.purge, replay, jobs.run. The actor
is an API key's fingerprint ("api_key sha256:1a2b3c4d"), a token's issuer and
subject ("oidc <issuer>#<sub>") or the operator of a command ("cli alice");
DB USER is the database role that wrote the entry. T is RFC 3339 or a
duration meaning "that long ago" (90m, 24h).
`

func runAudit(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			newFlags(c, "audit", auditUsage, auditExamples).Usage()
			return nil
		}
		return usagef("audit: want `%s`", auditUsage)
	}
	fs := newFlags(c, "audit list", auditUsage, auditExamples)
	since := fs.String("since", "", "only entries at or after T")
	until := fs.String("until", "", "only entries before T")
	action := fs.String("action", "", "only this action")
	actor := fs.String("actor", "", "only actors containing this text")
	limit := fs.Int("limit", 100, "the most entries (the newest)")
	asJSON := fs.Bool("json", false, "print as JSON")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("audit list: unexpected argument %q", fs.Arg(0))
	}
	now := time.Now()
	f := audit.Filter{Action: *action, Actor: *actor, Limit: *limit}
	var err error
	if f.Since, err = parseInstant(*since, now); err != nil {
		return usagef("audit list: --since: %v", err)
	}
	if f.Until, err = parseInstant(*until, now); err != nil {
		return usagef("audit list: --until: %v", err)
	}
	pool, err := openMigratedPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	entries, err := audit.List(ctx, pool, f)
	if err != nil {
		return err
	}
	if *asJSON {
		if entries == nil {
			entries = []audit.Entry{}
		}
		return writeJSON(c, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(c.stdout, "no audit entries")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tTARGET\tOUTCOME\tSOURCE\tDB USER\tDETAILS")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), e.Actor, e.Action, e.Target,
			e.Outcome, e.Source, e.DBUser, truncate(strings.TrimSpace(string(e.Details)), 120))
	}
	return tw.Flush()
}

// cliAudit records the admin actions of a command.
type cliAudit struct {
	c             *cli
	pool          *pgxpool.Pool
	actor, source string
}

func newCLIAudit(c *cli, pool *pgxpool.Pool) *cliAudit {
	actor, source := audit.CLIActor()
	return &cliAudit{c: c, pool: pool, actor: actor, source: source}
}

// entry is the who and where of this command.
func (a *cliAudit) entry() audit.Entry { return audit.Entry{Actor: a.actor, Source: a.source} }

// record writes an action's entry after the action, with actErr as its
// outcome. A failure to record is an error of the command: the action was
// done, and the operator must know it is not in the trail.
func (a *cliAudit) record(ctx context.Context, action, target string, details map[string]any, actErr error) error {
	e := a.entry()
	e.Action, e.Target, e.Outcome = action, target, audit.OutcomeOK
	if details == nil {
		details = map[string]any{}
	}
	if actErr != nil {
		e.Outcome = audit.OutcomeFailed
		details["error"] = actErr.Error()
	}
	id, err := audit.Record(context.WithoutCancel(ctx), a.pool, e, details)
	if err != nil {
		return fmt.Errorf("%s %s was done but is not in the audit trail: %w", action, target, err)
	}
	audit.Log(a.c.log, id, e, details)
	return nil
}
