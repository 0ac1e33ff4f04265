"""The book's machinery: the notebook runner, a chapter's parameters, the results ledger,
the figure theme and tables, and the papers' numbers."""
