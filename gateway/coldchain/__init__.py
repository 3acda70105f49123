"""The cold chain: temperature classes as data and the excursion evaluator (pure functions)."""
