"""One module per `hil` command group; each exposes `register(subparsers)` (see `hil.cli`)."""
