"""Personal relevance: reader profiles, paper vectors, semantic and hybrid ranking, feedback."""
