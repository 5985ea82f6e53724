"""Text processing that needs no web side: map-reduce summarization planning."""
