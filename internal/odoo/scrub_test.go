package odoo_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/odoo"
)

// The key is scrubbed from the whole body before the body is cut for the
// error: a key straddling the cut leaked its prefix (issue 14).
func TestOdooErrorBodyIsScrubbedBeforeItIsCut(t *testing.T) {
	t.Parallel()
	const key = "k3y-0123456789abcdef0123456789abcdef"
	for _, at := range []int{0, 490, 500, 505, 511, 600} {
		for _, status := range []int{http.StatusBadGateway, http.StatusOK} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(status)
				_, _ = w.Write([]byte(strings.Repeat("x", at) + key + strings.Repeat("y", 100)))
			}))
			c, err := odoo.New(odoo.Config{URL: srv.URL, DB: "d", Login: "l", APIKey: config.Secret(key), Timeout: 5 * time.Second})
			require.NoError(t, err)
			_, err = c.Authenticate(context.Background())
			srv.Close()
			require.Error(t, err)
			require.NotContains(t, err.Error(), key[:8], "key at byte %d, HTTP %d: %s", at, status, err)
		}
	}
}
