"""Review queues: reviewers work through an experiment's traces one at a time.

A Queue asks its definitions as questions; QueueItem rows are its traces (unique per queue);
QueueWork is one reviewer's relation to one item: a lease, an answer or a decline. Answers are
assessments written through `assessments.services` (channel `queue`, `{"queue_id": …}` in
their metadata). Rows are written only by `assessments.queues.services`; reads go through
`assessments.queues.selectors`.
"""
