"""The study: config plumbing, tasks, compute strategies, the results store, analyses and output."""
