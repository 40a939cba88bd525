package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// `dev` serves the API on the loopback unless told otherwise, and warns
// when told to serve it beyond the machine with the well-known dev keys
// (issue 14: it listened on every interface with fixed keys).
//
//nolint:paralleltest // sets the environment
func TestDevListensOnTheLoopbackUnlessToldOtherwise(t *testing.T) {
	var logs bytes.Buffer
	c := &cli{log: zerolog.New(&logs)}

	t.Setenv("PROMO_HTTP_ADDR", "")
	require.NoError(t, os.Unsetenv("PROMO_HTTP_ADDR"))
	t.Setenv("PROMO_API_KEYS", "")
	setDevDefaults(c)
	require.Equal(t, "127.0.0.1:8080", os.Getenv("PROMO_HTTP_ADDR"))
	require.Contains(t, os.Getenv("PROMO_API_KEYS"), "dev-pos-key")
	require.Empty(t, logs.String())

	t.Setenv("PROMO_HTTP_ADDR", ":9090")
	t.Setenv("PROMO_API_KEYS", "")
	setDevDefaults(c)
	require.Equal(t, ":9090", os.Getenv("PROMO_HTTP_ADDR"), "told otherwise")
	require.Contains(t, logs.String(), "well-known dev keys")

	logs.Reset()
	t.Setenv("PROMO_API_KEYS", "own-key:admin")
	setDevDefaults(c)
	require.Empty(t, logs.String(), "own keys: no warning")

	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, ":1": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "nonsense": false} {
		require.Equal(t, want, loopback(addr), addr)
	}
}
