package shadow

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Percent renders n of total as a percentage with one decimal, "—" for
// nothing compared (integers only: a rate is not an amount, but it has no
// business in a float either).
func Percent(n, total int) string {
	if total == 0 {
		return "—"
	}
	tenths := (n*1000 + total/2) / total
	return fmt.Sprintf("%d.%d %%", tenths/10, tenths%10)
}

// Write renders the report for a person: the agreement, the agreement by
// program, the known differences that explain the mismatches, then each
// differing order, grouped by program, with its fields and both values.
func (r *Report) Write(w io.Writer) error {
	window := "all orders compared"
	switch {
	case r.Since != nil && r.Until != nil:
		window = fmt.Sprintf("orders from %s to %s", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
	case r.Since != nil:
		window = "orders since " + r.Since.Format(time.RFC3339)
	case r.Until != nil:
		window = "orders before " + r.Until.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Shadow comparison, %s: %d compared, %d agree (%s), %d differ (%d explained by known differences, %d not)",
		window, r.Compared(), r.Matches, Percent(r.Matches, r.Compared()), r.Mismatches, r.Explained, r.Mismatches-r.Explained)
	if r.NotCompared > 0 {
		fmt.Fprintf(w, "; %d returns and cancellations not compared", r.NotCompared)
	}
	fmt.Fprintln(w)
	if len(r.Programs) > 0 {
		fmt.Fprintln(w, "\nBy program:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROGRAM\tODOO NAME\tORDERS\tAGREE\tDIFFER\tAGREEMENT")
		for _, p := range r.Programs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", p.Program, p.Name, p.Orders, p.Matches, p.Mismatches, Percent(p.Matches, p.Orders))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Explanations) > 0 {
		fmt.Fprintln(w, "\nWhy they differ:")
		for _, e := range r.Explanations {
			text := e.Text
			if text == "" {
				text = "(unknown code)"
			}
			fmt.Fprintf(w, "  %s — %d order(s), %d field(s): %s\n", e.Code, e.Orders, e.Diffs, text)
		}
	}
	if len(r.Differing) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nDiffering orders, by program:")
	type line struct {
		c *Comparison
		d Diff
	}
	byProgram := map[string][]line{}
	var order []string
	names := map[string]string{}
	odooIDs := map[string]int64{}
	for _, c := range r.Differing {
		for _, d := range c.Diffs {
			if _, seen := byProgram[d.Program]; !seen {
				order = append(order, d.Program)
			}
			byProgram[d.Program] = append(byProgram[d.Program], line{c, d})
			names[d.Program], odooIDs[d.Program] = d.Name, d.OdooID
		}
	}
	slices.SortFunc(order, func(a, b string) int { // Odoo's program ids in order, then the engine's own
		if odooIDs[a] != odooIDs[b] {
			return cmp.Compare(odooIDs[a], odooIDs[b])
		}
		return cmp.Compare(a, b)
	})
	for _, p := range order {
		fmt.Fprintf(w, "%s %s\n", p, quoted(names[p]))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, l := range byProgram[p] {
			who := l.c.CustomerID
			if who == "" {
				who = "anonymous"
			}
			fmt.Fprintf(tw, "  %s\torder %s\t%s\t%s\t%s:\tengine %s\tOdoo %s\t%s\n", l.c.OrderName, l.c.OrderID,
				l.c.OccurredAt.UTC().Format("2006-01-02 15:04"), who, l.d.Field, l.d.Engine, l.d.Odoo, l.d.Explanation)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Truncated {
		fmt.Fprintf(w, "(the first %d differing orders; narrow with --since, --until or --program)\n", len(r.Differing))
	}
	return nil
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}
