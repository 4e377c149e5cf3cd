"""One module per `dss` subcommand, each with `register(subparsers)`."""
