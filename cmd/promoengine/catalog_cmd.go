package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

const catalogUsage = `catalog apply -f FILE | catalog validate -f FILE | catalog show [--version N] [--list]`

const catalogExamples = `  promoengine catalog validate -f examples/catalog.yaml   # check a file, change nothing
  promoengine catalog apply -f examples/catalog.yaml      # store a new version; workers switch to it
  promoengine catalog show                                # the version in force, as JSON
  promoengine catalog show --list                         # every version with its date
`

func runCatalog(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		return usagef("catalog: want a subcommand: %s", catalogUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		_, err := parseFlags(newFlags(c, "catalog", catalogUsage, catalogExamples), []string{"--help"})
		return err
	case "apply", "validate":
		fs := newFlags(c, "catalog "+args[0], catalogUsage, catalogExamples)
		file := fs.String("f", "", "catalog file, YAML or JSON (- for stdin)")
		if help, err := parseFlags(fs, args[1:]); help || err != nil {
			return err
		}
		if *file == "" {
			return usagef("catalog %s: -f FILE is required", args[0])
		}
		cat, err := readCatalogFile(c, *file)
		if err != nil {
			return err
		}
		if args[0] == "validate" {
			fmt.Fprintf(c.stdout, "%s: valid (%d programs)\n", *file, len(cat.Programs))
			return nil
		}
		cfg, err := loadConfig(c)
		if err != nil {
			return err
		}
		if err := ledger.CheckCouponSecret(cat, []byte(cfg.CouponSecret)); err != nil {
			return fmt.Errorf("catalog %s refused; nothing was applied: PROMO_COUPON_SECRET is not set (set it, the same as the engine's, to a random secret of at least %d characters): %w",
				*file, config.MinCouponSecret, err)
		}
		pool, err := openMigratedPool(ctx, c)
		if err != nil {
			return err
		}
		defer pool.Close()
		a := newCLIAudit(c, pool)
		version, change, id, err := audit.ApplyCatalog(ctx, pool, cat, a.entry())
		if err != nil {
			return err
		}
		e := a.entry()
		e.Action, e.Target = audit.ActionCatalogApply, fmt.Sprintf("catalog version %d", version)
		audit.Log(c.log, id, e, change)
		fmt.Fprintf(c.stdout, "catalog version %d applied (%d programs); running workers switch to it within seconds\n", version, len(cat.Programs))
		printCatalogChange(c, change)
		return nil
	case "show":
		fs := newFlags(c, "catalog show", catalogUsage, catalogExamples)
		version := fs.Int64("version", 0, "show this version instead of the latest")
		list := fs.Bool("list", false, "list every version")
		if help, err := parseFlags(fs, args[1:]); help || err != nil {
			return err
		}
		pool, err := openPool(ctx, c)
		if err != nil {
			return err
		}
		defer pool.Close()
		if *list {
			versions, err := ledger.CatalogVersions(ctx, pool)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tAPPLIED AT")
			for _, v := range versions {
				fmt.Fprintf(tw, "%d\t%s\n", v.Version, v.CreatedAt.Format("2006-01-02 15:04:05 MST"))
			}
			return tw.Flush()
		}
		var cat *rules.Catalog
		if *version > 0 {
			cat, err = ledger.CatalogByVersion(ctx, pool, *version)
		} else {
			cat, err = ledger.LatestCatalog(ctx, pool)
		}
		if errors.Is(err, ledger.ErrNoCatalog) {
			return errors.New("no catalog applied yet: promoengine catalog apply -f FILE")
		}
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(cat.JSON, &doc); err != nil {
			return err
		}
		out := map[string]any{"version": cat.Version, "catalog": doc}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return usagef("catalog: unknown subcommand %q; want %s", args[0], catalogUsage)
}

// readCatalogFile parses a catalog file, printing every violation.
func readCatalogFile(c *cli, file string) (*rules.Catalog, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(c.stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	cat, err := rules.Parse(data)
	var ce *rules.CatalogError
	if errors.As(err, &ce) {
		fmt.Fprintf(c.stderr, "%s is not a valid catalog (%d problems):\n", file, len(ce.Violations))
		for _, v := range ce.Violations {
			fmt.Fprintf(c.stderr, "  %s\n", v)
		}
		return nil, fmt.Errorf("catalog %s refused; nothing was applied", file)
	}
	return cat, err
}

// printCatalogChange says what changed against the version before.
func printCatalogChange(c *cli, ch audit.CatalogChange) {
	if ch.PreviousVersion == 0 {
		return
	}
	var parts []string
	for _, p := range []struct {
		what string
		ids  []string
	}{{"added", ch.Added}, {"removed", ch.Removed}, {"changed", ch.Changed}, {"settings changed", ch.Settings}} {
		if len(p.ids) > 0 {
			parts = append(parts, p.what+": "+strings.Join(p.ids, ", "))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no change"}
	}
	fmt.Fprintf(c.stdout, "against version %d: %s\n", ch.PreviousVersion, strings.Join(parts, "; "))
}
