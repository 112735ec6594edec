"""Answer scoring: rule matchers for closed questions; LLM judges for open answers."""
