"""A local EVM with a USDC-like EIP-3009 token, and x402's own facilitator over it.

The chain is py-evm in process (eth-tester), chain id 84532 (Base Sepolia),
with TestUSDC's runtime code at Base Sepolia's USDC address, so the
catalog's `x402-base-usdc` provider (network eip155:84532, that asset, EIP-712
domain ("USDC", "2")) applies unchanged. TestUSDC.vy is compiled offline into
TestUSDC.json (committed) by ``build_token.py``:

    pip install vyper==0.4.3 && python tests/x402/build_token.py

The facilitator is x402's ``x402Facilitator``/``x402FacilitatorSync`` with its
exact-EVM scheme; :func:`facilitator_app` serves it over HTTP with the routes
x402's ``HTTPFacilitatorClient`` calls (``/supported``, ``/verify``, ``/settle``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

HERE = Path(__file__).resolve().parent
CHAIN_ID = 84532
NETWORK = f"eip155:{CHAIN_ID}"
USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"  # x402's default asset of eip155:84532


def token_artifact() -> dict[str, Any]:
    """ABI and init bytecode of TestUSDC.vy (the committed TestUSDC.json)."""
    return json.loads((HERE / "TestUSDC.json").read_text())


def _tester(genesis_extra: dict | None = None) -> tuple[Web3, str]:
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider
    from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

    state = PyEVMBackend.generate_genesis_state(num_accounts=1)
    state.update(genesis_extra or {})
    backend = PyEVMBackend(genesis_state=state)
    backend.chain.chain_id = CHAIN_ID  # eth-tester's own id otherwise; CHAINID must agree
    endpoints = {k: dict(v) for k, v in API_ENDPOINTS.items()}
    endpoints["eth"]["chainId"] = static_return(CHAIN_ID)
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend), api_endpoints=endpoints))
    return w3, "0x" + backend.account_keys[0].to_bytes().hex()


def _params(w3: Web3, key: str, gas: int) -> dict:
    """Legacy-gas transaction parameters from the account of ``key``."""
    sender = Account.from_key(key).address
    nonce = w3.eth.get_transaction_count(sender)
    return {"from": sender, "nonce": nonce, "gas": gas, "gasPrice": w3.eth.gas_price}


def _send(w3: Web3, key: str, tx: dict) -> dict:
    signed = Account.from_key(key).sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1
    return receipt


@dataclass
class Chain:
    """The chain, and the key of its funded account (the facilitator pays gas with it)."""

    w3: Web3
    key: str

    @property
    def token(self) -> Any:
        return self.w3.eth.contract(address=USDC, abi=token_artifact()["abi"])

    def balance(self, address: str) -> int:
        """Token balance in units (6 decimals)."""
        return self.token.functions.balanceOf(address).call()

    def mint(self, to: str, amount: int) -> None:
        """Mint test USDC (the token lets anyone mint)."""
        tx = self.token.functions.mint(to, amount).build_transaction(
            _params(self.w3, self.key, 200_000)
        )
        _send(self.w3, self.key, tx)


def start_chain() -> Chain:
    """Deploy TestUSDC ("USDC", "2") on a scratch chain, and start a chain with its
    runtime code (immutables included) at :data:`USDC` from genesis."""
    from eth_utils import to_canonical_address

    scratch, key = _tester()
    art = token_artifact()
    ctor = scratch.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(
        "USDC", "USDC", "2"
    )
    receipt = _send(
        scratch,
        key,
        ctor.build_transaction(_params(scratch, key, 3_000_000)),
    )
    code = bytes(scratch.eth.get_code(receipt["contractAddress"]))
    genesis = {to_canonical_address(USDC): {"balance": 0, "nonce": 1, "code": code, "storage": {}}}
    return Chain(*_tester(genesis))


def facilitator_signer(chain: Chain) -> Any:
    """x402's web3 facilitator signer over the in-process chain (no RPC URL exists)."""
    from x402.mechanisms.evm import FacilitatorWeb3Signer

    class InProcessSigner(FacilitatorWeb3Signer):
        def __init__(self) -> None:
            super().__init__(chain.key, rpc_url="http://127.0.0.1:9")  # never contacted
            self._w3 = chain.w3

    return InProcessSigner()


def facilitator(chain: Chain, sync: bool = True) -> Any:
    """x402's own facilitator with the exact-EVM scheme on :data:`NETWORK`."""
    from x402 import x402Facilitator, x402FacilitatorSync
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator

    made = x402FacilitatorSync() if sync else x402Facilitator()
    register_exact_evm_facilitator(made, facilitator_signer(chain), networks=NETWORK)
    return made


def facilitator_app(chain: Chain, token: str | None = None) -> Any:
    """x402's facilitator behind FastAPI: GET /supported, POST /verify and /settle;
    with ``token``, each call needs ``Authorization: Bearer <token>`` (else 401)."""
    from fastapi import Body, FastAPI, Request
    from fastapi.responses import JSONResponse
    from x402.schemas.helpers import parse_payment_payload, parse_payment_requirements

    fac = facilitator(chain, sync=False)
    app = FastAPI()

    @app.middleware("http")
    async def bearer(request: Request, call_next: Any) -> Any:
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, 401)
        return await call_next(request)

    def parse(body: dict) -> tuple[Any, Any]:
        payload = parse_payment_payload(body["paymentPayload"])
        return payload, parse_payment_requirements(
            payload.x402_version, body["paymentRequirements"]
        )

    def dump(model: Any) -> dict:
        return model.model_dump(by_alias=True, exclude_none=True)

    @app.get("/supported")
    async def supported() -> dict:
        return dump(fac.get_supported())

    @app.post("/verify")
    async def verify(body: dict = Body(...)) -> dict:
        return dump(await fac.verify(*parse(body)))

    @app.post("/settle")
    async def settle(body: dict = Body(...)) -> dict:
        return dump(await fac.settle(*parse(body)))

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn in a thread on 127.0.0.1; ``stop()`` ends it."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def x402_client(account: Any, sync: bool = False) -> Any:
    """x402's own client, paying with ``account`` (an eth_account key) on :data:`NETWORK`."""
    from x402 import x402Client, x402ClientSync
    from x402.mechanisms.evm.exact import register_exact_evm_client
    from x402.mechanisms.evm.signers import EthAccountSigner

    client = x402ClientSync() if sync else x402Client()
    register_exact_evm_client(client, EthAccountSigner(account), networks=NETWORK)
    return client
