"""A reference implementation of the agent's side of the bridge, for tests and local GPU runs.

It is not the seedcast agent (that is the Node agent under src/agent): it exists so that the
shim can be tested without Node, and so that a protocol change shows up on both sides.
"""
