"""An example dialect: a lab courier's signed JSON webhook (docs/adapters.md walks through it)."""
