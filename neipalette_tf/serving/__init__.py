"""Serving: explanations and colour suggestions (`explanation`), the HTTP service and its page
(`app`, `static/`), and its load test (`load_test`). TF-free with an exported model."""
