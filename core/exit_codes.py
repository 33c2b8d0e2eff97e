"""Exit codes: part of the operator interface (docs/error_codes.md)."""
OK = 0
FAILURE = 1            # at least one symbol or step failed
GATE_FAILED = 2        # quality / governance gate failed
HALTED = 3             # kill switch or governance halt
USAGE = 64             # bad flag or flag value (EX_USAGE)
DATA_ERROR = 65        # malformed input file: universe, CSV, settings (EX_DATAERR)
NO_INPUT = 66          # an input file or directory does not exist (EX_NOINPUT)
