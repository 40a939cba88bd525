"""The transactional outbox: order events waiting to reach promoengine.

A record is written in the transaction that makes the order final, so it
exists exactly when the order does (a rolled-back sync leaves neither).
After the commit, a post-commit hook sends the transaction's records at
once; what it could not send (engine down, network cut, slow answer) is
sent by the cron with exponential backoff, for as long as it takes. The
engine deduplicates by event id, so sending twice is harmless; a 400 answer
(the event is invalid) is final and shown as failed.
"""

import json
import logging
import threading
import time
from datetime import timedelta
from functools import partial

import requests

from odoo import SUPERUSER_ID, api, fields, models, release

_logger = logging.getLogger(__name__)

# After a failure to reach the engine, the post-commit hook leaves sending to
# the cron for this long, so that a till never waits for an unreachable
# engine more than once in a while.
CIRCUIT_SECONDS = 30
# Timeouts (connect, read) of the post-commit send and of the cron's.
HOOK_TIMEOUT = (1.0, 3.0)
CRON_TIMEOUT = (3.0, 10.0)
# Backoff of one event: 10 s doubling per attempt, at most 5 min.
BACKOFF_BASE = 10
BACKOFF_MAX = 300
CRON_BATCH = 500

_circuit = {"failed_at": 0.0}
_circuit_lock = threading.Lock()


def _circuit_open():
    with _circuit_lock:
        return time.monotonic() - _circuit["failed_at"] < CIRCUIT_SECONDS


def _trip(ok):
    with _circuit_lock:
        _circuit["failed_at"] = 0.0 if ok else time.monotonic()


class PromoEngineOutbox(models.Model):
    _name = "promo.engine.outbox"
    _description = "Promo Engine outbox: order events to send to the engine"
    _order = "id desc"
    _rec_name = "event_id"

    event_id = fields.Char(required=True, readonly=True, index=True)
    event_type = fields.Char(readonly=True)
    order_id = fields.Many2one("pos.order", string="Order", readonly=True, index=True, ondelete="set null")
    payload = fields.Text(readonly=True, help="The event as sent to POST /v1/events.")
    state = fields.Selection(
        [("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed")],
        default="pending", required=True, readonly=True, index=True,
        help="Pending: waiting to be sent (again). Sent: the engine stored it. "
             "Failed: the engine refused it as invalid; fix the order and retry.")
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime("Next attempt", readonly=True, default=fields.Datetime.now, index=True)
    last_error = fields.Text(readonly=True)
    sent_at = fields.Datetime(readonly=True)
    stream_seq = fields.Char("Stream sequence", readonly=True)
    duplicate = fields.Boolean(readonly=True, help="The engine had this event already.")

    _sql_constraints = [
        ("event_id_uniq", "unique(event_id)", "An order event is queued once."),
    ]

    # -- queueing (in the transaction that makes the order final) ---------

    @api.model
    def _enqueue(self, events, order):
        """Queue events [(event_id, type, dict)] of order; an event already
        queued is left as it is. The post-commit hook sends them."""
        existing = set(self.search([("event_id", "in", [e[0] for e in events])]).mapped("event_id"))
        vals = [{
            "event_id": eid, "event_type": typ, "order_id": order.id,
            "payload": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        } for eid, typ, body in events if eid not in existing]
        if not vals:
            return self.browse()
        records = self.create(vals)
        self._send_after_commit(records.ids)
        return records

    def _send_after_commit(self, ids):
        postcommit = self.env.cr.postcommit
        queued = postcommit.data.setdefault("promo_engine.outbox_ids", [])
        if not queued:
            postcommit.add(partial(_post_commit_send, self.env.registry, queued))
        queued.extend(ids)

    # -- sending ------------------------------------------------------------

    @api.model
    def _engine_config(self):
        params = self.env["ir.config_parameter"].sudo()
        url = (params.get_param("promo_engine.url") or "").strip().rstrip("/")
        key = (params.get_param("promo_engine.api_key") or "").strip()
        if not url or not key:
            return None
        return url + "/v1/events", key

    def _lock_pending(self):
        """The pending records of self that no other sender holds."""
        if not self.ids:
            return self.browse()
        self.env.cr.execute(
            "SELECT id FROM promo_engine_outbox WHERE id IN %s AND state = 'pending' "
            "ORDER BY id FOR UPDATE SKIP LOCKED", [tuple(self.ids)])
        return self.browse([r[0] for r in self.env.cr.fetchall()])

    def _send(self, timeout, commit_each=False):
        """Send the pending records of self; returns (sent, failed_to_reach)."""
        cfg = self._engine_config()
        if not cfg:
            _logger.warning("promo_engine: engine URL or key not set (Settings > Point of Sale > Promo Engine); %d event(s) wait", len(self))
            return 0, True
        url, key = cfg
        sent, unreachable = 0, False
        with requests.Session() as session:
            for rec in self._lock_pending():
                try:
                    resp = session.post(url, data=rec.payload.encode(), timeout=timeout, headers={
                        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
                except requests.RequestException as e:
                    # The message names the URL (never the key: it is a header).
                    rec._retry_later("engine unreachable: %s" % type(e).__name__)
                    _logger.warning("promo_engine: sending %s failed, retrying later: %s", rec.event_id, type(e).__name__)
                    unreachable = True
                    break
                if resp.status_code == 202:
                    answer = _json(resp)
                    rec.write({"state": "sent", "sent_at": fields.Datetime.now(), "attempts": rec.attempts + 1,
                               "last_error": False, "stream_seq": str(answer.get("stream_seq") or ""),
                               "duplicate": bool(answer.get("duplicate"))})
                    sent += 1
                elif resp.status_code in (400, 413, 422):
                    rec.write({"state": "failed", "attempts": rec.attempts + 1,
                               "last_error": "HTTP %d: %s" % (resp.status_code, resp.text[:4000])})
                    _logger.error("promo_engine: the engine refused %s: HTTP %d %s", rec.event_id, resp.status_code, resp.text[:500])
                else:  # 401/403 (a key to fix), 429, 5xx: later, with backoff
                    rec._retry_later("HTTP %d: %s" % (resp.status_code, resp.text[:2000]))
                    _logger.warning("promo_engine: sending %s failed with HTTP %d, retrying later", rec.event_id, resp.status_code)
                    unreachable = True
                    break
                if commit_each:
                    self.env.cr.commit()  # pylint: disable=invalid-commit
        _trip(not unreachable)
        return sent, unreachable

    def _retry_later(self, error):
        for rec in self:
            delay = min(BACKOFF_BASE * 2 ** rec.attempts, BACKOFF_MAX)
            rec.write({"attempts": rec.attempts + 1, "last_error": error,
                       "next_attempt_at": fields.Datetime.now() + timedelta(seconds=delay)})

    @api.model
    def _cron_send(self):
        due = self.search([("state", "=", "pending"), ("next_attempt_at", "<=", fields.Datetime.now())],
                          order="id", limit=CRON_BATCH)
        if not due:
            return
        sent, unreachable = due._send(CRON_TIMEOUT, commit_each=True)
        if sent and not unreachable:
            # The engine answers again: what waits for its backoff goes now.
            waiting = self.search([("state", "=", "pending")], order="id", limit=CRON_BATCH)
            if waiting:
                waiting.write({"next_attempt_at": fields.Datetime.now()})
                self.env.ref("promo_engine.ir_cron_send_outbox")._trigger()

    def action_retry(self):
        """Send again now (a failed event after its cause was fixed)."""
        self.filtered(lambda r: r.state != "sent").write({"state": "pending", "next_attempt_at": fields.Datetime.now()})
        self.env.ref("promo_engine.ir_cron_send_outbox")._trigger()
        return True

    # -- version-dependent records -------------------------------------------

    @api.model
    def _promo_engine_setup(self):
        """Create what differs between Odoo 17.0 and 18.0 (called from the
        module's data): the list view's root tag ("tree" until 17.4, "list"
        from 17.5) and the cron's fields (numbercall until 17.0)."""
        list_tag = "list" if release.version_info[:2] >= (17, 5) else "tree"
        arch = """<%(tag)s create="false" decoration-danger="state == 'failed'" decoration-muted="state == 'sent'"
                        decoration-warning="state == 'pending' and attempts > 0">
            <field name="id" optional="hide"/>
            <field name="event_id"/>
            <field name="order_id"/>
            <field name="state"/>
            <field name="attempts"/>
            <field name="next_attempt_at"/>
            <field name="sent_at"/>
            <field name="duplicate" optional="hide"/>
            <field name="last_error"/>
        </%(tag)s>""" % {"tag": list_tag}
        cron = {"name": "Promo Engine: send pending order events",
                "model_id": self.env.ref("promo_engine.model_promo_engine_outbox").id,
                "state": "code", "code": "model._cron_send()",
                "interval_number": 1, "interval_type": "minutes", "active": True}
        if "numbercall" in self.env["ir.cron"]._fields:
            cron.update(numbercall=-1, doall=False)
        records = [
            ("ir.ui.view", "promo_engine.promo_engine_outbox_view_list",
             {"name": "promo.engine.outbox.list", "model": "promo.engine.outbox", "arch": arch, "priority": 10}),
            ("ir.actions.act_window", "promo_engine.action_promo_engine_outbox",
             {"name": "Promo Engine Outbox", "res_model": "promo.engine.outbox",
              "view_mode": "%s,form" % list_tag, "context": "{'search_default_not_sent': 1}",
              "help": "<p>Order events waiting for promoengine, and those it refused.</p>"}),
            ("ir.cron", "promo_engine.ir_cron_send_outbox", cron),
        ]
        for model, xml_id, values in records:
            self.env[model].sudo()._load_records([{"xml_id": xml_id, "values": values, "noupdate": False}], update=True)
            self.env.registry.loaded_xmlids.add(xml_id)
        return True


def _json(resp):
    try:
        return resp.json()
    except ValueError:
        return {}


def _post_commit_send(registry, ids):
    """Runs after the order's transaction committed, in the till's request:
    send its events now, unless the engine failed recently (the cron does)."""
    ids = list(dict.fromkeys(ids))
    if not ids or _circuit_open():
        return
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["promo.engine.outbox"].browse(ids)._send(HOOK_TIMEOUT)
    except Exception:  # noqa: BLE001 - never fail the till's request: the cron retries
        _logger.exception("promo_engine: post-commit send failed; the cron will retry")
