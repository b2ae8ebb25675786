"""An independent recipe GraphQL server (graphql-core, schema built from the contract SDL), run
by the lab as a `command` service on HOST:PORT: POST /graphql, GET /health."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from graphql import build_schema, graphql_sync

import contract

schema = build_schema(contract.graphql_sdl())
RECIPE = {
    "id": "42",
    "name": "Chicken Tikka Masala",
    "steps": "Throw it in a pot...",
    "ingredients": [{"id": "1", "name": "Chicken", "quantity": "1 lb"}, {"id": "2", "name": "Sauce", "quantity": "2 cups"}],
}


class Root:
    def recipe(self, info, id=None):
        if id != "42":
            raise Exception(f"no recipe {id} in the python kitchen")
        return RECIPE

    def pid(self, info):
        return os.getpid()


def field_resolver(source, info, **args):
    value = source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)
    return value(info, **args) if callable(value) else value


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send(200, "OK", "text/plain")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        result = graphql_sync(schema, body["query"], root_value=Root(), variable_values=body.get("variables"), field_resolver=field_resolver)
        out = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message} for e in result.errors]
        self.send(200, json.dumps(out), "application/json")

    def send(self, code, text, ctype):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("request", self.command, self.path, flush=True)


print("python graphql recipe server on", os.environ["PORT"], flush=True)
ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), H).serve_forever()
