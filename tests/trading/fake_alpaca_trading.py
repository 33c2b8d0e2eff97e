"""A local stand-in for Alpaca's trading REST API (127.0.0.1 only), speaking
the wire format alpaca-py's TradingClient parses: /v2/account,
/v2/positions, /v2/orders.  Records every request for assertions."""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAMP = "2024-01-02T15:00:00Z"


class FakeAlpacaTrading:
    def __init__(self, cash: float = 100_000.0, positions: list[dict] | None = None):
        self.cash = cash
        self.positions = positions or []
        self.requests: list[dict] = []
        self.orders: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body=None) -> None:
                fake.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "key": self.headers.get("APCA-API-KEY-ID"),
                                      "secret": self.headers.get("APCA-API-SECRET-KEY")})

            def do_GET(self):
                self._record()
                if self.path.startswith("/v2/account"):
                    return self._reply(200, {"id": str(uuid.uuid4()), "account_number": "PA0000TEST",
                                             "status": "ACTIVE", "currency": "USD", "cash": str(fake.cash),
                                             "equity": str(fake.cash)})
                if self.path.startswith("/v2/positions"):
                    return self._reply(200, fake.positions)
                if self.path.startswith("/v2/orders"):
                    return self._reply(200, [o for o in fake.orders if o["status"] == "accepted"])
                return self._reply(404, {"code": 40410000, "message": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                self._record(body)
                if not self.path.startswith("/v2/orders"):
                    return self._reply(404, {"code": 40410000, "message": "not found"})
                order = {"id": str(uuid.uuid4()), "client_order_id": body.get("client_order_id") or "x",
                         "created_at": STAMP, "updated_at": STAMP, "submitted_at": STAMP,
                         "order_class": "simple", "time_in_force": body["time_in_force"], "status": "accepted",
                         "extended_hours": False, "symbol": body["symbol"], "qty": str(body["qty"]),
                         "side": body["side"], "type": body.get("type", "market"), "filled_qty": "0"}
                fake.orders.append(order)
                return self._reply(200, order)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeAlpacaTrading":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
