// Package loyalty carries a shop over from Odoo's own loyalty (the loyalty
// and pos_loyalty modules of Odoo 17/18) to the engine: it reads Odoo's
// programs and cards over JSON-RPC and translates them, and it reads what
// Odoo's loyalty gave an order, for the shadow comparison
// (docs/MIGRATION.md).
//
// # Reading
//
// Read fetches, with read and search_read only, the loyalty.program records
// (archived ones too, to list them), their loyalty.rule and loyalty.reward,
// the cards holding points of the coupon programs, and the products,
// categories, tags, pricelists, POS configs, companies and currencies they
// name, into a Snapshot: the records exactly as Odoo answered. Snapshots of
// a real Odoo 17.0 are the testdata of the table tests.
//
// # Translating
//
// Translate is pure: a Snapshot in, a catalog (YAML with comments, checked
// by rules.Parse) and a report out. Every Odoo program is in the report —
// translated, partly, not translated or skipped — with the reason, and the
// catalog file repeats it at its end: nothing is dropped silently.
//
// Odoo's loyalty is a points machine: a program's rules give points when an
// order meets them (per order, per unit, per amount spent), and a reward
// costs points. For a program applied to the current order (promotion, buy
// X get Y, discount code) a reward is claimed when the order earns its
// points; the POS claims it by itself when it is the program's only reward.
// So a program with one rule and one reward translates to one catalog
// program (id odoo-<program id>, priority its sequence):
//
//	rule products, category, tag   when.products (a category includes its
//	                               subcategories in both)
//	rule minimum_qty, minimum_amount when.min_qty, when.min_amount, raised to
//	                               what the reward's points need (points per
//	                               unit: ceil(required / points per unit)
//	                               units; per amount: required / points per
//	                               currency unit, rounded up)
//	rule code                      when.code
//	program dates                  valid (date_to included: until the next
//	                               day 00:00 in the catalog time zone)
//	program usage limit            limits.total_uses, minus Odoo's uses
//	program POS configs, company   when.pos_configs, when.companies (when the
//	                               database has several companies)
//	reward discount percent        reward.percent; per order: reward.amount;
//	                               discount_max_amount: reward.max
//	applicability order            layer order, on: order
//	applicability cheapest         layer item, on: cheapest
//	applicability specific         layer item, on: lines, when.products the
//	                               reward's products (the rule must count the
//	                               same ones, or the whole order without a
//	                               minimum)
//	free product, points per unit  buy_get {buy: required / points per unit,
//	                               get: the reward's quantity}, in the rule's
//	                               pool when the product is among the units
//	                               counted (Odoo's computeFreeQuantity), else
//	                               in a pool of the reward product
//
// Coupons become one program per open coupon (when.code the coupon's code,
// total_uses what its points buy, valid until its expiration), up to
// Options.MaxCouponCodes: every program is in every result's trace. Next
// order coupons issue engine coupons (issue_coupon, SPEC §6.10) where the
// catalog has them; their open coupons are imported like coupons. The
// loyalty program (one: the catalog has one points ledger) becomes the
// points section: money rules over the whole order earn (per smallest
// currency unit, so 0.5 point per dollar earns exactly half the net), order
// rules give bonus points, the per point discount redeems.
//
// What is not translated, with the reason in the report: gift cards and
// eWallets (means of payment), programs restricted to pricelists (events
// carry none), product domains other than "every product", programs with
// several rules or several rewards, discounts per point outside the loyalty
// program, free products chosen at the till, rewards bought with loyalty
// points other than the per point discount. Where the translation runs but
// the engine will still give another result than Odoo (rounding of points,
// the base of points earned, cheapest unit before or after promotions,
// codes the POS does not send), the report lists the difference, and the
// shadow comparison names it when it happens.
package loyalty
