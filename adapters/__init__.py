"""One package per external dialect; each registers itself under the `cgt_gateway.adapters` entry points."""
