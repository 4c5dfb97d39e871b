"""Knowledge bases: document parsing, chunking, indexing and search."""
