"""The priority buckets a score (0-100) falls in (PriorityBucket: 0 urgent .. 3 low): what a
hand-set score means (services.conversation_priority_set) and where routing's computed score
lands (apps/routing/scoring.py reads them from here: the inbox is below routing)."""

# Bucket floors: score >= floor -> bucket.
BUCKET_FLOORS = [(75, 0), (55, 1), (30, 2), (0, 3)]


def bucket_for(score: int) -> int:
    for floor, bucket in BUCKET_FLOORS:
        if score >= floor:
            return bucket
    return 3
