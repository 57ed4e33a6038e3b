"""A small fake of Stripe's API for tests: the real `stripe` SDK talks to it over HTTP.

It implements only what Framecast uses (customers, Checkout Sessions, subscriptions,
invoices, the Customer Portal, products, prices, billing meters and meter events), keeps
state in memory, honours `Idempotency-Key` on POSTs, and de-duplicates meter events by
`identifier` the way Stripe does. What Stripe would do asynchronously (a customer paying
at Checkout, a renewal, a failed charge) the test does with a helper, which returns the
webhook events Stripe would send; `sign()` signs them with Stripe's real scheme.

Objects follow the shapes of API version 2026-10-28 (a subscription's period on its items,
an invoice's subscription under `parent`). Metered prices bill a meter: a subscription may
hold one such item beside its flat one, and an invoice that closes a period bills the
customer's meter events of that period on it."""

import copy
import hashlib
from decimal import Decimal
import hmac
import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

API_VERSION = "2026-10-28.endive"
MONTH = 30 * 24 * 3600


def decode_form(body: str) -> dict:
    """`a[b][0][c]=v` pairs, as the SDK encodes them, back into nested dicts and lists."""
    root: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node):
    if not isinstance(node, dict):
        return node
    node = {key: _lists(value) for key, value in node.items()}
    if node and all(key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


def _public(obj: dict) -> dict:
    """A copy without the fake's private `_` fields, as it is sent."""
    return {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}


def _bool(value) -> bool:
    return str(value).lower() == "true"


class StripeError(Exception):
    def __init__(self, status: int, message: str, *, code: str = "resource_missing", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


class FakeStripe:
    def __init__(self, *, webhook_secret: str = "whsec_test"):
        self.webhook_secret = webhook_secret
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict]] = {
            kind: {}
            for kind in (
                "customer", "checkout.session", "subscription", "invoice", "billing_portal.session", "product", "price",
                "billing.meter",
            )
        }
        self.meter_events: list[dict] = []  # accepted events, each identifier once
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.outbox: list[dict] = []  # webhook events caused by API requests, for take_events()
        self._idempotent: dict[str, tuple[int, dict]] = {}
        self._failures: list[dict] = []
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # --- Server ---------------------------------------------------------------------

    def start(self) -> "FakeStripe":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self, method: str):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else url.query
                status, payload, headers = fake.dispatch(method, url.path, decode_form(body), self.headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{next(fake._ids)}")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, method: str, path: str, *, times: int = 1, after_effect: bool = False) -> None:
        """Answer the next `times` matching requests with a 500. With `after_effect`, the
        request takes effect first and only its answer is lost (as on a dropped connection)."""
        self._failures.append({"method": method, "path": path, "times": times, "after_effect": after_effect})

    def dispatch(self, method: str, path: str, params: dict, headers) -> tuple[int, dict, dict]:
        with self.lock:
            self.requests.append((method, path))
            failure = next((f for f in self._failures if f["method"] == method and f["path"] == path and f["times"]), None)
            if failure:
                failure["times"] -= 1
            key = headers.get("Idempotency-Key") if method == "POST" else None
            if key and key in self._idempotent and not failure:
                status, payload = self._idempotent[key]
                return status, payload, {"Idempotent-Replayed": "true"}
            if failure and not failure["after_effect"]:
                return self._error(StripeError(500, "Simulated failure.", code="api_error"))
            try:
                status, payload = 200, _public(self._route(method, path, params))
            except StripeError as error:
                return self._error(error)
            except (KeyError, ValueError, StopIteration) as error:
                return self._error(StripeError(400, f"Bad request to the fake: {error!r}", code="parameter_missing"))
            if key:
                self._idempotent[key] = (status, payload)
            if failure:
                return self._error(StripeError(500, "Simulated failure after the request took effect.", code="api_error"))
            return status, payload, {}

    @staticmethod
    def _error(error: StripeError) -> tuple[int, dict, dict]:
        kind = "api_error" if error.status >= 500 else "invalid_request_error"
        body = {"error": {"type": kind, "message": error.message, "code": error.code, "param": error.param}}
        # Tell the SDK not to retry, so a test's simulated failure reaches the code under test.
        return error.status, body, {"Stripe-Should-Retry": "false"}

    ROUTES = [
        ("POST", r"/v1/customers", "customer_create"),
        ("GET", r"/v1/customers/(?P<id>[^/]+)", "retrieve:customer"),
        ("POST", r"/v1/checkout/sessions", "checkout_session_create"),
        ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", "retrieve:checkout.session"),
        ("GET", r"/v1/subscriptions/(?P<id>[^/]+)", "retrieve:subscription"),
        ("POST", r"/v1/subscriptions/(?P<id>[^/]+)", "subscription_update"),
        ("DELETE", r"/v1/subscriptions/(?P<id>[^/]+)", "subscription_cancel"),
        ("GET", r"/v1/invoices", "invoice_list"),
        ("POST", r"/v1/billing_portal/sessions", "portal_session_create"),
        ("POST", r"/v1/products", "product_create"),
        ("GET", r"/v1/products", "list:product"),
        ("GET", r"/v1/products/(?P<id>[^/]+)", "retrieve:product"),
        ("POST", r"/v1/products/(?P<id>[^/]+)", "update:product"),
        ("POST", r"/v1/prices", "price_create"),
        ("GET", r"/v1/prices", "price_list"),
        ("POST", r"/v1/prices/(?P<id>[^/]+)", "update:price"),
        ("POST", r"/v1/billing/meters", "meter_create"),
        ("GET", r"/v1/billing/meters", "list:billing.meter"),
        ("POST", r"/v1/billing/meter_events", "meter_event_create"),
    ]

    def _route(self, method: str, path: str, params: dict) -> dict:
        for route_method, pattern, action in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                name, _, kind = action.partition(":")
                args = match.groupdict()
                if kind:
                    return getattr(self, f"_{name}")(kind, params, **args)
                return getattr(self, f"_{name}")(params, **args)
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).", code="unrecognized_url")

    # --- Generic objects -------------------------------------------------------------

    def _new(self, kind: str, prefix: str, **fields) -> dict:
        obj = {"id": f"{prefix}_{next(self._ids):06d}", "object": kind, "created": int(time.time()), "livemode": False, **fields}
        self.objects[kind][obj["id"]] = obj
        return obj

    def get(self, kind: str, object_id: str) -> dict:
        try:
            return self.objects[kind][object_id]
        except KeyError:
            raise StripeError(404, f"No such {kind}: '{object_id}'", param="id") from None

    def _retrieve(self, kind: str, params: dict, id: str) -> dict:
        return self.get(kind, id)

    def _list(self, kind: str, params: dict, rows=None) -> dict:
        rows = list(self.objects[kind].values()) if rows is None else rows
        if "active" in params:
            rows = [row for row in rows if row.get("active") == _bool(params["active"])]
        limit = int(params.get("limit", 10))
        return {"object": "list", "url": f"/v1/{kind}", "has_more": len(rows) > limit, "data": rows[:limit]}

    def _update(self, kind: str, params: dict, id: str) -> dict:
        obj = self.get(kind, id)
        for field, value in params.items():
            if field == "metadata":
                obj["metadata"] = {**obj.get("metadata", {}), **value}
            elif field == "active":
                obj["active"] = _bool(value)
            else:
                obj[field] = value
        return obj

    # --- Customers, Checkout, Portal ---------------------------------------------------

    def _customer_create(self, params: dict) -> dict:
        return self._new("customer", "cus", email=params.get("email"), name=params.get("name"), metadata=params.get("metadata", {}))

    def _checkout_session_create(self, params: dict) -> dict:
        if params.get("customer"):
            self.get("customer", params["customer"])
        line_items = params.get("line_items", [])
        self._items_check(line_items, quantity_required=True)
        session = self._new(
            "checkout.session", "cs", mode=params["mode"], customer=params.get("customer"),
            client_reference_id=params.get("client_reference_id"), metadata=params.get("metadata", {}),
            success_url=params.get("success_url"), cancel_url=params.get("cancel_url"), status="open",
            payment_status="unpaid", subscription=None, payment_intent=None,
        )
        session["url"] = f"{self.url}/checkout/{session['id']}"
        session["_line_items"] = line_items
        session["_subscription_data"] = params.get("subscription_data", {})
        return session

    def _portal_session_create(self, params: dict) -> dict:
        self.get("customer", params["customer"])
        session = self._new("billing_portal.session", "bps", customer=params["customer"], return_url=params.get("return_url"))
        session["url"] = f"{self.url}/portal/{session['id']}"
        return session

    # --- Products, prices, meters --------------------------------------------------------

    def _product_create(self, params: dict) -> dict:
        return self._new("product", "prod", name=params["name"], active=True, metadata=params.get("metadata", {}))

    def _price_create(self, params: dict) -> dict:
        self.get("product", params["product"])
        lookup_key = params.get("lookup_key")
        if lookup_key:
            holder = next((p for p in self.objects["price"].values() if p.get("lookup_key") == lookup_key), None)
            if holder and not _bool(params.get("transfer_lookup_key")):
                raise StripeError(400, f"A price with lookup_key {lookup_key} already exists.", code="lookup_key_exists")
            if holder:
                holder["lookup_key"] = None
        if ("unit_amount" in params) == ("unit_amount_decimal" in params):
            raise StripeError(400, "Pass exactly one of unit_amount and unit_amount_decimal.", code="parameter_invalid")
        amount = Decimal(params["unit_amount_decimal"] if "unit_amount_decimal" in params else params["unit_amount"])
        recurring = params.get("recurring")
        usage_type = (recurring or {}).get("usage_type", "licensed")
        meter = (recurring or {}).get("meter")
        if usage_type == "metered":
            # Since API version 2025-03-31 a metered price must bill a meter.
            if not meter:
                raise StripeError(400, "A metered price needs recurring[meter].", code="parameter_missing", param="recurring[meter]")
            self.get("billing.meter", meter)
        elif meter:
            raise StripeError(400, "recurring[meter] is only for metered prices.", code="parameter_invalid")
        return self._new(
            "price", "price", product=params["product"],
            unit_amount=int(amount) if amount == amount.to_integral_value() else None,
            unit_amount_decimal=format(amount.normalize(), "f"), nickname=params.get("nickname"),
            currency=params["currency"], lookup_key=lookup_key, active=True, metadata=params.get("metadata", {}),
            type="recurring" if recurring else "one_time",
            recurring={
                "interval": recurring["interval"], "interval_count": 1, "usage_type": usage_type, "meter": meter,
            } if recurring else None,
        )

    def _price_list(self, params: dict) -> dict:
        rows = list(self.objects["price"].values())
        if "lookup_keys" in params:
            rows = [row for row in rows if row.get("lookup_key") in params["lookup_keys"]]
        return self._list("price", params, rows)

    def _meter_create(self, params: dict) -> dict:
        return self._new(
            "billing.meter", "mtr", event_name=params["event_name"], display_name=params["display_name"], status="active",
            default_aggregation=params.get("default_aggregation", {"formula": "sum"}),
            customer_mapping=params.get("customer_mapping", {"type": "by_id", "event_payload_key": "stripe_customer_id"}),
            value_settings=params.get("value_settings", {"event_payload_key": "value"}),
        )

    def _meter_event_create(self, params: dict) -> dict:
        meters = [m for m in self.objects["billing.meter"].values() if m["event_name"] == params["event_name"]]
        if not meters:
            raise StripeError(400, f"No active meter with event_name {params['event_name']}.", code="invalid_value")
        event = {
            "object": "billing.meter_event", "created": int(time.time()), "livemode": False,
            "event_name": params["event_name"], "identifier": params.get("identifier") or f"auto_{next(self._ids)}",
            "payload": params["payload"], "timestamp": int(params.get("timestamp") or time.time()),
        }
        # Stripe keeps one event per identifier (for at least 24 hours).
        if not any(e["identifier"] == event["identifier"] for e in self.meter_events):
            self.meter_events.append(event)
        return event

    # --- Subscriptions and invoices -------------------------------------------------------

    def _items_check(self, items: list[dict], *, quantity_required: bool = False) -> None:
        """Stripe's rules for a subscription's prices: each once; metered ones take no quantity."""
        prices = [item["price"] for item in items]
        if len(set(prices)) != len(prices):
            raise StripeError(400, "A subscription cannot have the same price twice.", code="parameter_invalid")
        for item in items:
            price = self.get("price", item["price"])
            metered = (price.get("recurring") or {}).get("usage_type") == "metered"
            if metered and "quantity" in item:
                raise StripeError(
                    400, "Quantity should not be specified where usage_type is `metered`. Remove quantity from "
                    f"`{item['price']}`.", code="parameter_invalid",
                )
            if not metered and quantity_required and "quantity" not in item:
                raise StripeError(400, f"Checkout needs a quantity for `{item['price']}`.", code="parameter_missing")

    def _item_new(self, price_id: str, *, quantity, start: int, end: int) -> dict:
        price = self.get("price", price_id)
        metered = price["recurring"]["usage_type"] == "metered"
        return {
            "id": f"si_{next(self._ids):06d}", "object": "subscription_item", "price": copy.deepcopy(price),
            "quantity": None if metered else int(quantity or 1), "current_period_start": start, "current_period_end": end,
        }

    def _subscription_new(self, *, customer: str, line_items: list[dict], metadata: dict) -> dict:
        now = int(time.time())
        items = [self._item_new(line["price"], quantity=line.get("quantity"), start=now, end=now + MONTH) for line in line_items]
        return self._new(
            "subscription", "sub", customer=customer, status="active", cancel_at_period_end=False, canceled_at=None,
            metadata=metadata, items={"object": "list", "data": items, "has_more": False}, latest_invoice=None,
        )

    @staticmethod
    def _period(subscription: dict) -> tuple[int, int]:
        item = subscription["items"]["data"][0]
        return item["current_period_start"], item["current_period_end"]

    def _period_set(self, subscription: dict, start: int, end: int) -> None:
        for item in subscription["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = start, end

    def meter_usage(self, customer: str, meter_id: str, start: int, end: int) -> Decimal:
        """The sum of the customer's meter events on the meter with start <= timestamp < end."""
        meter = self.get("billing.meter", meter_id)
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        return sum(
            (Decimal(e["payload"][value_key]) for e in self.meter_events
             if e["event_name"] == meter["event_name"] and e["payload"].get(customer_key) == customer
             and start <= e["timestamp"] < end),
            Decimal(0),
        )

    def _subscription_update(self, params: dict, id: str) -> dict:
        subscription = self.get("subscription", id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "A canceled subscription can only update its cancellation_details and metadata.", code="resource_missing")
        old_period = self._period(subscription)
        items = subscription["items"]["data"]
        for change in params.get("items", []):
            if "id" not in change:  # a new item
                start, end = self._period(subscription)
                items.append(self._item_new(change["price"], quantity=change.get("quantity"), start=start, end=end))
                continue
            item = next((i for i in items if i["id"] == change["id"]), None)
            if item is None:
                raise StripeError(404, f"No such subscription item: '{change['id']}'", param="items")
            if _bool(change.get("deleted")):
                items.remove(item)
            elif "price" in change:
                item["price"] = copy.deepcopy(self.get("price", change["price"]))
                if item["price"]["recurring"]["usage_type"] == "metered":
                    item["quantity"] = None
        self._items_check([
            {"price": i["price"]["id"], **({"quantity": i["quantity"]} if i["quantity"] is not None else {})} for i in items
        ])
        if not items:
            raise StripeError(400, "A subscription needs at least one item.", code="parameter_invalid")
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = _bool(params["cancel_at_period_end"])
        if "metadata" in params:
            subscription["metadata"] = {**subscription["metadata"], **params["metadata"]}
        if params.get("billing_cycle_anchor") == "now":
            now = int(time.time())
            self._period_set(subscription, now, now + MONTH)
            if params.get("proration_behavior") != "none":
                raise StripeError(400, "The fake only restarts a period without proration.", code="parameter_unknown")
            # Restarting the cycle closes the old period: its metered usage is billed now.
            usage_period = (old_period[0], now)
            invoice = self._invoice_new(subscription, billing_reason="subscription_update", paid=True, usage_period=usage_period)
            self.outbox.append(self.event("invoice.paid", invoice))
        self.outbox.append(self.event("customer.subscription.updated", subscription))
        return subscription

    def _subscription_cancel(self, params: dict, id: str) -> dict:
        subscription = self.get("subscription", id)
        subscription.update(status="canceled", canceled_at=int(time.time()))
        return subscription

    def _invoice_new(
        self, subscription: dict, *, billing_reason: str, paid: bool, proration: bool = False,
        usage_period: tuple[int, int] | None = None,
    ) -> dict:
        """Licensed items in advance, for the current period; metered items in arrears, for the
        customer's meter events in `usage_period` (the period just closed), if one is given."""
        start, end = self._period(subscription)
        lines = []
        for item in subscription["items"]["data"]:
            price = item["price"]
            if price["recurring"]["usage_type"] == "metered":
                if usage_period is None or proration:
                    continue
                quantity = self.meter_usage(subscription["customer"], price["recurring"]["meter"], *usage_period)
                amount, period = int((quantity * Decimal(price["unit_amount_decimal"])).to_integral_value()), usage_period
            else:
                quantity, amount, period = item["quantity"], price["unit_amount"] * item["quantity"], (start, end)
            lines.append({
                "id": f"il_{next(self._ids):06d}", "object": "line_item", "amount": amount, "quantity": str(quantity),
                "parent": {"type": "subscription_item_details", "subscription_item_details": {
                    "subscription": subscription["id"], "subscription_item": item["id"], "proration": proration,
                }},
                "period": {"start": period[0], "end": period[1]},
                "pricing": {"type": "price_details", "price_details": {"price": price["id"], "product": price["product"]}},
            })
        total = sum(line["amount"] for line in lines)
        invoice = self._new(
            "invoice", "in", customer=subscription["customer"], status="paid" if paid else "open",
            billing_reason=billing_reason, currency=subscription["items"]["data"][0]["price"]["currency"], amount_due=total,
            amount_paid=total if paid else 0, number=f"FC-{next(self._ids):04d}",
            hosted_invoice_url=f"{self.url}/invoices/pay", period_start=start, period_end=end,
            parent={
                "type": "subscription_details",
                "subscription_details": {"subscription": subscription["id"], "metadata": subscription["metadata"]},
            },
            lines={"object": "list", "has_more": False, "data": lines},
        )
        subscription["latest_invoice"] = invoice["id"]
        return invoice

    def _invoice_list(self, params: dict) -> dict:
        rows = [i for i in self.objects["invoice"].values() if not params.get("customer") or i["customer"] == params["customer"]]
        return self._list("invoice", params, sorted(rows, key=lambda i: i["id"], reverse=True))

    # --- What Stripe does on its own: test helpers returning webhook events ------------------

    def event(self, type: str, obj: dict) -> dict:
        """A webhook event carrying a snapshot of `obj` (private `_` fields dropped)."""
        snapshot = _public(obj)
        return {
            "id": f"evt_{next(self._ids):06d}", "object": "event", "api_version": API_VERSION, "created": int(time.time()),
            "type": type, "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "data": {"object": snapshot},
        }

    def take_events(self) -> list[dict]:
        """The webhook events that API requests caused since the last call (e.g. a plan change)."""
        with self.lock:
            events, self.outbox = self.outbox, []
            return events

    def proration_invoice_paid(self, subscription_id: str) -> dict:
        """A proration-only invoice paid (as when a plan is switched in the Portal)."""
        with self.lock:
            subscription = self.get("subscription", subscription_id)
            invoice = self._invoice_new(subscription, billing_reason="subscription_update", paid=True, proration=True)
            return self.event("invoice.paid", invoice)

    def checkout_complete(self, session_id: str) -> dict[str, dict]:
        """The customer pays at Checkout. Returns the events by type, in Stripe's usual order."""
        with self.lock:
            session = self.get("checkout.session", session_id)
            session.update(status="complete", payment_status="paid")
            events = {}
            if session["mode"] == "subscription":
                subscription = self._subscription_new(
                    customer=session["customer"], line_items=session["_line_items"],
                    metadata=session["_subscription_data"].get("metadata", {}),
                )
                session["subscription"] = subscription["id"]
                invoice = self._invoice_new(subscription, billing_reason="subscription_create", paid=True)
                events["customer.subscription.created"] = self.event("customer.subscription.created", subscription)
                events["checkout.session.completed"] = self.event("checkout.session.completed", session)
                events["invoice.paid"] = self.event("invoice.paid", invoice)
            else:
                session["payment_intent"] = f"pi_{next(self._ids):06d}"
                events["checkout.session.completed"] = self.event("checkout.session.completed", session)
            return events

    def subscription_renew(self, subscription_id: str, *, paid: bool = True) -> dict[str, dict]:
        """A billing period ends: Stripe invoices the next one and charges the card."""
        with self.lock:
            subscription = self.get("subscription", subscription_id)
            start, end = self._period(subscription)
            if paid:
                self._period_set(subscription, end, end + MONTH)
                subscription["status"] = "active"
                invoice = self._invoice_new(
                    subscription, billing_reason="subscription_cycle", paid=True, usage_period=(start, end)
                )
                return {
                    "customer.subscription.updated": self.event("customer.subscription.updated", subscription),
                    "invoice.paid": self.event("invoice.paid", invoice),
                }
            subscription["status"] = "past_due"
            invoice = self._invoice_new(subscription, billing_reason="subscription_cycle", paid=False)
            return {
                "invoice.payment_failed": self.event("invoice.payment_failed", invoice),
                "customer.subscription.updated": self.event("customer.subscription.updated", subscription),
            }

    def subscription_end(self, subscription_id: str) -> dict[str, dict]:
        """The subscription ends (cancelled now, or its cancel_at_period_end came)."""
        with self.lock:
            subscription = self._subscription_cancel({}, subscription_id)
            return {"customer.subscription.deleted": self.event("customer.subscription.deleted", subscription)}

    def sign(self, payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
        """A Stripe-Signature header: t=<unix>,v1=HMAC-SHA256(secret, "t.body")."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        signed = f"{timestamp}.".encode() + payload
        digest = hmac.new((secret or self.webhook_secret).encode(), signed, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"


# --- pytest glue ----------------------------------------------------------------------------


@pytest.fixture
def fake_stripe(settings):
    """A fresh fake Stripe for this test, with Framecast's settings pointing at it."""
    fake = FakeStripe().start()
    settings.STRIPE_SECRET_KEY = "sk_test_framecast"
    settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
    settings.STRIPE_API_BASE = fake.url
    yield fake
    fake.stop()


def deliver(fake: FakeStripe, event: dict, **sign_options):
    """POST `event` to the webhook as Stripe would: raw JSON body, signed."""
    from django.test import Client

    body = json.dumps(event).encode()
    return Client().post(
        "/billing/stripe/webhook/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=fake.sign(body, **sign_options)
    )
