"""Runtime of the generated artifacts: what generated route modules import.

Kept free of compiler and web-framework imports so that a generated route
module imports fast and anywhere; the FastAPI app that serves the specs is
built on top of this package.
"""
