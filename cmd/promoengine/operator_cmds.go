package main

import (
	"context"
	"errors"
)

// The operator commands of issue 7 land in their own files.

func runPublish(ctx context.Context, c *cli, args []string) error {
	return errors.New("publish: not built yet")
}

func runReplay(ctx context.Context, c *cli, args []string) error {
	return errors.New("replay: not built yet")
}

func runDLQ(ctx context.Context, c *cli, args []string) error {
	return errors.New("dlq: not built yet")
}

func runStatus(ctx context.Context, c *cli, args []string) error {
	return errors.New("status: not built yet")
}
