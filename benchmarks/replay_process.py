"""One whole replay process, for ``speed.py``: ``python replay_process.py VARIANT SIZE [CASSETTE]``.

- ``plugin``: opens the plugin's cassette (``replay_cost.write_plugin_cassette``) as the
  plugin opens an item's cassette in ``--patterns-record=none`` mode, with the calls
  attributed as in a test body, and replays all ``SIZE`` calls through the Anthropic SDK;
- ``floor``: the same ``SIZE`` SDK calls answered in process by ``httpx2.MockTransport``,
  no cassette and nothing of this plugin imported.

It prints one JSON line: the seconds from the first import to the last call (``inside``)
and its peak memory (``peak_mb``).
The parent times the whole process (interpreter start-up included) and reads its peak
memory and CPU from ``os.wait4``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()


def floor(size: int) -> list[str]:
    import anthropic
    import httpx2

    # The bodies replay_cost writes into the plugin's cassette (checked by the answers).
    answers = {}
    for i in range(size):
        question = f"Question {i}: what is {i} plus {i}? Answer with the number only."
        request = {
            "max_tokens": 32,
            "messages": [{"role": "user", "content": question}],
            "model": "sim-fast",
        }
        response = {
            "id": f"msg_{i:08d}",
            "type": "message",
            "role": "assistant",
            "model": "sim-fast",
            "content": [{"type": "text", "text": str(2 * i)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 3},
        }
        answers[json.dumps(request, separators=(",", ":")).encode()] = json.dumps(response).encode()
    headers = [("content-type", "application/json"), ("request-id", "req_bench")]

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=headers, content=answers[request.content])

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    client = anthropic.Anthropic(
        api_key="bench-key-not-a-secret",
        base_url="http://replay.invalid",
        http_client=http,
        max_retries=0,
    )
    texts = []
    for i in range(size):
        question = f"Question {i}: what is {i} plus {i}? Answer with the number only."
        message = client.messages.create(
            max_tokens=32, messages=[{"role": "user", "content": question}], model="sim-fast"
        )
        texts.append(message.content[0].text)  # type: ignore[union-attr]
    return texts


def plugin(size: int, cassette: Path) -> list[str]:
    import replay_cost

    block = replay_cost.plugin_block(
        cassette,
        [list(range(size))],
        replay_cost.anthropic.Anthropic(
            api_key=replay_cost.API_KEY, base_url=replay_cost.BASE_URL, max_retries=0
        ),
    )
    if block.calls != size:
        raise AssertionError(f"plugin replayed {block.calls} of {size} calls")
    return [str(2 * i) for i in range(size)]  # plugin_block checked every answer


def main() -> None:
    variant, size = sys.argv[1], int(sys.argv[2])
    texts = floor(size) if variant == "floor" else plugin(size, Path(sys.argv[3]))
    if texts != [str(2 * i) for i in range(size)]:
        raise AssertionError(f"{variant}: replayed the wrong answers")
    print(json.dumps({"inside": time.perf_counter() - STARTED, "peak_mb": peak_mb()}))


def peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` would count the
    parent's, which Linux carries over ``fork`` and ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()
