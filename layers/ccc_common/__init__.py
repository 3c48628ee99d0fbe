"""Pure-Python library shared by the Lambdas, the CDK app, the parent agent and the local stack.

Every fact that more than one tier needs (resource names, key layout, queue settings, the key
policy, the job model, the scaling policy) is built by exactly one function in this package, so
CDK and the embedded local stack cannot drift apart. It depends only on the standard library and
pydantic so that it can ship as a small Lambda layer.
"""
