"""moto in server mode as a child process of the local stack, with its IAM access control on.

Why our own entry point instead of `python -m moto.server -p PORT`:

* picking a free port in the supervisor and handing it to moto races with other programs. Here moto
  binds port 0 itself and reports the port it got through a ready file (written atomically, 0600,
  once it accepts connections);
* moto must not be an open door around the local tier's access control. Its access control is on
  from the first request (`INITIAL_NO_AUTH_ACTION_COUNT = 0`), and the only credential it knows is
  the *upstream* credential created here, in moto's own IAM, and reported in the ready file. That
  credential is held by the supervisor (provisioning, as CloudFormation deploys on AWS) and the
  local IAM gateway (`ccc.local.iam_gateway`), which authenticates the stack's identities and
  evaluates their IAM policies before it forwards a request. A caller with a tenant's (or any
  other) key who points straight at moto is refused: moto does not know the key.
* moto's management API (`/moto-api/...`: reset the state, reset the authentication counter, dump
  every backend's data) is refused: through it any caller could turn the access control off.

    python -m ccc.local.moto_service --host 127.0.0.1 --ready-file run/moto.json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ccc.atomic_files import write_json_atomic

UPSTREAM_USER = "ccc-local-upstream"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account: the local stack's
_UPSTREAM_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def refuse_management_api(app: WsgiApp) -> WsgiApp:
    """Wrap moto's WSGI app so that `/moto-api/...` answers 403 (see the module docstring)."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            body = b"the local stack's moto does not serve its management API\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return guarded


def enable_access_control(account_id: str) -> dict[str, str]:
    """Turn moto's IAM access control on and create the one credential it accepts.

    Returns {"access_key_id", "secret_access_key", "principal_arn"} of the upstream user.
    """
    from moto import settings
    from moto.iam.models import iam_backends

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # type: ignore[assignment]
    backend = iam_backends[account_id]["aws"]
    user = backend.create_user("us-east-1", UPSTREAM_USER)
    backend.put_user_policy(UPSTREAM_USER, "upstream-all", json.dumps(_UPSTREAM_POLICY))
    key = backend.create_access_key(UPSTREAM_USER)
    return {"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key, "principal_arn": user.arn}


def cache_module_list() -> None:
    """moto's dispatcher calls `moto.backends.list_of_moto_modules()` for every request, under a lock
    that serialises all requests: it lists moto's package directory and stats each of its ~200 entries
    (~8 % of moto's CPU under load). The directory does not change while moto runs: list it once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccc.local.moto_service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (reported in the ready file)")
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local stack's moto listens on loopback only")

    from moto.moto_server import werkzeug_app
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from ccc.local.moto_atomic import make_conditional_writes_atomic
    from ccc.local.moto_sqs import make_sqs_backlog_constant

    make_conditional_writes_atomic()  # job leases and exactly-once results rely on it, as on AWS
    make_sqs_backlog_constant()  # moto's SQS cost per message grew with the queue's backlog
    cache_module_list()
    # werkzeug's access log (one line per request, ~8 % of moto's CPU under load) stays: it is how a
    # reader, and tests/e2e/test_pipeline_e2e.py, sees which object the parent fetched and when.
    # moto's server answers every origin with Access-Control-Allow-Origin: * (flask-cors); AWS does not:
    # S3 answers CORS only from a bucket's CORS configuration (ccc_common.domain.cors sets it).
    werkzeug_app.DISABLE_GLOBAL_CORS = True  # read when each service's backend app is created
    upstream = enable_access_control(args.account_id)
    app = refuse_management_api(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    thread.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    write_json_atomic(
        args.ready_file,
        {"host": host, "port": port, "endpoint_url": f"http://{host}:{port}", "upstream": upstream},
        mode=0o600,
    )
    print(f"moto listening on http://{host}:{port} (IAM access control on)", flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
