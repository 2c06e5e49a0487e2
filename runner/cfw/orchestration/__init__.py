"""What a command does, end to end: run a workflow, bring environments up and down, say
how they are. Below the CLI, above the executor and the kinds."""
