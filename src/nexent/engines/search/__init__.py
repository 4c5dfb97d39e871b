"""Knowledge-base search: hybrid BM25 + dense vectors behind one protocol (`base.SearchEngine`)."""
