package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadDefaultsAndValidation(t *testing.T) {
	t.Setenv("PROMO_DATABASE_URL", "postgres://promo:s3cret@db/promo")
	c, err := Load()
	require.NoError(t, err)
	require.Equal(t, 256, c.BatchSize)
	require.Equal(t, "pos.order", c.OdooModel)
	require.Equal(t, []string{"orders", "outbox", "odoo", "jobs", "api"}, must(c.WorkerList()))
	require.Equal(t, "postgres://promo:***@db/promo", c.MaskedDatabaseURL())

	t.Setenv("PROMO_BATCH_SIZE", "0")
	t.Setenv("PROMO_LOG_FORMAT", "xml")
	t.Setenv("PROMO_WORKERS", "orders,nope")
	t.Setenv("PROMO_ODOO_URL", "ftp://odoo")
	_, err = Load()
	require.Error(t, err)
	for _, name := range []string{"PROMO_BATCH_SIZE", "PROMO_LOG_FORMAT", "PROMO_WORKERS", "PROMO_ODOO_URL", "PROMO_ODOO_DB", "PROMO_ODOO_LOGIN", "PROMO_ODOO_API_KEY"} {
		require.Contains(t, err.Error(), name+":", "every bad variable is named")
	}
}

func TestAPIKeysParseAndNeverPrint(t *testing.T) {
	t.Setenv("PROMO_API_KEYS", "k-pos-123:pos, k-admin-456:admin")
	t.Setenv("PROMO_ODOO_API_KEY", "odoo-key-789")
	c, err := Load()
	require.NoError(t, err)
	require.Len(t, c.APIKeys, 2)
	require.Equal(t, RoleAdmin, c.APIKeys[1].Role)

	fields, err := json.Marshal(c.LogFields())
	require.NoError(t, err)
	whole, err := json.Marshal(c)
	require.NoError(t, err)
	for _, out := range []string{string(fields), string(whole), fmt.Sprintf("%v %+v %#v", c, c, c)} {
		for _, secret := range []string{"k-pos-123", "k-admin-456", "odoo-key-789"} {
			require.False(t, strings.Contains(out, secret), "a secret leaked: %s", out)
		}
	}

	t.Setenv("PROMO_API_KEYS", "k1:owner")
	_, err = Load()
	require.ErrorContains(t, err, "PROMO_API_KEYS")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestVariablesListsEveryField(t *testing.T) {
	vars := Variables()
	require.Contains(t, vars, "PROMO_NATS_URL")
	require.Contains(t, vars, "PROMO_ODOO_API_KEY")
	require.Equal(t, reflect.TypeFor[Config]().NumField(), len(vars), "every field of Config has an envconfig tag")
}
