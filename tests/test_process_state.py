"""What a process holds, in one object: one instance of each part, closed newest first."""

from __future__ import annotations

from nexent.core.process import ProcessState


async def test_the_process_state_keeps_one_of_each_part_and_closes_them_newest_first() -> None:
    closed: list[str] = []

    class First:
        async def close(self) -> None:
            closed.append("first")

    class Second:
        async def close(self) -> None:
            closed.append("second")

    state = ProcessState()
    first = state.part(First, First)
    assert state.part(First, First) is first and state.find(Second) is None
    state.part(Second, Second)
    await state.close()
    assert closed == ["second", "first"] and state.find(First) is None
