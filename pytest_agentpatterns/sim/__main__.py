"""``python -m pytest_agentpatterns.sim``: run the simulator until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .config import Faults, SimConfigError
from .server import Simulator

DEFAULT_PORT = 8765
DUMMY_KEY = "sim-key"


def build_parser() -> argparse.ArgumentParser:
    """The command line of the simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_agentpatterns.sim",
        description="Serve simulated Anthropic and OpenAI APIs on this machine.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind. Default: %(default)r")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="0 picks a free port. Default: %(default)r"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="Seed of answers, latencies, faults. Default: %(default)r",
    )
    parser.add_argument(
        "--world", metavar="PATH", default=None, help="World JSON file. Default: the shipped world"
    )
    parser.add_argument(
        "--models",
        metavar="PATH",
        default=None,
        help="Model profiles JSON, merged over the shipped ones. Default: the shipped ones",
    )
    parser.add_argument(
        "--time-scale",
        metavar="X",
        type=float,
        default=1.0,
        help="Multiplier on every latency (0: none). Default: %(default)r",
    )
    parser.add_argument(
        "--rate-429",
        metavar="P",
        type=float,
        default=0.0,
        help="Probability of a 429. Default: %(default)r",
    )
    parser.add_argument(
        "--rate-500",
        metavar="P",
        type=float,
        default=0.0,
        help="Probability of a 500. Default: %(default)r",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the simulator, print how to point the SDKs at it, and serve until interrupted."""
    args = build_parser().parse_args(argv)
    try:
        sim = Simulator(
            world=args.world,
            seed=args.seed,
            time_scale=args.time_scale,
            models=args.models,
            faults=Faults(rate_429=args.rate_429, rate_500=args.rate_500),
            host=args.host,
            port=args.port,
        )
    except SimConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"pytest-agentpatterns simulator listening on {sim.base_url} "
        f"(seed {sim.seed}, time scale {sim.time_scale:g})\n"
        f"Anthropic base URL: {sim.anthropic_base_url}\n"
        f"OpenAI base URL:    {sim.openai_base_url}\n"
        f"export ANTHROPIC_BASE_URL={sim.anthropic_base_url}\n"
        f"export ANTHROPIC_API_KEY={DUMMY_KEY}\n"
        f"export OPENAI_BASE_URL={sim.openai_base_url}\n"
        f"export OPENAI_API_KEY={DUMMY_KEY}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    count = sim.request_count
    print(f"Stopped; served {count} request{'' if count == 1 else 's'}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
