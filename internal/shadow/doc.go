// Package shadow compares the engine's results with what Odoo's own
// loyalty gave the same orders, while a shop moves from Odoo's loyalty to
// the engine (docs/MIGRATION.md). In shadow mode the engine processes every
// order as usual but pushes nothing to Odoo (workers.OdooPusher acknowledges
// those results without a call); workers.OdooShadow reads Odoo's side of
// each order (loyalty.OrderReader) once the POS has confirmed it, and this
// package compares, stores and reports.
//
// # What is compared
//
// Compare groups both sides by Odoo program: an engine program made by the
// import (odoo-<id>, odoo-<id>-card-<card>, odoo-<id>-rule-<rule>) counts
// for Odoo program <id>; the points layer (a redemption), the points earned
// and the bonus points count for the loyalty program whose points the
// catalog keeps. Per program, the fields:
//
//	discount        Σ of the engine's discounts | Σ of Odoo's reward lines
//	                (−price_unit × qty), both rounded to the catalog's money
//	codes           codes of the engine's applied code programs | codes
//	                scanned in Odoo (a coupon's, or the program's rule code)
//	coupons_issued  the engine's coupons_issued | cards the order created
//	                for a program of future orders
//	points_earned   the result's points.earned | what the card won
//	                (promo_engine_loyalty's recorded change + its cost)
//	points_spent    the result's points.redeemed | Σ points_cost
//	points_balance  the result's points.balance | the card's points after
//	                the order (recorded), when the order's own points agree
//
// # Explanations
//
// A difference is named by the known systematic difference it comes from
// (Explain has the texts): the program is not in the catalog; a code or a
// redemption the order event does not carry (Odoo's POS keeps them); the
// rounding of points (Odoo half up to 0.01, the engine down) and money;
// Odoo checking a rule's minimum before its automatic discounts; points
// following from a differing discount; balances apart from before (the
// engine's lots spent and expired first-expiring-first against Odoo's one
// card balance); coupons the catalog does not issue;
// Odoo 17 without promo_engine_loyalty, where points are not recorded per
// order. What matches none is "unexplained": the report puts it first in
// line for a look at the translation. Returns and cancellations are not
// compared: Odoo 17's POS loyalty reverses nothing on a refund.
//
// # Storage and report
//
// Save keeps one row per compared event in shadow_comparisons (migration
// 00006; a redelivered result replaces its row). Query aggregates in SQL:
// the agreement, the agreement by program (from each row's programs), the
// explanations with their counts, and the differing orders (bounded);
// Report.Write renders it for `promoengine shadow report`.
// promo_shadow_comparisons_total counts programs by outcome as they are
// compared.
package shadow
