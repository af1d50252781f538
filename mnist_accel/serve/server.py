"""The drawing pad's server: the standard library's ThreadingHTTPServer with the pad's routes, a thread per
connection, on this machine's loopback address unless told otherwise.

``make_server`` turns the usual failures to listen (port in use, a privileged port, an address this
machine does not have) into one-line ConfigErrors that say what to change.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import socketserver
import sys
from http.server import ThreadingHTTPServer

from mnist_accel.errors import ConfigError
from mnist_accel.serve.handlers import PadHandler, static_files
from mnist_accel.serve.predictor import Predictor

DEFAULT_HOST = "127.0.0.1"


class PadServer(ThreadingHTTPServer):
    """Serves ``predictor`` behind the pad's page; ``url`` is where a browser on this machine finds it."""

    daemon_threads = True  # an open keep-alive connection must not hold the process when it stops
    request_queue_size = 128  # the listen backlog: socketserver's 5 would turn away clients arriving at once
    allow_reuse_address = True  # restart at once on the same port (only a listening socket conflicts)

    def __init__(self, address: tuple, predictor: Predictor, log_requests: bool = False) -> None:
        self.predictor, self.log_requests = predictor, log_requests
        self.files = static_files()
        super().__init__(address, PadHandler)

    def server_bind(self) -> None:
        # HTTPServer's own would look this host's name up in DNS (socket.getfqdn), which can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    @property
    def url(self) -> str:
        """The page's address; for a wildcard host (0.0.0.0, ::), the loopback one of the same family."""
        host = self.server_name
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"http://[{host}]:{self.server_port}/" if ":" in host else f"http://{host}:{self.server_port}/"

    def handle_error(self, request, client_address) -> None:
        """A connection's failure, in one line (socketserver prints a traceback); a client that went away
        mid-answer is no failure of ours."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            print(f"mnist_accel.serve: error: serving {client_address[0]}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(predictor: Predictor, host: str = DEFAULT_HOST, port: int = 0,
                log_requests: bool = False) -> PadServer:
    """A PadServer listening on ``host:port`` (port 0: any free one), not yet serving."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port number; give 1 to 65535, or 0 for any free port")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {host}: not an address or a known host name ({exc})") from None
    cls = PadServer if family == socket.AF_INET else type("PadServer6", (PadServer,), {"address_family": family})
    try:
        return cls(address, predictor, log_requests)
    except OSError as exc:
        where = f"{host} port {port}"
        if exc.errno == errno.EADDRINUSE:
            message = f"{where} is in use: stop what uses it, or choose another with --port (0: any free port)"
        elif exc.errno == errno.EACCES:
            message = f"not allowed to listen on {where}: ports below 1024 need privileges; choose another --port"
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = f"cannot listen on {host}: not an address of this machine; see --host"
        else:
            message = f"cannot listen on {where}: {exc.strerror or exc}"
        raise ConfigError(message) from None
