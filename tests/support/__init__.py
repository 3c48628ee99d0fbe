"""Test doubles shared by the test tiers: in-memory implementations of the domain's ports.

Why here and not in the layer: no production path uses them (the local stack runs the real AWS
adapters against moto), so shipping them to Lambda would only grow the layer. They are imported as
``tests.support.<module>``: ``tests`` is a package and pytest puts the repository root on
``sys.path`` (``pythonpath = ["."]`` in pyproject.toml), so no test needs a path hack.
"""
