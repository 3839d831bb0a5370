"""The benchmark's child processes: `python -m reminder_pipeline_bench --child-job <url>` and the gateway."""

import sys

from reminder_pipeline_bench.harness import child_run, serve_gateway

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("--child-job", "--child-chunked", "--child-delivery"):
        child_run(sys.argv[1].removeprefix("--child-"), sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--gateway":
        serve_gateway(int(sys.argv[2]))
