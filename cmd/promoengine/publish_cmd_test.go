package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// publish --strict refuses a file with a bad line, names the line and
// what is wrong with it, and publishes nothing.
func TestPublishCommandStrict(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	bad := b.file("orders.jsonl", strings.Join([]string{
		cliPaid("1", "drinks", "1", "3000"),
		cliPaid("2", "drinks", "1", "3000"),
		strings.Replace(cliPaid("3", "drinks", "1", "3000"), `"qty":"1"`, `"qty":"-1"`, 1),
	}, "\n"))
	res := b.run("publish", "-f", bad, "--strict")
	require.Equal(t, 1, res.ExitCode, res.Stdout)
	require.Contains(t, res.Stderr, "orders.jsonl:3: invalid event: /order/lines/0/qty")
	require.Contains(t, res.Stderr, "has 1 invalid line(s) of 3; nothing was published")
	require.Zero(t, b.streamMsgs("POS_ORDERS"))

	// Without --strict the good lines go, the bad one is reported, exit 1.
	res = b.run("publish", "-f", bad)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stdout, "published 2, duplicates 0, invalid 1, failed 0")
	require.Contains(t, res.Stderr, "orders.jsonl:3: invalid event")
	require.Equal(t, uint64(2), b.streamMsgs("POS_ORDERS"))

	good := b.file("good.jsonl", cliPaid("1", "drinks", "1", "3000")+"\n"+cliPaid("2", "drinks", "1", "3000")+"\n")
	res = b.run("publish", "-f", good, "--rate", "100")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "published 0, duplicates 2, invalid 0, failed 0 (2 lines of")
	require.Equal(t, uint64(2), b.streamMsgs("POS_ORDERS"))
}

func TestPublishCommandErrors(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	res := b.run("publish")
	require.Equal(t, 2, res.ExitCode)
	require.Contains(t, res.Stderr, "-f FILE is required")
	res = b.run("publish", "-f", "/nonexistent/orders.jsonl")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, "no such file or directory")
	res = b.run("publish", "-f", b.file("x.jsonl", ""), "--rate", "-3")
	require.Equal(t, 2, res.ExitCode)

	// Against a NATS server the engine never ran on: say what to do.
	require.NoError(t, b.js.DeleteStream(b.ctx, "POS_ORDERS"))
	res = b.run("publish", "-f", b.file("y.jsonl", cliPaid("1", "drinks", "1", "1")))
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, "POS_ORDERS; start the engine once")
}
