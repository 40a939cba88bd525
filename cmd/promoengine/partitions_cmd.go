package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/workers"
)

const partitionsExamples = `  promoengine partitions set 32   # POS_ORDERS in 32 partitions from now on

The number of partitions caps how many engine processes share the load. It is
changed with every engine stopped and no event arriving, once everything was
processed (docs/DEPLOY.md, "Changing the number of partitions"); the command
refuses otherwise and changes nothing. Then start the engines with
PROMO_PARTITIONS set to the new number.
`

func runPartitions(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || args[0] != "set" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			args = []string{"set", "--help"}
		} else {
			return usagef("partitions: want `partitions set N`")
		}
	}
	fs := newFlags(c, "partitions set", "partitions set N", partitionsExamples)
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("partitions set: want one number of partitions")
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil || n < 1 || n > 1024 {
		return usagef("partitions set: %q is not a number of partitions from 1 to 1024", fs.Arg(0))
	}
	nc, js, cfg, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	pool, err := openMigratedPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	maxAck := workers.OrdersConfig{BatchSize: cfg.BatchSize}.PartitionMaxAckPending()
	rep, err := ops.New(js, pool, subjects, c.log).Repartition(ctx, n, streams.Timing{AckWait: cfg.AckWait}, maxAck)
	details := map[string]any{"partitions": n}
	if rep != nil {
		details["from"], details["start_seq"] = rep.From, rep.StartSeq
	}
	if aerr := newCLIAudit(c, pool).record(ctx, audit.ActionPartitionsSet, fmt.Sprintf("%d partitions", n), details, err); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err != nil {
		return err
	}
	if rep.From == n {
		fmt.Fprintf(c.stdout, "POS_ORDERS already has %d partitions; nothing changed\n", n)
		return nil
	}
	fmt.Fprintf(c.stdout, "POS_ORDERS: %d partitions, was %d; new consumers start at stream sequence %d\n", n, rep.From, rep.StartSeq)
	if len(rep.Deleted) > 0 {
		fmt.Fprintf(c.stdout, "deleted: %s\n", strings.Join(rep.Deleted, ", "))
	}
	fmt.Fprintf(c.stdout, "start the engines with PROMO_PARTITIONS=%d\n", n)
	return nil
}
