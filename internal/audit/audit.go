package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
)

// Actions recorded.
const (
	ActionCatalogApply  = "catalog.apply"
	ActionDLQRedrive    = "dlq.redrive"
	ActionDLQPurge      = "dlq.purge"
	ActionReplay        = "replay"
	ActionJobsRun       = "jobs.run"
	ActionPartitionsSet = "partitions.set"
)

// Outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
)

// Entry is one row of the trail.
type Entry struct {
	ID int64 `json:"id"`
	// At is set by the database (its clock, one for every writer).
	At time.Time `json:"at"`
	// Actor is who: identity.Principal.Who() for the API ("api_key
	// sha256:1a2b3c4d", "oidc https://sso/realms/shop#<sub>"), "cli <user>"
	// for a command at a terminal.
	Actor  string `json:"actor"`
	Action string `json:"action"`
	// Target is what, in a few words: "catalog version 7", "dead letter 42",
	// "POS_ORDERS seq 1200–1300", "as of 2026-12-01T00:00:00+07:00".
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	// Details is the rest as a JSON object: the catalog's change summary,
	// a report, an error.
	Details json.RawMessage `json:"details"`
	// Source is from where: "http 10.1.2.3:51234" or "cli host pid 4242".
	Source string `json:"source"`
	// DBUser is the database role that wrote the row.
	DBUser string `json:"db_user"`
}

// DB is what the trail needs: a pool, a connection or a transaction (the
// catalog is recorded in the transaction that applies it).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Record appends an entry and returns its id. Details may be nil; a value
// that is not already JSON is encoded.
func Record(ctx context.Context, db DB, e Entry, details any) (int64, error) {
	if e.Actor == "" || e.Action == "" {
		return 0, errors.New("audit: an entry needs an actor and an action")
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	raw, err := detailsJSON(details)
	if err != nil {
		return 0, err
	}
	var id int64
	err = db.QueryRow(ctx, `INSERT INTO audit_log (actor, action, target, outcome, details, source)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		e.Actor, e.Action, e.Target, e.Outcome, string(raw), e.Source).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return id, nil
}

func detailsJSON(details any) (json.RawMessage, error) {
	switch d := details.(type) {
	case nil:
		return json.RawMessage(`{}`), nil
	case json.RawMessage:
		return d, nil
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("audit: details: %w", err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		raw, _ = json.Marshal(map[string]json.RawMessage{"value": raw})
	}
	return raw, nil
}

// Log writes the entry to the log as well: the copy that leaves the machine
// with the logs, out of reach of whoever holds the database.
func Log(log zerolog.Logger, id int64, e Entry, details any) {
	raw, _ := detailsJSON(details)
	log.Info().Int64("audit_id", id).Str("actor", e.Actor).Str("action", e.Action).Str("target", e.Target).
		Str("outcome", outcomeOr(e.Outcome)).Str("source", e.Source).RawJSON("details", raw).Msg("audit")
}

func outcomeOr(o string) string {
	if o == "" {
		return OutcomeOK
	}
	return o
}

// Filter selects entries for List.
type Filter struct {
	Since, Until time.Time // zero: unbounded; Until is exclusive
	Action       string
	// Actor matches entries whose actor contains it.
	Actor string
	// Limit is the most entries, the newest; 0 means 100.
	Limit int
}

// List returns the newest entries matching f, oldest first.
func List(ctx context.Context, db DB, f Filter) ([]Entry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := db.Query(ctx, `SELECT id, at, actor, action, target, outcome, details::text, source, db_user FROM (
		SELECT * FROM audit_log
		WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
		  AND ($3 = '' OR action = $3) AND ($4 = '' OR strpos(actor, $4) > 0)
		ORDER BY id DESC LIMIT $5) newest ORDER BY id`,
		since, until, f.Action, f.Actor, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		var details string
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Outcome, &details, &e.Source, &e.DBUser)
		e.Details = json.RawMessage(details)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return out, nil
}

// CLIActor names the operator of a command run at a terminal, and where:
// "cli alice", "cli host-1 pid 4242". Behind sudo, the user who ran sudo.
// It is what the machine says; the row's db_user is what the database
// checked.
func CLIActor() (actor, source string) {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = fmt.Sprintf("uid %d", os.Getuid())
	}
	host, _ := os.Hostname()
	return "cli " + name, strings.TrimSpace(fmt.Sprintf("cli %s pid %d", host, os.Getpid()))
}
