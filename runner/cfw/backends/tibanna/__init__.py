"""Kind `tibanna`: a Tibanna unicorn on AWS; each job a Tibanna execution on its state machine."""
