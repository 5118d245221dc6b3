"""The copilot's tools: find_block and run_block, defined once, exported everywhere."""
