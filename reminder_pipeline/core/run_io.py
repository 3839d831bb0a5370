"""The IO manager of every lock-and-log job: outputs in memory, a partial re-execution refused."""

from dagster import InMemoryIOManager, InputContext, io_manager

from reminder_pipeline.core.errors import PartialReexecutionRefused

REEXECUTION_MESSAGE = (
    "re-executing part of a lock-and-log job is refused: the lock and the log row belong to the step"
    " that would be skipped. Launch the whole job again instead (Launchpad, 'Re-execute all', or"
    " `reminder-pipeline run <job>`): nothing that was already sent is sent twice"
)


class RunMemoryIOManager(InMemoryIOManager):
    """Outputs stay in memory (one process per run); an input from another run, which is what
    "Re-execute from failure" asks for, is refused with a message that says what to do instead."""

    def load_input(self, context: InputContext) -> object:
        try:
            return super().load_input(context)
        except KeyError:
            raise PartialReexecutionRefused(REEXECUTION_MESSAGE) from None


@io_manager(description="In-memory outputs; a partial re-execution is refused with instructions.")
def run_memory_io_manager() -> RunMemoryIOManager:
    return RunMemoryIOManager()
