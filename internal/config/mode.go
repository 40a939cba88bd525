package config

import (
	"fmt"
	"strings"
)

// Modes of the engine towards Odoo (docs/MIGRATION.md).
const (
	// ModeLive: the engine's results are pushed to Odoo.
	ModeLive = "live"
	// ModeShadow: nothing that changes Odoo is pushed; each result is
	// compared with what Odoo's own loyalty gave the order.
	ModeShadow = "shadow"
)

// Modes says, per Odoo company and POS config, whether the engine is live
// or in shadow: a POS config's own mode first, then its company's, then
// the default (PROMO_MODE).
type Modes struct {
	Default    string
	Companies  map[string]string
	POSConfigs map[string]string
}

// Modes parses PROMO_MODE, PROMO_MODE_COMPANIES and PROMO_MODE_POS_CONFIGS.
func (c *Config) Modes() (Modes, error) {
	m := Modes{Default: c.Mode}
	if m.Default == "" {
		m.Default = ModeLive
	}
	if m.Default != ModeLive && m.Default != ModeShadow {
		return m, fmt.Errorf("PROMO_MODE: must be %s or %s, got %q", ModeLive, ModeShadow, c.Mode)
	}
	var err error
	if m.Companies, err = parseModeList(c.ModeCompanies); err != nil {
		return m, fmt.Errorf("PROMO_MODE_COMPANIES: %w", err)
	}
	if m.POSConfigs, err = parseModeList(c.ModePOSConfigs); err != nil {
		return m, fmt.Errorf("PROMO_MODE_POS_CONFIGS: %w", err)
	}
	return m, nil
}

// parseModeList reads "3:shadow,4:live".
func parseModeList(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, mode, ok := strings.Cut(item, ":")
		id, mode = strings.TrimSpace(id), strings.TrimSpace(mode)
		if !ok || id == "" || (mode != ModeLive && mode != ModeShadow) {
			return nil, fmt.Errorf("item %d %q is not <odoo id>:live or <odoo id>:shadow", i+1, item)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("id %s is listed twice", id)
		}
		out[id] = mode
	}
	return out, nil
}

// Of is the mode of an order of company and POS config.
func (m Modes) Of(company, posConfig string) string {
	if mode, ok := m.POSConfigs[posConfig]; ok && posConfig != "" {
		return mode
	}
	if mode, ok := m.Companies[company]; ok && company != "" {
		return mode
	}
	return m.Default
}

// Uniform reports the mode when every order has the same one (no
// exception per company or POS config differs from the default).
func (m Modes) Uniform() (string, bool) {
	for _, list := range []map[string]string{m.Companies, m.POSConfigs} {
		for _, mode := range list {
			if mode != m.Default {
				return "", false
			}
		}
	}
	return m.Default, true
}

// AnyShadow reports whether some orders are in shadow.
func (m Modes) AnyShadow() bool {
	if mode, uniform := m.Uniform(); uniform {
		return mode == ModeShadow
	}
	return true
}

// AnyLive reports whether some orders are live.
func (m Modes) AnyLive() bool {
	if mode, uniform := m.Uniform(); uniform {
		return mode == ModeLive
	}
	return true
}
