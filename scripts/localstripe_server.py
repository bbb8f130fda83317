#!/usr/bin/env python3
"""Run localstripe (a stateful fake Stripe API server) for tests and the offline demo.

    python scripts/localstripe_server.py --port 8420

Differences from `python -m localstripe`, on purpose:

- it listens on 127.0.0.1 only (localstripe binds every interface, IPv4 and IPv6, by
  default: anyone on the network could then read and create "payments");
- its disk persistence is OFF: localstripe pickles its whole store to
  /tmp/localstripe.pickle after every write and loads it back at start. That file is shared
  by every process on the machine, leaks state between runs and is unsafe to unpickle. Here
  the state lives in memory and dies with the process.

Point the app at it with STRIPE_API_BASE=http://127.0.0.1:<port> and any sk_test_... key.
Webhooks are registered through localstripe's own endpoint:
POST /_config/webhooks/<id> with url=... and secret=whsec_...
"""

import argparse
import logging
import sys


def disable_persistence() -> None:
    from localstripe import resources

    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("localstripe must only listen on a loopback address")

    disable_persistence()
    from aiohttp import web
    from localstripe.server import app

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="localstripe %(levelname)s %(message)s")
    access_log = None if args.quiet else logging.getLogger("aiohttp.access")
    print(f"localstripe listening on http://{args.host}:{args.port} (no disk persistence)",
          flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=access_log, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
