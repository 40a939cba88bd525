package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                     string
		mode, companies, configs string
		err                      string
		uniform                  string // "" when mixed
		of                       map[[2]string]string
	}{
		{name: "live by default", uniform: ModeLive, of: map[[2]string]string{{"1", "3"}: ModeLive}},
		{name: "all in shadow", mode: "shadow", uniform: ModeShadow, of: map[[2]string]string{{"1", "3"}: ModeShadow}},
		{name: "a company live, a POS config of it in shadow", mode: "shadow", companies: "1:live, 2:shadow", configs: "3:shadow",
			of: map[[2]string]string{{"1", "3"}: ModeShadow, {"1", "4"}: ModeLive, {"2", "5"}: ModeShadow, {"9", "9"}: ModeShadow}},
		{name: "exceptions equal to the default", mode: "live", companies: "1:live", uniform: ModeLive},
		{name: "unknown mode", mode: "dry", err: "PROMO_MODE: must be live or shadow"},
		{name: "bad item", companies: "1=shadow", err: `PROMO_MODE_COMPANIES: item 1 "1=shadow"`},
		{name: "twice", configs: "3:live,3:shadow", err: "PROMO_MODE_POS_CONFIGS: id 3 is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &Config{Mode: tc.mode, ModeCompanies: tc.companies, ModePOSConfigs: tc.configs}
			m, err := c.Modes()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			mode, uniform := m.Uniform()
			require.Equal(t, tc.uniform != "", uniform)
			require.Equal(t, tc.uniform, mode)
			for k, want := range tc.of {
				require.Equal(t, want, m.Of(k[0], k[1]), "company %s, POS config %s", k[0], k[1])
			}
			require.Equal(t, tc.uniform != ModeLive, m.AnyShadow())
			require.Equal(t, tc.uniform != ModeShadow, m.AnyLive())
		})
	}
}

func TestShadowNeedsOdoo(t *testing.T) {
	t.Setenv("PROMO_MODE", "shadow")
	t.Setenv("PROMO_ODOO_URL", "")
	_, err := Load()
	require.ErrorContains(t, err, "PROMO_MODE: shadow compares with Odoo: set PROMO_ODOO_URL")
}
