// Package testnats gives a test its own NATS JetStream server.
//
// Each call to New starts a fresh in-process nats-server (internal/natsembed,
// the same code `promoengine dev` runs) on a random port with JetStream file
// storage in t.TempDir(). Tests therefore exercise real acks, redeliveries,
// Nats-Msg-Id deduplication and stream limits, never a fake, and never see
// each other's streams, so they can run with t.Parallel(). A server starts
// in milliseconds, cheaper than isolating tests inside one shared server.
//
// Everything New, Conn and JetStream create is closed in t.Cleanup:
// connections first, then the server. The server stops completely (no
// goroutine left behind), so packages using testnats can keep the goleak
// check in TestMain.
package testnats

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/natsembed"
)

// Server is a running test server.
type Server struct {
	srv *server.Server
	url string
}

// New starts a JetStream server for the test and shuts it down at cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{srv: srv, url: srv.ClientURL()}
}

// URL is the client URL, e.g. for PROMO_NATS_URL of a subprocess.
func (s *Server) URL() string { return s.url }

// Conn opens a new connection, closed at cleanup of t. Each call returns a
// new connection so that a test can give each worker its own, as production
// processes have.
func (s *Server) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.url, nats.Name(t.Name()))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a new connection (see Conn).
func (s *Server) JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Conn(t))
	require.NoError(t, err)
	return js
}
