package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

func runResults(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "results", "results [-n N] [--follow] [--order ID] [--json]",
		`  promoengine results                 # the last 10 results, one line each
  promoengine results -n 50 --json     # the last 50, as JSON lines
  promoengine results --order 50012    # every result of one order (sale, returns, cancellation)
  promoengine results --follow         # keep printing new results until Ctrl-C
`)
	n := fs.Int("n", 10, "how many of the latest results to show")
	follow := fs.Bool("follow", false, "keep printing new results")
	order := fs.String("order", "", "only the results of this order id (sale and its returns)")
	asJSON := fs.Bool("json", false, "print each result as one JSON line")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *n < 0 {
		return usagef("results: -n must not be negative")
	}
	nc, js, _, subjects, err := openNATS(c)
	if err != nil {
		return err
	}
	defer nc.Close()
	stream, err := js.Stream(ctx, subjects.StreamResults())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s does not exist yet: start the engine first", subjects.StreamResults())
	}
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 && !*follow {
		// Nothing to print: an empty stream is not an error (--json prints
		// no line, the text form says so).
		if !*asJSON {
			fmt.Fprintln(c.stdout, "no results yet")
		}
		return nil
	}
	start := uint64(1)
	if *order == "" && info.State.LastSeq > uint64(*n) {
		start = info.State.LastSeq - uint64(*n) + 1
	}
	start = max(start, info.State.FirstSeq)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subjects.ResultsAll()}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
	if info.State.Msgs == 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverAllPolicy, 0
	}
	cons, err := js.OrderedConsumer(ctx, subjects.StreamResults(), cfg)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	for {
		wait := 2 * time.Second
		if *follow {
			wait = 24 * time.Hour
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(wait))
		if err != nil {
			if ctx.Err() != nil || (!*follow && errors.Is(err, context.DeadlineExceeded)) {
				return nil
			}
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
				if !*follow {
					return nil
				}
				continue
			}
			return err
		}
		md, _ := msg.Metadata()
		_ = printResult(c, msg.Data(), *order, *asJSON) // an error is a result skipped
		if !*follow && md != nil && md.Sequence.Stream >= last {
			return nil
		}
	}
}

// printResult prints one result event; it returns an error for an event it
// skipped.
func printResult(c *cli, data []byte, order string, asJSON bool) error {
	var r struct {
		Type            string `json:"type"`
		CausationID     string `json:"causation_id"`
		OrderID         string `json:"order_id"`
		OriginalOrderID string `json:"original_order_id"`
		CustomerID      string `json:"customer_id"`
		Status          string `json:"status"`
		Error           *struct {
			Code string `json:"code"`
		} `json:"error"`
		Totals struct {
			Gross, Discount, Net string
		} `json:"totals"`
		SourceType string `json:"source_type"`
		Points     *struct {
			Earned     string `json:"earned"`
			Redeemed   string `json:"redeemed"`
			ClawedBack string `json:"clawed_back"`
			Restored   string `json:"restored"`
			Balance    string `json:"balance"`
		} `json:"points"`
		Membership *struct {
			Level   string `json:"level"`
			Changed bool   `json:"changed"`
		} `json:"membership"`
		OccurredAt string `json:"occurred_at"`
		Expired    []any  `json:"expired"`
		Level      string `json:"level"`
		Previous   string `json:"previous_level"`
		// promo.level_warning
		ToLevel     string `json:"to_level"`
		DowngradeAt string `json:"downgrade_at"`
		SpendNeeded string `json:"spend_needed"`
		// coupons a sale issued or used
		CouponsIssued []struct {
			Code string `json:"code"`
		} `json:"coupons_issued"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	if order != "" && r.OrderID != order && r.OriginalOrderID != order {
		return errors.New("other order")
	}
	if asJSON {
		fmt.Fprintln(c.stdout, string(data))
		return nil
	}
	switch r.Type {
	case events.TypePointsExpired:
		fmt.Fprintf(c.stdout, "%s  points expired  customer %s: %d lots\n", r.OccurredAt, r.CustomerID, len(r.Expired))
	case events.TypeLevelChanged:
		fmt.Fprintf(c.stdout, "%s  level changed   customer %s: %s → %s\n", r.OccurredAt, r.CustomerID, r.Previous, r.Level)
	case events.TypeLevelWarning:
		fmt.Fprintf(c.stdout, "%s  level warning   customer %s: %s → %s on %s unless %s more is spent\n",
			r.OccurredAt, r.CustomerID, r.Level, r.ToLevel, r.DowngradeAt, r.SpendNeeded)
	default:
		kind := "sale"
		switch r.SourceType {
		case events.TypeOrderReturned:
			kind = "return of " + r.OriginalOrderID
		case events.TypeOrderCancelled:
			kind = "cancellation"
		}
		line := fmt.Sprintf("%s  %-8s order %-6s %s", r.OccurredAt, r.Status, r.OrderID, kind)
		if r.CustomerID != "" {
			line += " customer " + r.CustomerID
		}
		line += fmt.Sprintf("  gross %s discount %s net %s", r.Totals.Gross, r.Totals.Discount, r.Totals.Net)
		switch {
		case r.Points != nil && kind == "sale":
			line += fmt.Sprintf("  points +%s -%s = %s", r.Points.Earned, r.Points.Redeemed, r.Points.Balance)
		case r.Points != nil:
			line += fmt.Sprintf("  points clawed back %s, restored %s = %s", r.Points.ClawedBack, r.Points.Restored, r.Points.Balance)
		}
		if r.Membership != nil && r.Membership.Changed {
			line += "  level → " + r.Membership.Level
		}
		for _, cp := range r.CouponsIssued {
			line += "  coupon " + cp.Code
		}
		if r.Error != nil {
			line += "  (" + r.Error.Code + ")"
		}
		fmt.Fprintln(c.stdout, line)
	}
	return nil
}
