package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/identity"
)

// PUT /v1/catalog leaves an audit entry naming the key by its fingerprint
// or the token by its issuer and subject, the version, the change and the
// client's address; a refused catalog leaves a failed one.
func TestAPICatalogIsAudited(t *testing.T) {
	t.Parallel()
	iss, v := newOIDC(t)
	b := setupAPI(t, apiOptions{db: true, oidc: v})
	r := b.do("PUT", "/v1/catalog", adminKey, []byte(testCatalog))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	token := iss.Token(t, iss.Claims(time.Now(), "ops-ann", "promo.admin"))
	r = b.do("PUT", "/v1/catalog", token, []byte(strings.Replace(testCatalog, `percent: "10"`, `percent: "15"`, 1)))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = b.do("PUT", "/v1/catalog", adminKey, []byte(`currency: idr`))
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, http.StatusForbidden, b.do("PUT", "/v1/catalog", posKey, []byte(testCatalog)).status)

	entries, err := audit.List(b.ctx, b.pool, audit.Filter{})
	require.NoError(t, err)
	require.Len(t, entries, 3, "a request refused by role is not an admin action")
	keyActor := "api_key " + identity.Fingerprint(adminKey)
	require.Equal(t, keyActor, entries[0].Actor)
	require.Equal(t, "catalog version 1", entries[0].Target)
	require.Equal(t, "oidc "+iss.URL+"#ops-ann", entries[1].Actor)
	require.Equal(t, "catalog version 2", entries[1].Target)
	require.JSONEq(t, `["drinks-10"]`, jsonField(t, entries[1].Details, "programs_changed"))
	require.Equal(t, keyActor, entries[2].Actor)
	require.Equal(t, audit.OutcomeFailed, entries[2].Outcome)
	for _, e := range entries {
		require.Equal(t, audit.ActionCatalogApply, e.Action)
		require.True(t, strings.HasPrefix(e.Source, "http 127.0.0.1:"), e.Source)
		require.NotContains(t, string(e.Details)+e.Actor, adminKey, "never the key")
	}
	require.Contains(t, b.logs.String(), `"message":"audit"`, "each entry is logged as well")
}

func jsonField(t *testing.T, doc []byte, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc, &m))
	return string(m[name])
}
