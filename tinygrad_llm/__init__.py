"""tinygrad-llm."""
