package gctune

import (
	"context"
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLimitFollowsTheLiveHeap(t *testing.T) {
	require.Equal(t, int64(Target), Limit(0))
	require.Equal(t, int64(Target), Limit(20<<20), "a small heap keeps the target")
	require.Equal(t, int64(150<<20+Slack), Limit(100<<20), "a large heap gets 1.5 × itself, never a limit under it")
}

func TestTuneLeavesGoSettingsAlone(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	env := map[string]string{"GOGC": "100"}
	require.False(t, Tune(ctx, func(k string) string { return env[k] }))
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: unchanged")

	env = map[string]string{}
	require.True(t, Tune(ctx, func(k string) string { return env[k] }))
	require.Equal(t, Percent, debug.SetGCPercent(Percent))
	require.GreaterOrEqual(t, debug.SetMemoryLimit(-1), int64(Target))
}
