"""The command line: `cli` and one module per `dss` subcommand, each parsing arguments and making one call into
the library. May import every layer (dss.testing too, for the offline fake teacher)."""
