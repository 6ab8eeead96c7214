"""A local x402 network for the README walkthrough: chain, test USDC and x402's facilitator.

    python -m tests.x402.localnet [--port 4021]

Serves, on 127.0.0.1, x402's own facilitator (``GET /supported``, ``POST
/verify``, ``POST /settle``) over a py-evm chain in this process, plus two
routes of the local test chain only: ``POST /mint`` ``{"to": ADDRESS,
"amount": UNITS}`` (TestUSDC lets anyone mint) and ``GET /balance/{address}``.
Stops on Ctrl-C (or ``kill`` of its pid).
"""

from __future__ import annotations

import argparse

from eth_utils import to_checksum_address
from fastapi import Body

from .chain import facilitator_app, start_chain


def localnet_app():
    """The facilitator app with ``/mint`` and ``/balance/{address}`` of its chain."""
    chain = start_chain()
    app = facilitator_app(chain)

    @app.post("/mint")
    async def mint(body: dict = Body(...)) -> dict:
        to = to_checksum_address(body["to"])
        chain.mint(to, int(body["amount"]))
        return {"to": to, "balance": chain.balance(to)}

    @app.get("/balance/{address}")
    async def balance(address: str) -> dict:
        address = to_checksum_address(address)
        return {"address": address, "balance": chain.balance(address)}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="local chain + x402 facilitator")
    parser.add_argument("--port", type=int, default=4021)
    args = parser.parse_args()
    uvicorn.run(localnet_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
