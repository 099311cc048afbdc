"""Connecting to a Dask scheduler: one clear error, within a deadline, for every bad address.

Why its own module: the executors (:mod:`accelsim.sweep.executors`) run ranges; reaching a
scheduler is a separate concern with its own failure modes (refused ports, ports that never
answer, unsupported schemes).
"""
from __future__ import annotations

import socket
from typing import Any

from accelsim.errors import AccelsimError


def connect_dask(address: Any, timeout_s: float = 5.0) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``address`` (or the client passed in); True if we own it."""
    from distributed import Client

    if isinstance(address, Client):
        return address, False
    if not isinstance(address, str) or "://" not in address:
        raise AccelsimError(f"expected a scheduler address like tcp://host:8786, got {address!r}", field="--dask")
    scheme, _, rest = address.partition("://")
    if scheme not in ("tcp", "inproc"):  # inproc: a LocalCluster(processes=False) in this process
        # Other schemes need settings an address cannot carry (tls/wss: certificates; ws, ucx:
        # optional packages), and a Client that fails on them hangs ~10 s in its destructor.
        # Such clusters are reached by building a distributed.Client and passing it in.
        raise AccelsimError(f"unsupported scheme {scheme}://; for TLS or other transports build a "
                            "distributed.Client and pass it as run_sweep(dask=client)",
                            field="--dask", allowed="tcp://host:port, inproc://...")
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host and port.isdigit():
        try:  # a refused or unroutable address fails here in milliseconds, not after the client's timeout
            socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout_s, 2.0)).close()
        except OSError as err:
            raise AccelsimError(f"cannot reach the Dask scheduler at {address}: {err}", field="--dask") from None
    client = _client_within(Client, address, timeout_s)
    return client, True


def _client_within(client_cls: Any, address: str, timeout_s: float) -> Any:
    """``Client(address)`` with a hard deadline, every failure as one AccelsimError.

    Why a thread: ``Client``'s own ``timeout`` does not cover every stage of the handshake; at a
    port that accepts TCP but does not speak Dask's protocol (an HTTP server, say) it was seen to
    wait well past a minute. A daemon thread that has not finished by the deadline is abandoned
    (the CLI exits right after the error). Unknown schemes (``tls://`` without certificates) raise
    TypeError/ValueError from inside distributed; those are a bad address too.
    """
    import threading

    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def connect() -> None:
        try:
            outcome["client"] = client_cls(address, timeout=f"{timeout_s}s", set_as_default=False)
        except BaseException as err:  # noqa: BLE001 - reported in the caller's thread
            # Only the text crosses threads: the traceback holds the half-built Client, whose
            # __del__ blocks ~10 s trying to close; it is collected here, in the abandoned thread.
            text = (str(err).strip().splitlines() or [""])[0]
            outcome["error"] = type(err).__name__ + (f": {text}" if text else "")
        finally:
            finished.set()

    threading.Thread(target=connect, name="accelsim-dask-connect", daemon=True).start()
    if not finished.wait(timeout_s + 2.0):
        raise AccelsimError(f"no Dask scheduler answered at {address} within {timeout_s + 2.0:g} s "
                            "(is it a Dask scheduler port?)", field="--dask")
    if "error" in outcome:
        raise AccelsimError(f"cannot connect to the Dask scheduler at {address}: {outcome['error']}",
                            field="--dask")
    return outcome["client"]

