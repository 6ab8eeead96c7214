"""Compile TestUSDC.vy into TestUSDC.json (ABI, init bytecode, compiler version), offline.

    pip install vyper==0.4.3      # pure Python
    python tests/x402/build_token.py

The committed TestUSDC.json is this script's output, byte for byte.
"""

import json
from pathlib import Path

import vyper

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    out = vyper.compile_code((HERE / "TestUSDC.vy").read_text(), output_formats=["abi", "bytecode"])
    artifact = {"abi": out["abi"], "bytecode": out["bytecode"], "compiler": vyper.__version__}
    (HERE / "TestUSDC.json").write_text(json.dumps(artifact, indent=1) + "\n")
