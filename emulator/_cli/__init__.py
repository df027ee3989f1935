"""The subcommands of `batchconf` (`emulator.cli` builds the parser and dispatches here).

The command line sits above both the emulator and the suite: `check` and `check-all` read the
suite plugin's option table for their help, and run the suite in a fresh interpreter. No
library module of the emulator imports these.
"""
