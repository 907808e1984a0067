"""moto's server, with one change: DynamoDB requests are handled one at a time.

Real DynamoDB applies each write to an item atomically (an UpdateItem `SET n = n + :one` never
loses a count; a condition is judged together with the write). moto's threaded server does not:
two concurrent UpdateItems on one item can return the same new value. The tests that prove rate
limits and credential races hold under concurrency need DynamoDB's guarantee, so this wrapper
serialises DynamoDB calls (SQS and SES, whose long polls must not block each other, stay
concurrent). Usage: python moto-serial-dynamodb.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

_dynamodb = threading.Lock()


class SerialDynamoDB:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with _dynamodb:
                # Consume the whole response under the lock: moto does its work lazily.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, SerialDynamoDB(app), threaded=True, request_handler=MotoRequestHandler)
