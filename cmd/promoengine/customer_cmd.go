package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/promoengine/promoengine/pkg/ledger"
)

func runCustomer(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "-h" && args[0] != "--help") {
		return usagef("customer: want `customer show ID`")
	}
	if args[0] != "show" {
		args = []string{"show", "--help"}
	}
	fs := newFlags(c, "customer show", "customer show [--at T] [--json] ID",
		`  promoengine customer show 77
  promoengine customer show --at 2027-01-01T00:00:00+07:00 77   # balance as it will be then
  promoengine customer show --json 77
`)
	atText := fs.String("at", "", "balance as of this RFC 3339 time (default: now)")
	asJSON := fs.Bool("json", false, "print JSON")
	ids, help, err := parseInterspersed(fs, args[1:])
	if help || err != nil {
		return err
	}
	if len(ids) != 1 {
		return usagef("customer show: want exactly one customer id")
	}
	id := ids[0]
	at := time.Now()
	if *atText != "" {
		t, err := time.Parse(time.RFC3339Nano, *atText)
		if err != nil {
			return usagef("--at: %q is not an RFC 3339 time with offset", *atText)
		}
		at = t
	}
	ls, err := openLedger(ctx, c, false)
	if err != nil {
		return err
	}
	defer ls.Close()
	view, err := ls.store.Customer(ctx, ls.pool, id, at, ls.catalog)
	if errors.Is(err, ledger.ErrUnknownCustomer) {
		return fmt.Errorf("customer %q has no account (no order of theirs was processed)", id)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(view)
	}
	return printCustomer(c, view)
}

func printCustomer(c *cli, v *ledger.CustomerView) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "customer\t%v\n", m["customer_id"])
	fmt.Fprintf(tw, "balance\t%v\n", m["balance"])
	fmt.Fprintf(tw, "debt\t%v\n", m["debt"])
	if levels, ok := m["levels"].([]any); ok {
		for _, l := range levels {
			lm, _ := l.(map[string]any)
			fmt.Fprintf(tw, "level\t%v on path %v since %v\n", lm["level"], lm["path"], lm["since"])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if lots, ok := m["lots"].([]any); ok && len(lots) > 0 {
		fmt.Fprintln(c.stdout, "\nLOTS")
		tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOT\tEARNED AT\tEXPIRES AT\tREMAINING")
		for _, l := range lots {
			lm, _ := l.(map[string]any)
			exp := lm["expires_at"]
			if exp == nil {
				exp = "never"
			}
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\n", lm["lot_id"], lm["earned_at"], exp, lm["remaining"])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(v.Coupons) > 0 {
		fmt.Fprintln(c.stdout, "\nCOUPONS (latest first)")
		tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tPROGRAM\tVALID UNTIL\tSTATE\tISSUED BY")
		for _, cp := range v.Coupons {
			state := cp.State
			if cp.UsedBy != "" {
				state += " (order " + cp.UsedBy + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (order %s)\n", cp.Code, cp.ProgramID, cp.ValidUntil, state, cp.IssuedBy, cp.OrderID)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if hist, ok := m["history"].([]any); ok && len(hist) > 0 {
		fmt.Fprintln(c.stdout, "\nHISTORY (latest first)")
		for _, h := range hist {
			hb, _ := json.Marshal(h)
			fmt.Fprintf(c.stdout, "  %s\n", hb)
		}
	}
	return nil
}
