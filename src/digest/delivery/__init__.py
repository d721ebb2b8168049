"""One issue to many readers: the job, the batch loop, personalising, MIME."""
