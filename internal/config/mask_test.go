package config

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every shape of credential an operator may write into PROMO_DATABASE_URL,
// PROMO_NATS_URL or PROMO_ODOO_URL is masked (issue 14: key=value DSNs,
// ?password=, NATS user:pass@ and Odoo URL credentials were logged).
func TestMaskURLHidesEveryCredential(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://promo:s3cret@db:5432/promo?sslmode=require":            "postgres://promo:***@db:5432/promo?sslmode=require",
		"postgresql://promo@db/promo?password=s3cret&sslmode=disable":      "postgresql://promo@db/promo?password=***&sslmode=disable",
		"postgres://promo@db/promo?pass%77ord=s3cret":                      "postgres://promo@db/promo?pass%77ord=***",
		"postgres://promo@db/promo?sslpassword=s3cret&passfile=/x/.pgpass": "postgres://promo@db/promo?sslpassword=***&passfile=/x/.pgpass",
		"postgres://u:p@ss/w@rd@db/promo":                                  "postgres://u:***@db/promo",
		"postgres://u:s3cret@h1:5432,h2:5432/promo?password=s3cret":        "postgres://u:***@h1:5432,h2:5432/promo?password=***",
		"host=db user=promo password=s3cret dbname=promo":                  "host=db user=promo password=*** dbname=promo",
		"host=db password = 's3 cr\\'et' sslpassword=s3cret":               "host=db password = *** sslpassword=***",
		"host=db password='s3cret":                                         "*** (not shown: not a URL or key=value string)",
		"nats://alice:s3cret@nats-1:4222,nats://alice:s3cret@nats-2:4222":  "nats://alice:***@nats-1:4222,nats://alice:***@nats-2:4222",
		"nats://s3cret@nats:4222":                                          "nats://***@nats:4222",
		"tls://s3cret@nats:4222":                                           "tls://***@nats:4222",
		"alice:s3cret@nats:4222":                                           "*** (not shown: not a URL or key=value string)",
		"https://admin:s3cret@odoo.example.com/odoo?token=s3cret":          "https://admin:***@odoo.example.com/odoo?token=***",
		"https://odoo.example.com":                                         "https://odoo.example.com",
		"nats://127.0.0.1:4222":                                            "nats://127.0.0.1:4222",
		"db:5432":                                                          "db:5432",
		"":                                                                 "",
	} {
		got := MaskURL(in)
		require.Equal(t, want, got, in)
		require.NotContains(t, got, "s3cret", in)
	}
}

// Config errors name the variable and never echo its value: envconfig's own
// errors quoted the whole value (a bad PROMO_API_KEYS printed every key).
func TestConfigErrorsNeverEchoValues(t *testing.T) {
	for name, value := range map[string]string{
		"PROMO_API_KEYS":           "k-s3cret-1:pos,k-s3cret-2:pos;k-s3cret-3:admin",
		"PROMO_BATCH_SIZE":         "s3cret",
		"PROMO_ODOO_TIMEOUT":       "s3cret",
		"PROMO_PPROF":              "s3cret",
		"PROMO_DATABASE_MAX_CONNS": "99999999999999999999s3cret",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			_, err := Load()
			require.Error(t, err)
			require.Contains(t, err.Error(), name)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
	t.Run("validation", func(t *testing.T) {
		t.Setenv("PROMO_ODOO_URL", "ftp://admin:s3cret@odoo")
		t.Setenv("PROMO_DATABASE_URL", "mysql://u:s3cret@db")
		t.Setenv("PROMO_LOG_LEVEL", "s3cret")
		t.Setenv("PROMO_LOG_FORMAT", "s3cret")
		t.Setenv("PROMO_WORKERS", "orders,s3cret")
		t.Setenv("PROMO_API_KEYS", "s3cret:pos,s3cret:admin")
		_, err := Load()
		require.Error(t, err)
		for _, v := range []string{"PROMO_ODOO_URL", "PROMO_DATABASE_URL", "PROMO_LOG_LEVEL", "PROMO_LOG_FORMAT", "PROMO_WORKERS", "PROMO_API_KEYS"} {
			require.Contains(t, err.Error(), v)
		}
		require.NotContains(t, err.Error(), "s3cret")
	})
}

func TestLogFieldsMaskEveryURL(t *testing.T) {
	t.Parallel()
	c := Config{DatabaseURL: "host=db password=s3cret", NATSURL: "nats://u:s3cret@nats:4222", OdooURL: "https://u:s3cret@odoo", NATSCreds: "/etc/nats/promo.creds"}
	out := fmt.Sprint(c.LogFields())
	require.NotContains(t, out, "s3cret")
	require.Contains(t, out, "nats://u:***@nats:4222")
	require.Contains(t, out, "https://u:***@odoo")
	require.Equal(t, "host=db password=***", c.MaskedDatabaseURL())
}
