package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/pkg/events"
)

func TestDLQCommand(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	res := b.run("dlq", "list")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Equal(t, "no dead letters\n", res.Stdout)

	dl := consume.NewDeadLetterer(b.js, events.NewSubjects(""))
	body := cliPaid("7", "drinks", "1", "3000")
	for _, code := range []string{events.DLQProcessingFailed, events.DLQInvalidEvent} {
		require.NoError(t, dl.Send(b.ctx, consume.Letter{Subject: "pos.orders.paid", Stream: "POS_ORDERS", Seq: 7,
			Header: nats.Header{jetstream.MsgIDHeader: []string{"cli:7:" + code}, "Odoo-Db": []string{"shop"}},
			Data:   []byte(body), Code: code, Message: "database was down\nfor a while"}))
	}

	res = b.run("dlq", "list")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^ID\s+AGE\s+CODE\s+SUBJECT\s+MESSAGE$`, lines[0])
	require.Regexp(t, `^1\s+\d+s\s+processing_failed\s+pos\.orders\.paid\s+database was down for a while$`, lines[1])
	require.Contains(t, lines[3], "2 dead letter(s)")

	res = b.run("dlq", "list", "--code", events.DLQInvalidEvent, "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, float64(2), listed[0]["id"])
	require.Equal(t, "pos.orders.paid", listed[0]["original_subject"])
	require.Contains(t, listed[0], "age_seconds")

	res = b.run("dlq", "show", "2")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "dead letter 2 on promo.dlq.pos.orders.paid\n")
	require.Contains(t, res.Stdout, "  Odoo-Db: shop\n")
	require.Contains(t, res.Stdout, "  Promo-Error-Code: invalid_event\n")
	require.Contains(t, res.Stdout, "body ("+strconv.Itoa(len(body))+" bytes):\n"+body+"\n")

	res = b.run("dlq", "show", "2", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &shown))
	require.Equal(t, body, shown["body"])

	res = b.run("dlq", "redrive", "1")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "redriven 1 (processing_failed) → pos.orders.paid (POS_ORDERS seq 1, Nats-Msg-Id cli:7:processing_failed:redrive:1)")
	require.Equal(t, uint64(1), b.streamMsgs("POS_ORDERS"))

	res = b.run("dlq", "purge", "2", "1")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stdout, "purged 2 (invalid_event, pos.orders.paid)")
	require.Contains(t, res.Stderr, "no such dead letter: 1 is not in PROMO_DLQ")
	require.Contains(t, res.Stderr, "1 of 2 dead letters failed")
	require.Zero(t, b.streamMsgs("PROMO_DLQ"))

	res = b.run("dlq", "redrive", "--all")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "redriven 0, failed 0")
}

func TestDLQCommandUsage(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq"}, "want a subcommand"},
		{[]string{"dlq", "drop", "1"}, `unknown subcommand "drop"`},
		{[]string{"dlq", "show"}, "want exactly one ID"},
		{[]string{"dlq", "show", "abc"}, `"abc" is not a dead-letter ID`},
		{[]string{"dlq", "redrive"}, "want an ID (or --all)"},
		{[]string{"dlq", "redrive", "--all", "3"}, "not both"},
		{[]string{"dlq", "redrive", "3", "--code", "x"}, "--code goes with --all"},
		{[]string{"dlq", "purge"}, "want an ID"},
		{[]string{"dlq", "list", "4"}, "takes no ID"},
	} {
		res := b.run(tc.args...)
		require.Equal(t, 2, res.ExitCode, "%v", tc.args)
		require.Contains(t, res.Stderr, tc.want, "%v", tc.args)
	}
}
