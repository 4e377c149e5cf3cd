"""Test scaffolding, shipped so that benchmarks and users can run it too: a fake teacher server that speaks the
OpenAI and Gemini protocols on 127.0.0.1, and release-layout data folders. Imported only by tests/,
benchmarks/ and commands; product code never depends on it."""
