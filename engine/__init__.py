"""The generation engine (loading, sampling, KV layouts, decode loop, scheduler); ``utils`` is its
public face."""
