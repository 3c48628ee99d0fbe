"""The synthesised stack's outputs are exactly the stack-outputs contract the client reads.

Why: `ccc --stack NAME` decodes the outputs strictly (`ccc_common.contracts.stack_outputs`: its
version, no unknown outputs), so an output CDK adds on its own, or one the stack forgets, would
lock every client out of a freshly deployed stack.
"""

from __future__ import annotations

from typing import Any

from ccc_common.contracts import stack_outputs


def _deployed_values(template: dict[str, Any]) -> dict[str, str]:
    """What DescribeStacks would return: literal values as synthesised, intrinsics resolved to text."""
    return {
        key: output["Value"] if isinstance(output["Value"], str) else f"resolved-{key}"
        for key, output in template["Outputs"].items()
    }


def test_the_outputs_decode_with_the_contract_and_carry_its_version(synth: Any) -> None:
    outputs = _deployed_values(synth.template)
    decoded = stack_outputs.decode_stack_outputs(outputs)
    assert outputs[stack_outputs.OUTPUT_FORMAT] == stack_outputs.STACK_OUTPUTS_FORMAT
    assert decoded.stage == synth.stage
    assert decoded.pcrs == dict(synth.stack.inputs.measurements.pcrs)
    assert set(outputs) == set(stack_outputs.NAMED_OUTPUTS) | {
        stack_outputs.pcr_output(i) for i in synth.stack.inputs.measurements.pcrs
    }


def test_every_output_is_described_by_the_contract(synth: Any) -> None:
    for key, output in synth.template["Outputs"].items():
        assert output["Description"] == stack_outputs.description(key)
