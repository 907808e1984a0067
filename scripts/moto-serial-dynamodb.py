"""moto's server, with one change: DynamoDB requests are handled one at a time.

Real DynamoDB applies each write to an item atomically (an UpdateItem `SET n = n + :one` never
loses a count; a condition is judged together with the write). moto's threaded server does not:
two concurrent UpdateItems on one item can return the same new value. The tests that prove rate
limits and credential races hold under concurrency need DynamoDB's guarantee, so this wrapper
serialises DynamoDB calls (SQS and SES, whose long polls must not block each other, stay
concurrent). Usage: python moto-serial-dynamodb.py HOST PORT

A second change: TransactWriteItems honours its ClientRequestToken as DynamoDB does. The SDK
gives every transaction a token and sends it again with each retry of that call; DynamoDB answers a
repeat within ten minutes with the first attempt's success and applies nothing twice (and refuses
the same token with other parameters). moto ignores the token, so a transaction whose answer was
lost to an attempt timeout (a loaded machine) came back refused by its own first attempt, which
real DynamoDB never does.
"""

import hashlib
import io
import json
import sys
import threading
import time

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

_dynamodb = threading.Lock()
# ClientRequestToken -> (digest of the request body, status, headers, body, when), for ten minutes.
_transactions = {}
TOKEN_LIFETIME = 600


class SerialDynamoDB:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with _dynamodb:
                if target.endswith(".TransactWriteItems"):
                    return self.transact(environ, start_response)
                # Consume the whole response under the lock: moto does its work lazily.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)

    def transact(self, environ, start_response):
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            token = json.loads(raw).get("ClientRequestToken")
        except ValueError:
            token = None
        now = time.time()
        for old in [t for t, kept in _transactions.items() if now - kept[4] > TOKEN_LIFETIME]:
            del _transactions[old]
        digest = hashlib.sha256(raw).digest()
        kept = _transactions.get(token) if token else None
        if kept is not None:
            if kept[0] == digest:
                start_response(kept[1], kept[2])
                return kept[3]
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")])
            mismatch = {
                "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                "message": "the ClientRequestToken was used with other parameters",
            }
            return [json.dumps(mismatch).encode()]
        answered = {}

        def capture(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = list(self.app(environ, capture))
        if token and answered.get("status", "").startswith("200"):
            _transactions[token] = (digest, answered["status"], answered["headers"], body, now)
        return body


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)
