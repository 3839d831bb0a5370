"""`reminder-pipeline bench`: the assignment job against its yardsticks, delivery, and the log's costs.

Shipped beside the runtime package, never imported by it: the CLI loads it only for `bench`.
"""
