"""Kind `tes`: GA4GH TES tasks on a Funnel server cfw provisions on AWS, or on any TES server."""
