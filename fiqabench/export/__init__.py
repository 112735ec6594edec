"""Exports of fiqabench tasks to other harnesses' formats (`fiqabench export ...`)."""
