package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/identity"
)

func TestScopedAPIKeys(t *testing.T) {
	t.Setenv("PROMO_API_KEYS", "k-store-1:pos@company=1;pos_config=3|4, k-pos:pos, k-admin-co2:admin@company=2")
	c, err := Load()
	require.NoError(t, err)
	require.Equal(t, APIKeys{
		{Key: "k-store-1", Role: RolePOS, Scope: identity.Scope{CompanyIDs: []string{"1"}, PosConfigIDs: []string{"3", "4"}}},
		{Key: "k-pos", Role: RolePOS},
		{Key: "k-admin-co2", Role: RoleAdmin, Scope: identity.Scope{CompanyIDs: []string{"2"}}},
	}, c.APIKeys)
	fields, err := json.Marshal(c.LogFields())
	require.NoError(t, err)
	require.Contains(t, string(fields), ":pos@company=1;pos_config=3|4")
	require.NotContains(t, string(fields), "k-store-1")

	for _, bad := range []string{"k:pos@", "k:pos@store=1", "k:pos@company=1;company=2", "k:root@company=1", "k:pos@company=1|"} {
		t.Setenv("PROMO_API_KEYS", bad)
		_, err := Load()
		require.ErrorContains(t, err, "PROMO_API_KEYS", bad)
	}
}

func TestSecurityVariables(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not a certificate"), 0o600))

	t.Setenv("PROMO_OIDC_ISSUER", "https://sso.example.com/realms/shop")
	t.Setenv("PROMO_OIDC_AUDIENCE", "promoengine")
	c, err := Load()
	require.NoError(t, err)
	require.Equal(t, "roles", c.OIDCRolesClaim)

	cases := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"PROMO_OIDC_AUDIENCE": ""}, []string{"PROMO_OIDC_AUDIENCE:"}},
		{map[string]string{"PROMO_OIDC_ISSUER": "http://sso.example.com"}, []string{"PROMO_OIDC_ISSUER: must be https"}},
		{map[string]string{"PROMO_OIDC_ISSUER": "sso.example.com"}, []string{"PROMO_OIDC_ISSUER:"}},
		{map[string]string{"PROMO_OIDC_ISSUER": "", "PROMO_OIDC_AUDIENCE": "x"}, []string{"PROMO_OIDC_ISSUER: is required"}},
		{map[string]string{"PROMO_TLS_CERT_FILE": junk}, []string{"PROMO_TLS_CERT_FILE: and PROMO_TLS_KEY_FILE go together"}},
		{map[string]string{"PROMO_TLS_CERT_FILE": junk, "PROMO_TLS_KEY_FILE": junk}, []string{"PROMO_TLS_CERT_FILE: with PROMO_TLS_KEY_FILE"}},
		{map[string]string{"PROMO_NATS_CA_FILE": missing, "PROMO_NATS_KEY_FILE": junk}, []string{"PROMO_NATS_CA_FILE: cannot read", "PROMO_NATS_CERT_FILE: and PROMO_NATS_KEY_FILE"}},
		{map[string]string{"PROMO_NATS_NKEY_FILE": junk, "PROMO_NATS_CREDS": junk}, []string{"PROMO_NATS_NKEY_FILE: set either"}},
	}
	for _, c := range cases {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		_, err := Load()
		require.Error(t, err, "%v", c.env)
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, "%v", c.env)
		}
		for _, k := range []string{"PROMO_TLS_CERT_FILE", "PROMO_TLS_KEY_FILE", "PROMO_NATS_CA_FILE", "PROMO_NATS_KEY_FILE", "PROMO_NATS_NKEY_FILE", "PROMO_NATS_CREDS"} {
			t.Setenv(k, "")
		}
		t.Setenv("PROMO_OIDC_ISSUER", "https://sso.example.com/realms/shop")
		t.Setenv("PROMO_OIDC_AUDIENCE", "promoengine")
	}
}
