#!/usr/bin/env sh
# Re-record every cassette of the example suite against the bundled simulator (seed 0,
# realistic latencies: it takes several minutes). Extra arguments go to pytest.
# To record against real providers instead, set ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY,
# OPENAI_BASE_URL and OPENAI_API_KEY and run the pytest line below yourself.
set -eu
cd "$(dirname "$0")/.."
rm -rf example_suite/cassettes
env -u ANTHROPIC_BASE_URL -u OPENAI_BASE_URL \
    python -m pytest example_suite --patterns=all --patterns-record=rewrite "$@"
