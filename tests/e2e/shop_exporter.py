"""A small test exporter for the end-to-end tests: a shop whose api calls db (and a steady cache),
with db's latency read from ``state.json`` next to the script on every scrape."""

from __future__ import annotations

import textwrap

EXPORTER = textwrap.dedent("""\
    # Serves shop_latency_seconds for db (from state.json, read per scrape), for api, which calls db
    # and so waits for it (0.02 s + a share of db's latency), and for cache (steady); small jitter. GET /healthy?service=db
    # answers 200 while that service's latency is normal.
    import json, random, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from pathlib import Path
    from urllib.parse import parse_qs, urlsplit

    STATE = Path(__file__).with_name("state.json")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            db = json.loads(STATE.read_text())["db"]
            state = {"db": db, "api": 0.02 + 0.15 * db, "cache": 0.03}
            url = urlsplit(self.path)
            if url.path == "/healthy":
                service = parse_qs(url.query).get("service", [""])[0]
                ok = state.get(service, 1.0) < 0.1
                self.send_response(200 if ok else 503)
                self.end_headers()
                return
            lines = ["# TYPE shop_latency_seconds gauge"]
            for service, value in sorted(state.items()):
                lines.append(f'shop_latency_seconds{{service="{service}"}} {value * random.uniform(0.97, 1.03)}')
            body = ("\\n".join(lines) + "\\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""")
