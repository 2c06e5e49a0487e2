"""Kind `tes`: GA4GH TES tasks on a Funnel server that cfw provisions on AWS, or on any TES server."""
