"""Each reader's rhythm and language (issue 14): summaries per language, the e-mail's message
catalogue, and the weekly e-mail. See docs/cadence-language.md."""
