package events

import "github.com/promoengine/promoengine/pkg/dec"

// TypeLevelWarning is the type of a downgrade warning (SPEC §4, §6.8).
const TypeLevelWarning = "promo.level_warning"

// LevelWarning is the promo.results.level_warning event: as of OccurredAt
// (the job's as-of time), the customer's level on Path would drop to
// ToLevel at DowngradeAt unless they spend SpendNeeded more before then.
type LevelWarning struct {
	EventID     string      `json:"event_id"`
	Type        string      `json:"type"`
	OccurredAt  string      `json:"occurred_at"`
	CustomerID  string      `json:"customer_id"`
	Path        string      `json:"path"`
	Level       string      `json:"level"`
	ToLevel     string      `json:"to_level"`
	DowngradeAt string      `json:"downgrade_at"`
	SpendNeeded dec.Decimal `json:"spend_needed"`
}
