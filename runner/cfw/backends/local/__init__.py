"""Kind `local`: jobs run on this machine, each in a fresh sandbox, no cloud account."""
