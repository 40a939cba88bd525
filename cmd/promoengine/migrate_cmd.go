package main

import (
	"context"
	"fmt"

	"github.com/promoengine/promoengine/migrations"
)

func runMigrate(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "migrate", "migrate", "  PROMO_DATABASE_URL=postgres://promo@db/promo promoengine migrate\n")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	pool, err := openPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := migrations.Up(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(c.stdout, "database is up to date")
		return nil
	}
	fmt.Fprintf(c.stdout, "applied migrations %v\n", applied)
	return nil
}
