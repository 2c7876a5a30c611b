"""A stand-in for CloudFront KeyValueStore's data plane API (what moto lacks),
for the tests: one store, in memory, on a loopback port.

    python3 kvs_standin.py PORT ARN [CONFLICTS]

DescribeKeyValueStore (GET /key-value-stores/ARN) answers the store's ETag;
UpdateKeys (POST /key-value-stores/ARN/keys) needs `If-Match` equal to it
(409 ConflictException otherwise), takes at most 50 puts and deletes in all,
keys of at most 512 bytes and values of at most 1 KB (400 ValidationException),
and answers the next ETag. The first CONFLICTS UpdateKeys calls find that
"another writer" changed the store first (their ETag is stale: 409).
GET /dump answers the whole store as JSON, with the count of calls (for the
tests and the edge's stand-in proxy); signatures are not checked.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

PORT, ARN = int(sys.argv[1]), sys.argv[2]
CONFLICTS = [int(sys.argv[3]) if len(sys.argv) > 3 else 0]
STORE = {}
STATE = {"etag": 1, "updates": 0, "conflicts": 0, "describes": 0, "largest_batch": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, etag=None, error=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if etag is not None:
            self.send_header("ETag", etag)
        if error is not None:
            self.send_header("x-amzn-ErrorType", error)
        self.end_headers()
        self.wfile.write(data)

    def size(self):
        return sum(len(k.encode()) + len(v.encode()) for k, v in STORE.items())

    def summary(self):
        return {"ItemCount": len(STORE), "TotalSizeInBytes": self.size()}

    def route(self):
        path = unquote(self.path.split("?")[0])
        prefix = "/key-value-stores/"
        if not path.startswith(prefix):
            return None, None
        rest = path[len(prefix):]
        if rest == ARN:
            return "describe", None
        if rest == ARN + "/keys":
            return "update", None
        return "missing", None

    def do_GET(self):
        if self.path == "/dump":
            with LOCK:
                return self.answer(200, {"store": STORE, "state": STATE})
        op, _ = self.route()
        if op != "describe":
            return self.answer(404, {"Message": "no such store"}, error="ResourceNotFoundException")
        with LOCK:
            STATE["describes"] += 1
            body = dict(self.summary(), KvsARN=ARN, Created=1765000000.0, Status="READY")
            return self.answer(200, body, etag=f"E{STATE['etag']}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        op, _ = self.route()
        if op != "update":
            return self.answer(404, {"Message": "no such store"}, error="ResourceNotFoundException")
        body = json.loads(raw or b"{}")
        puts, deletes = body.get("Puts", []), body.get("Deletes", [])
        with LOCK:
            if CONFLICTS[0] > 0:
                CONFLICTS[0] -= 1
                STATE["etag"] += 1
            if self.headers.get("If-Match") != f"E{STATE['etag']}":
                STATE["conflicts"] += 1
                return self.answer(409, {"Message": "the ETag is stale"}, error="ConflictException")
            if len(puts) + len(deletes) > 50 or not (puts or deletes):
                return self.answer(400, {"Message": "1 to 50 keys per call"}, error="ValidationException")
            for p in puts:
                if len(p["Key"].encode()) > 512 or len(p["Value"].encode()) > 1024:
                    return self.answer(400, {"Message": "key or value too long"}, error="ValidationException")
            for p in puts:
                STORE[p["Key"]] = p["Value"]
            for d in deletes:
                STORE.pop(d["Key"], None)
            STATE["etag"] += 1
            STATE["updates"] += 1
            STATE["largest_batch"] = max(STATE["largest_batch"], len(puts) + len(deletes))
            return self.answer(200, self.summary(), etag=f"E{STATE['etag']}")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
