package natsembed_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/natsembed"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, opts natsembed.Options) *server.Server {
	t.Helper()
	srv, err := natsembed.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

func jetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("StreamsSurviveRestart", func(t *testing.T) {
		t.Parallel()

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		store := t.TempDir()

		first, err := natsembed.Start(natsembed.Options{StoreDir: store})
		require.NoError(t, err)
		js := jetStream(t, first.ClientURL())
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEPT", Subjects: []string{"kept.>"}, Storage: jetstream.FileStorage})
		require.NoError(t, err)
		_, err = js.Publish(ctx, "kept.one", []byte("still here"))
		require.NoError(t, err)
		first.Shutdown()
		first.WaitForShutdown()

		second := start(t, natsembed.Options{StoreDir: store})
		stream, err := jetStream(t, second.ClientURL()).Stream(ctx, "KEPT")
		require.NoError(t, err)
		msg, err := stream.GetMsg(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, "still here", string(msg.Data))
	})

	t.Run("FixedPort", func(t *testing.T) {
		t.Parallel()

		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())

		srv := start(t, natsembed.Options{StoreDir: t.TempDir(), Port: port})
		require.Equal(t, "nats://127.0.0.1:"+strconv.Itoa(port), srv.ClientURL())
	})

	t.Run("PortInUse", func(t *testing.T) {
		t.Parallel()

		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })

		began := time.Now()
		_, err = natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Port: l.Addr().(*net.TCPAddr).Port})
		require.ErrorContains(t, err, "address already in use")
		require.Less(t, time.Since(began), 10*time.Second, "a port conflict is reported at once, not after the ready timeout")
	})

	t.Run("StoreDirRequired", func(t *testing.T) {
		t.Parallel()

		_, err := natsembed.Start(natsembed.Options{})
		require.ErrorContains(t, err, "StoreDir is required")
	})
}
