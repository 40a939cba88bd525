package ledger

import (
	"context"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// CustomerView is a customer's points and levels, for `customer show` and
// GET /v1/customers/{id}.
type CustomerView struct {
	CustomerID string         `json:"customer_id"`
	Balance    dec.Decimal    `json:"balance"`
	Debt       dec.Decimal    `json:"debt"`
	Lots       []LotView      `json:"lots"`
	Levels     []LevelView    `json:"levels"`
	History    []HistoryEntry `json:"history"`
}

// LotView is one lot with points left.
type LotView struct {
	LotID       string      `json:"lot_id"`
	EarnedAt    string      `json:"earned_at"`
	AvailableAt string      `json:"available_at"`
	ExpiresAt   *string     `json:"expires_at"`
	Original    dec.Decimal `json:"original"`
	Remaining   dec.Decimal `json:"remaining"`
}

// LevelView is the level held on one path.
type LevelView struct {
	Path  string `json:"path"`
	Level string `json:"level"`
	Since string `json:"since"`
}

// HistoryEntry is one ledger entry (kind earn, redeem, …) or one level
// change (kind level_change), newest first.
type HistoryEntry struct {
	At            string       `json:"at"`
	Kind          string       `json:"kind"`
	Amount        *dec.Decimal `json:"amount,omitempty"`
	LotID         string       `json:"lot_id,omitempty"`
	OrderID       string       `json:"order_id,omitempty"`
	EventID       string       `json:"event_id"`
	Path          string       `json:"path,omitempty"`
	PreviousLevel string       `json:"previous_level,omitempty"`
	Level         string       `json:"level,omitempty"`
	Reason        string       `json:"reason,omitempty"`
}

// HistoryLimit is how many history entries Customer returns.
const HistoryLimit = 50

// Customer returns the customer's view at `at`: the balance spendable then,
// the debt, the lots with points left that have not expired by then
// (pending ones included) in FEFO order, the levels, and the last
// HistoryLimit ledger entries and level changes. ErrUnknownCustomer when the
// customer has no applied order.
func (s *Store) Customer(ctx context.Context, db DB, id string, at time.Time, cat *rules.Catalog) (*CustomerView, error) {
	return nil, ErrUnknownCustomer
}
